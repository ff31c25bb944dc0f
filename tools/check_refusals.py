"""Acceptance parity on damaged and unusual images: whether PIL 9.4 decodes each, and what it decodes.

`resnet18 --json --logits` must refuse exactly the files PIL refuses, and where both decode one, give torchvision's
logits on PIL's pixels within the bound with the same top-5. The files are made here, seeded, from tests/fixtures/images.
WebPs (PIL's animation decoder reads every chunk of the file and decodes a lossy image's alpha plane):
  - the container: chunks out of order, repeated, outside an animation's frames, frames off the canvas, flags, stray
    bytes, unpadded chunks, alpha chunks where the demuxer drops or refuses them;
  - alpha planes: every header byte, cut by 1 to 12 bytes (libwebp's byte-per-pixel decoding takes data that runs out
    with the last pixel), flipped bits, on planes libwebp decodes a byte per pixel and as ARGB;
  - image data (VP8, VP8L, ALPH chunks): flipped bits, cuts, zeroed bytes (an odd-sized chunk's pad byte is decoded).
PNGs, BMPs, GIFs and Netpbm files: flipped bits, cuts, zeroed bytes anywhere (PIL's PNG reader skips IDAT CRCs and
stops at the last row, its BMP reader needs no padding after the last row, its plain Netpbm reader repeats a cut
number...). JPEGs: the same, and damage aimed at the entropy-coded data, which libjpeg decodes through with warnings
that PIL ignores (bad Huffman codes, data running into a marker, restart markers out of order or missing, fill bytes
where libjpeg-turbo's fast path leaves coefficients behind). TIFFs are not among them: damaged ones still differ
(libtiff's tag handling; see the README).

    python3 tools/check_refusals.py out/resnet18 fixtures/full/weights.pth 1e-4
"""
import glob
import io
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

from make_image_fixtures import scan_data
from torch_reference import EVAL_TRANSFORM as tf, resnet18

binary, weights, bound = sys.argv[1], sys.argv[2], float(sys.argv[3])
fixtures = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "images")
rng = random.Random(38)


def chunks(b):
    out, p = [], 12
    while p + 8 <= len(b):
        tag, n = b[p:p + 4], struct.unpack("<I", b[p + 4:p + 8])[0]
        out.append((tag, b[p + 8:p + 8 + n]))
        p += 8 + n + (n & 1)
    return out


def chunk(tag, data, pad=True):
    return tag + struct.pack("<I", len(data)) + data + (b"\0" if pad and len(data) & 1 else b"")


def riff(parts):
    body = b"WEBP" + b"".join(chunk(t, d) if isinstance(t, bytes) else d for t, d in parts)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def u24(v):
    return struct.pack("<I", v)[:3]


def vp8x(flags, w, h):
    return (b"VP8X", bytes([flags, 0, 0, 0]) + u24(w - 1) + u24(h - 1))


def anmf(x, y, w, h, parts):
    return (b"ANMF", u24(x // 2) + u24(y // 2) + u24(w - 1) + u24(h - 1) + u24(100) + b"\0"
            + b"".join(chunk(t, d) for t, d in parts))


def load(name):
    with open(os.path.join(fixtures, name), "rb") as f:
        return f.read()


def damage(data, modes, first=0, longest_end_cut=5):
    """One of `modes`, drawn: 1 or 3 flipped bits from byte `first` on, a cut anywhere, up to `longest_end_cut` bytes
    off the end, up to 7 zeroed bytes, or a flipped bit in the last 23 bytes ("tail")."""
    d = bytearray(data)
    mode = rng.choice(modes)
    if mode == "flip":
        for _ in range(rng.choice([1, 1, 3])):
            p = rng.randrange(first, len(d))
            d[p] ^= 1 << rng.randrange(8)
    elif mode == "cut":
        d = d[:rng.randrange(1, len(d))]
    elif mode == "cut-end":
        d = d[:len(d) - rng.randrange(1, min(longest_end_cut + 1, len(d)))]
    elif mode == "tail":
        p = max(0, len(d) - rng.randrange(1, 24))
        d[p] ^= 1 << rng.randrange(8)
    else:
        p = rng.randrange(len(d))
        n = min(rng.randrange(1, 8), len(d) - p)
        d[p:p + n] = bytes(n)
    return mode, bytes(d)


files = {}
# The container, around a 45×33 frame with a lossless alpha plane and a 61×45 lossless image.
base = dict(chunks(load("cwebp_alpha.webp")))
alph, vp8, W, H = base[b"ALPH"], base[b"VP8 "], 45, 33
vp8l = dict(chunks(load("webp_lossless.webp")))[b"VP8L"]
anim = (b"ANIM", bytes(6))
raw = bytes([0]) + bytes(W * H)
structure = {
    "ok": [vp8x(0x10, W, H), (b"ALPH", alph), (b"VP8 ", vp8)],
    "flag-bit0": [vp8x(0x11, W, H), (b"ALPH", alph), (b"VP8 ", vp8)],
    "flag-bit7": [vp8x(0x90, W, H), (b"ALPH", alph), (b"VP8 ", vp8)],
    "flags-all": [vp8x(0x3C, W, H), (b"ALPH", alph), (b"VP8 ", vp8)],
    "no-alpha-flag-bad-alpha": [vp8x(0, W, H), (b"ALPH", alph[:5]), (b"VP8 ", vp8)],
    "two-images": [vp8x(0, W, H), (b"VP8 ", vp8), (b"VP8 ", vp8)],
    "two-images-apart": [vp8x(0, W, H), (b"VP8 ", vp8), (b"XYZW", b"12"), (b"VP8 ", vp8)],
    "two-alphas": [vp8x(0x10, W, H), (b"ALPH", alph), (b"ALPH", alph), (b"VP8 ", vp8)],
    "alpha-after": [vp8x(0x10, W, H), (b"VP8 ", vp8), (b"ALPH", alph)],
    "alpha-after-no-flag": [vp8x(0, W, H), (b"VP8 ", vp8), (b"ALPH", alph)],
    "alpha-apart": [vp8x(0x10, W, H), (b"ALPH", alph), (b"XYZW", b"12"), (b"VP8 ", vp8)],
    "alpha-alone": [vp8x(0x10, W, H), (b"ALPH", alph)],
    "alpha-lossless": [vp8x(0x10, 61, 45), (b"ALPH", alph), (b"VP8L", vp8l)],
    "alpha-empty": [vp8x(0x10, W, H), (b"ALPH", b""), (b"VP8 ", vp8)],
    "alpha-raw": [vp8x(0x10, W, H), (b"ALPH", raw), (b"VP8 ", vp8)],
    "alpha-raw-short": [vp8x(0x10, W, H), (b"ALPH", raw[:-1]), (b"VP8 ", vp8)],
    "alpha-raw-gradient": [vp8x(0x10, W, H), (b"ALPH", bytes([0x0C]) + raw[1:]), (b"VP8 ", vp8)],
    "canvas": [vp8x(0, W + 1, H), (b"VP8 ", vp8)],
    "metadata": [vp8x(0x2C, W, H), (b"ICCP", b"abc"), (b"VP8 ", vp8), (b"EXIF", b"abc"), (b"XMP ", b"x")],
    "vp8x-again": [vp8x(0, W, H), (b"VP8 ", vp8), vp8x(0, W, H)],
    "anim-chunk-in-still": [vp8x(0, W, H), anim, (b"VP8 ", vp8)],
    "frame-in-still": [vp8x(0, W, H), anim, anmf(0, 0, W, H, [(b"VP8 ", vp8)]), (b"VP8 ", vp8)],
    "frame-after-still": [vp8x(0, W, H), (b"VP8 ", vp8), anim, anmf(0, 0, W, H, [(b"VP8 ", vp8)])],
    "animation": [vp8x(0x02, W + 6, H + 4), anim, anmf(4, 2, W, H, [(b"ALPH", alph), (b"VP8 ", vp8)])],
    "animation-no-anim": [vp8x(0x02, W, H), anmf(0, 0, W, H, [(b"VP8 ", vp8)])],
    "animation-anim-after": [vp8x(0x02, W, H), anmf(0, 0, W, H, [(b"VP8 ", vp8)]), anim],
    "animation-short-anim": [vp8x(0x02, W, H), (b"ANIM", bytes(4)), anmf(0, 0, W, H, [(b"VP8 ", vp8)])],
    "animation-image-outside": [vp8x(0x02, W, H), anim, anmf(0, 0, W, H, [(b"VP8 ", vp8)]), (b"VP8 ", vp8)],
    "animation-frame-size": [vp8x(0x02, W + 10, H + 10), anim, anmf(0, 0, W + 3, H + 1, [(b"VP8 ", vp8)])],
    "animation-off-canvas": [vp8x(0x02, W + 1, H), anim, anmf(2, 0, W, H, [(b"VP8 ", vp8)])],
    "animation-empty-frame": [vp8x(0x02, W, H), anim, anmf(0, 0, W, H, []), anmf(0, 0, W, H, [(b"VP8 ", vp8)])],
    "animation-empty-last": [vp8x(0x02, W, H), anim, anmf(0, 0, W, H, [(b"VP8 ", vp8)]), anmf(0, 0, W, H, [])],
    "animation-alpha-only": [vp8x(0x02, W, H), anim, anmf(0, 0, W, H, [(b"VP8 ", vp8)]), anmf(0, 0, W, H, [(b"ALPH", alph)])],
    "animation-bad-second": [vp8x(0x02, W, H), anim, anmf(0, 0, W, H, [(b"VP8 ", vp8)]), anmf(0, 0, W, H, [(b"VP8 ", b"\1" * 10)])],
    "animation-unknown-inside": [vp8x(0x02, W, H), anim, anmf(0, 0, W, H, [(b"VP8 ", vp8), (b"XYZW", b"12")])],
    "animation-unknown-before": [vp8x(0x02, W, H), anim, anmf(0, 0, W, H, [(b"XYZW", b"12"), (b"VP8 ", vp8)])],
    "animation-bad-alpha": [vp8x(0x02, W, H), anim, anmf(0, 0, W, H, [(b"ALPH", alph[:9]), (b"VP8 ", vp8)])],
    "animation-alpha-lossless": [vp8x(0x02, 61, 45), anim, anmf(0, 0, 61, 45, [(b"ALPH", alph), (b"VP8L", vp8l)])],
    "stray-bytes": [vp8x(0, W, H), (b"VP8 ", vp8), (None, b"abc")],
    "stray-empty-chunk": [vp8x(0, W, H), (b"VP8 ", vp8), (None, b"abcd\0\0\0\0")],
    "simple-stray-bytes": [(b"VP8 ", vp8), (None, b"abc")],
    "simple-alpha-after": [(b"VP8 ", vp8), (b"ALPH", b"")],
    "simple-alpha-then-lossless": [(b"VP8 ", vp8), (b"ALPH", alph), (b"VP8L", vp8l)],
    "unpadded-last": [vp8x(0, W, H), (b"VP8 ", vp8), (None, chunk(b"XYZW", b"abc", pad=False))],
}
for name, parts in structure.items():
    files[f"structure-{name}.webp"] = riff(parts)


def with_alpha(parts, alpha):
    return riff([(t, alpha if t == b"ALPH" else d) for t, d in parts])


# Alpha planes: cwebp_alpha (two levels) and webp_alpha_ends_early are decoded a byte per pixel, cwebp_alpha_smooth as ARGB.
for fixture in ["cwebp_alpha.webp", "webp_alpha_ends_early.webp", "cwebp_alpha_smooth.webp", "webp_alpha_pil.webp"]:
    parts = chunks(load(fixture))
    a = dict(parts)[b"ALPH"]
    stem = fixture[:-5]
    for header in range(0, 256, 3):
        files[f"alpha-{stem}-header{header:03d}.webp"] = with_alpha(parts, bytes([header]) + a[1:])
    for cut in range(1, 13):
        files[f"alpha-{stem}-cut{cut}.webp"] = with_alpha(parts, a[:-cut])
    for i in range(20):
        d = bytearray(a)
        for _ in range(rng.choice([1, 1, 2])):
            p = rng.randrange(1, len(d))
            d[p] ^= 1 << rng.randrange(8)
        files[f"alpha-{stem}-flip{i:02d}.webp"] = with_alpha(parts, bytes(d))

# Image data of every WebP fixture.
for path in sorted(glob.glob(os.path.join(fixtures, "*.webp"))):
    parts = chunks(load(os.path.basename(path)))
    stem = os.path.basename(path)[:-5]
    for i, (tag, data) in enumerate(parts):
        if tag not in (b"VP8 ", b"VP8L", b"ALPH"):
            continue
        for k in range(4):
            # An ALPH chunk's header byte is left alone: its values have their own files above.
            mode, d = damage(data, ["flip", "flip", "cut", "cut-end", "zero"], first=1 if tag == b"ALPH" else 0, longest_end_cut=5)
            changed = list(parts)
            changed[i] = (tag, d)
            files[f"data-{stem}-{tag.decode().strip()}-{k}-{mode}.webp"] = riff(changed)
        # A byte short: an even-sized chunk becomes odd, and the decoder gets its pad byte in the lost byte's place.
        changed = list(parts)
        changed[i] = (tag, data[:-1])
        files[f"data-{stem}-{tag.decode().strip()}-one-short.webp"] = riff(changed)

# PNGs, BMPs, GIFs and Netpbm files, damaged byte by byte.
for path in sorted(glob.glob(os.path.join(fixtures, "*"))):
    stem, ext = os.path.splitext(os.path.basename(path))
    if ext not in (".png", ".bmp", ".gif", ".ppm", ".pgm", ".pbm", ".pnm") or os.path.getsize(path) > 300_000:
        continue
    data = load(os.path.basename(path))
    for k in range(3):
        mode, d = damage(data, ["flip", "flip", "cut", "cut-end", "zero", "tail"], longest_end_cut=8)
        files[f"bytes-{stem}-{k}-{mode}{ext}"] = d


# JPEGs, damaged byte by byte, then in their last scan's entropy-coded data.
for path in sorted(glob.glob(os.path.join(fixtures, "*.jpg"))):
    stem = os.path.basename(path)[:-4]
    data = load(os.path.basename(path))
    if len(data) > 300_000:
        continue
    for k in range(2):
        mode, d = damage(data, ["flip", "flip", "cut", "cut-end", "zero", "tail"], longest_end_cut=8)
        files[f"bytes-{stem}-{k}-{mode}.jpg"] = d
    start, end = scan_data(data)
    for k in range(5):
        d, p = bytearray(data), rng.randrange(start, end)
        kind = rng.choice(["flip", "zero", "delete", "insert", "garbage", "marker", "restart", "fill"])
        if kind == "flip":
            d[p] ^= 1 << rng.randrange(8)
        elif kind == "zero":
            n = rng.randrange(1, 6)
            d[p:p + n] = bytes(n)
        elif kind == "delete":
            del d[p:p + rng.randrange(1, 4)]
        elif kind == "insert":
            d[p:p] = bytes([rng.randrange(255)])
        elif kind == "garbage":
            for q in range(p, min(end, p + rng.randrange(2, 30))):
                d[q] = rng.randrange(255)
        elif kind == "fill":
            d[p:p] = rng.choice([b"\xff\xff\x00", b"\xff", b"\xff\xff"])
        elif kind == "marker":
            d[p:p] = bytes([0xFF, rng.choice([0xD0 + rng.randrange(8), 0xD9, 0xC4, 0x01, 0x05, 0xE1, 0xFE, 0xDA])])
        else:
            restarts = [q for q in range(start, end - 1) if d[q] == 0xFF and 0xD0 <= d[q + 1] <= 0xD7]
            if not restarts:
                d[p] = 0
            else:
                q = rng.choice(restarts)
                d[q + 1] = rng.choice([0xD0 + rng.randrange(8), 0x05, 0x00])
        files[f"scan-{stem}-{k}-{kind}.jpg"] = bytes(d)

model = resnet18(weights)
with tempfile.TemporaryDirectory() as tmp:
    pil = {}
    for name, data in files.items():
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)
        try:
            pil[name] = tf(Image.open(os.path.join(tmp, name)).convert("RGB"))
        except Exception as e:  # PIL refuses it: OSError from libwebp, SyntaxError, ValueError...
            pil[name] = e
    out = subprocess.run([binary, "--weights", weights, "--json", "--logits", tmp], capture_output=True, text=True, timeout=1200)
    ours = {os.path.basename(json.loads(l)["file"]): json.loads(l) for l in out.stdout.splitlines()}
    accepted = [n for n in files if not isinstance(pil[n], Exception)]
    expected = {}
    with torch.no_grad():
        for i in range(0, len(accepted), 64):
            batch = accepted[i:i + 64]
            for n, logits in zip(batch, model(torch.stack([pil[n] for n in batch])).numpy()):
                expected[n] = logits
failed = []
for name in files:
    r = ours.get(name)
    if r is None:
        failed.append(f"{name}: no result")
    elif isinstance(pil[name], Exception):
        if "error" not in r:
            failed.append(f"{name}: PIL refuses it ({pil[name]}), resnet18 classifies it")
    elif "error" in r:
        failed.append(f"{name}: PIL decodes it, resnet18 refuses it: {r['error']}")
    else:
        diff = float(np.abs(np.array(r["logits"], dtype=np.float32) - expected[name]).max())
        top_e, top_g = list(np.argsort(-expected[name])[:5]), [t["index"] for t in r["top"]]
        if diff > bound or top_e != top_g:
            failed.append(f"{name}: max |dlogit| {diff:.3g}, top-5 {top_g} (torch {top_e})")
for line in failed:
    print("FAIL", line)
print(f"{len(files)} images: PIL refuses {len(files) - len(accepted)}, decodes {len(accepted)}; "
      f"resnet18 {'agrees on every one' if not failed else f'differs on {len(failed)}'} "
      f"(where both decode: logits within {bound:g} of torch, the same top-5)")
sys.exit(1 if failed else 0)
