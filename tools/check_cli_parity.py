"""Runs `resnet18 --weights W --json --logits` on every input*.npy of a fixture directory and compares with
PyTorch's saved logits: max |Δlogit| within the bound and identical top-5.

    python3 tools/check_cli_parity.py out/resnet18 fixtures/full 1e-4
    python3 tools/check_cli_parity.py out/resnet18 fixtures/calibrated 1e-4 --exact
    python3 tools/check_cli_parity.py out/resnet18 fixtures/formats/float16-safetensors 1e-4

Arguments after the bound are passed to resnet18 (--exact, --threads N).
"""
import glob
import json
import os
import subprocess
import sys

import numpy as np

binary, fixtures, bound, extra = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
inputs = sorted(f for f in glob.glob(os.path.join(fixtures, "input*.npy")) if not f.endswith(".logits.npy"))
# The weights as torch.save wrote them, or as safetensors (tools/make_weight_formats.py).
weights = next(p for p in (os.path.join(fixtures, "weights.pth"), os.path.join(fixtures, "weights.safetensors")) if os.path.exists(p))
out = subprocess.run([binary, "--weights", weights, "--json", "--logits", *extra, *inputs],
                     check=True, capture_output=True, text=True, timeout=600).stdout  # a hang fails, naming the command
worst = 0.0
for line in out.splitlines():
    r = json.loads(line)
    expected = np.load(r["file"].replace(".npy", ".logits.npy"))
    got = np.array(r["logits"], dtype=np.float32)
    diff = float(np.abs(got - expected).max())
    worst = max(worst, diff)
    top = [t["index"] for t in r["top"]]
    assert top == [int(i) for i in np.argsort(-expected, kind="stable")[:5]], f"{r['file']}: top-5 {top} differs"
    print(f"{os.path.basename(r['file'])}: max |dlogit| = {diff:.3g}, top-5 {top}")
assert len(out.splitlines()) == len(inputs), "missing results"
assert worst <= bound, f"max |dlogit| {worst} > {bound}"
print(f"ok: {len(inputs)} inputs{''.join(' ' + a for a in extra)}, worst {worst:.3g} <= {bound}")
