"""Checks a resnet18 binary generated for other classes against PyTorch, as the README's "Your own classes" says
to make one: torchvision's resnet18(num_classes=N) with seeded random weights and randomized BatchNorm statistics
(make_fixtures.randomize), saved with torch.save; a labels file with N names; every photo given classified by the
binary (--json --logits --labels) and by torchvision's eval transform and model. Fails on a logit further than the
bound, another top-5, or a label that is not the class's.

    python3 tools/check_finetuned.py BINARY N BOUND PHOTO...
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import randomize  # noqa: E402

binary, classes, bound, photos = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
torch.manual_seed(5)
model = torchvision.models.resnet18(num_classes=classes)
randomize(model, torch.Generator().manual_seed(5))
model.eval()
names = [f"my class {i}" for i in range(classes)]
tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
with tempfile.TemporaryDirectory() as tmp:
    weights, labels = os.path.join(tmp, "finetuned.pth"), os.path.join(tmp, "classes.txt")
    torch.save(model.state_dict(), weights)
    with open(labels, "w") as f:
        f.write("\n".join(names) + "\n")
    run = subprocess.run([binary, "--no-cache", "--weights", weights, "--labels", labels, "--json", "--logits", *photos],
                         capture_output=True, text=True)
if run.returncode != 0:
    sys.exit(f"FAIL: {binary} exited {run.returncode}: {run.stderr.strip()}")
version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
failed = f"generated for {classes} classes" not in version
if failed:
    print(f"FAIL: --version does not say the binary was generated for {classes} classes: {version!r}")
# Without weights of its own it neither looks for nor downloads torchvision's, which cannot fit it.
with tempfile.TemporaryDirectory() as home:
    bare = subprocess.run([binary, photos[0]], capture_output=True, text=True,
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("RESNET18_")},
                               "HOME": home, "XDG_CACHE_HOME": home, "TORCH_HOME": home})
expected_error = f"resnet18: no weights: this build is generated for {classes} classes, which torchvision's ImageNet weights do not fit"
if bare.returncode != 1 or not bare.stderr.startswith(expected_error) or bare.stderr.count("\n") != 1:
    print(f"FAIL: without --weights: exit {bare.returncode}, {bare.stderr!r}")
    failed = True
else:
    print(f"ok   without --weights: {bare.stderr.strip()}")
with torch.inference_mode():
    for photo, line in zip(photos, run.stdout.splitlines(), strict=True):
        r = json.loads(line)
        expected = model(tf(Image.open(photo).convert("RGB")).unsqueeze(0))[0].numpy()
        got = np.array(r["logits"], dtype=np.float32)
        diff = float(np.abs(got - expected).max()) if got.shape == expected.shape else float("inf")
        top_e, top_g = [int(i) for i in np.argsort(-expected)[:5]], [t["index"] for t in r["top"]]
        ok = diff <= bound and top_e == top_g and all(t["label"] == names[t["index"]] for t in r["top"])
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {photo}: {len(got)} logits, max |dlogit| {diff:.3g}, top-5 {top_g} (torch {top_e}), "
              f"first {r['top'][0]['label']!r}")
sys.exit(1 if failed else 0)
