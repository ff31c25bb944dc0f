"""End-to-end image parity: `resnet18 --weights W --json --logits IMAGES...` against torchvision 0.14 + PIL
(resnet18 with the same weights, Image.open(f).convert('RGB'), the ImageNet eval transform).
PNG, JPEG, BMP, GIF, TIFF and Netpbm alike (the JPEG decoder reproduces libjpeg-turbo's pixels): max |dlogit| <= bound, the same top-5,
and torchvision's category names for them. Then each image alone, as a one-image run decodes it (its tensor made
row by row behind the decoding, conv1 run on the rows as they come): within the bound of PyTorch too, and bit for
bit the logits of the same one-image run on one thread, which runs the whole tensor at once. (Not the batch's:
batches of 3 or more run layer4's batched Winograd variant, F(4×4) where one image gets F(2×2).)

    python3 tools/check_image_parity.py out/resnet18 fixtures/full/weights.pth 1e-4 IMAGE...
"""
import json
import os
import re
import subprocess
import sys

import numpy as np
import torch
from PIL import Image

from torch_reference import CATEGORIES as categories, EVAL_TRANSFORM as tf, resnet18

binary, weights, bound, images = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4:]
model = resnet18(weights)
# Timeouts far beyond any run here (the batch ~1 min, one image under a second): a run that hangs fails naming its command.
out = subprocess.run([binary, "--weights", weights, "--json", "--logits", *images], capture_output=True, text=True, timeout=1200)
results = {json.loads(l)["file"]: json.loads(l) for l in out.stdout.splitlines()}
failed = False
torch_logits = {}
for f in images:
    r = results[f]
    if "error" in r:
        print(f"{f}: ERROR {r['error']}")
        failed = True
        continue
    with torch.no_grad():
        expected = model(tf(Image.open(f).convert("RGB"))[None])[0].numpy()
    torch_logits[f] = expected
    got = np.array(r["logits"], dtype=np.float32)
    diff = float(np.abs(got - expected).max())
    top_e, top_g = list(np.argsort(-expected)[:5]), [t["index"] for t in r["top"]]
    labels = [t["label"] for t in r["top"]]
    ok = diff <= bound and top_e == top_g and labels == [categories[i] for i in top_g]
    failed |= not ok
    print(f"{'ok  ' if ok else 'FAIL'} {f}: max |dlogit| {diff:.3g}, top-5 {top_g} (torch {top_e})")
streamed = 0
for f in images:
    if "error" in results[f]:
        continue
    one = subprocess.run([binary, "--weights", weights, "--json", "--logits", f], capture_output=True, text=True,
                         env={**os.environ, "RESNET18_TIMING": "1"}, timeout=120)
    whole = subprocess.run([binary, "--weights", weights, "--json", "--logits", "--threads", "1", f], capture_output=True, text=True, timeout=120)
    logits = json.loads(one.stdout)["logits"] if one.returncode == 0 else None
    same = logits is not None and whole.returncode == 0 and logits == json.loads(whole.stdout)["logits"]
    close = logits is not None and float(np.abs(np.array(logits, dtype=np.float32) - torch_logits[f]).max()) <= bound
    bands = re.search(r"first-layer bands run behind the decoding (\d+)", one.stderr)
    streamed += bool(bands and int(bands.group(1)) > 0)
    # The published binary's start, noted by StartPages.c's constructor, reaches the report.
    since = re.search(r"since the process's first constructor: Main at ([\d.]+) ms, this line at ([\d.]+) ms", one.stderr)
    if not (since and 0 < float(since.group(1)) < float(since.group(2))):
        print(f"FAIL {f}: RESNET18_TIMING gives no time since the start: {one.stderr.strip().splitlines()[-1:]}")
        failed = True
    if not (same and close):
        print(f"FAIL {f} alone: " + ("logits differ from the one-thread run's" if not same else "max |dlogit| over the bound"))
        failed = True
print(f"alone: {len(images)} runs, logits within the bound and as on one thread; {streamed} ran conv1 bands behind the decoding")
sys.exit(1 if failed else 0)
