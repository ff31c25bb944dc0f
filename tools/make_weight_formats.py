"""Writes a fixture directory's weights in the other formats and dtypes a user may bring, with PyTorch's logits for
each: the state_dict converted to float16, bfloat16 and float64 and saved with torch.save, saved in torch.save's legacy
format (PyTorch before 1.6; float32 and float16), and saved as safetensors (float32, float16, bfloat16). The logits are those of the fixture's model after `load_state_dict` of the converted
weights (which copies them into its float32 parameters), on the fixture's inputs.

    /usr/bin/python3 tools/make_weight_formats.py fixtures/full fixtures/formats --copy-inputs
    /usr/bin/python3 tools/make_weight_formats.py tests/fixtures/tiny tests/fixtures/formats --checkpoints

OUT/<variant>/ gets weights.pth or weights.safetensors and input<i>.logits.npy (with --copy-inputs also input<i>.npy,
so that tools/check_cli_parity.py can run on it; with --checkpoints also OUT/checkpoints/, a training checkpoint and a
DataParallel state_dict of the same weights, which are refused). Debian has no `safetensors` package, so the files are written here
from the format's specification (https://github.com/huggingface/safetensors#format): an 8-byte little-endian header
length, a JSON header padded with spaces to a multiple of 8 bytes, then the tensors' bytes back to back, as the
reference writer orders them (by dtype size, largest first, then by name), with a __metadata__ entry.
"""
import argparse
import glob
import json
import os
import shutil
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spec as specmod  # noqa: E402

SAFETENSORS_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
                      torch.int64: "I64"}


def write_safetensors(path, state_dict):
    tensors = {k: v.contiguous() for k, v in state_dict.items()}
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header, blobs, at = {}, [], 0
    for k in order:
        t = tensors[k]
        # bfloat16 has no numpy dtype: its bytes are those of the same-sized int16 view.
        raw = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[k] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def model_for(fixtures):
    meta = json.load(open(os.path.join(fixtures, "fixtures.json")))
    if meta["spec"] == "resnet18.json":
        import torchvision
        return torchvision.models.resnet18()
    here = os.path.dirname(os.path.abspath(__file__))
    for d in ("../arch", "../tests/specs"):
        p = os.path.join(here, d, meta["spec"])
        if os.path.exists(p):
            return specmod.build(specmod.load(p))
    sys.exit(f"{fixtures}: spec {meta['spec']} not found")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("fixtures")
    ap.add_argument("out")
    ap.add_argument("--copy-inputs", action="store_true")
    ap.add_argument("--checkpoints", action="store_true", help="also a training checkpoint and a DataParallel state_dict")
    args = ap.parse_args()

    sd = torch.load(os.path.join(args.fixtures, "weights.pth"))
    inputs = sorted(f for f in glob.glob(os.path.join(args.fixtures, "input*.npy")) if not f.endswith(".logits.npy"))
    model = model_for(args.fixtures)
    variants = [("float16-pth", torch.float16, "pth"), ("bfloat16-pth", torch.bfloat16, "pth"),
                ("float64-pth", torch.float64, "pth"), ("float32-legacy-pth", torch.float32, "legacy"),
                ("float16-legacy-pth", torch.float16, "legacy"), ("float32-safetensors", torch.float32, "safetensors"),
                ("float16-safetensors", torch.float16, "safetensors"),
                ("bfloat16-safetensors", torch.bfloat16, "safetensors")]
    for name, dtype, fmt in variants:
        converted = type(sd)((k, v.to(dtype) if v.is_floating_point() else v) for k, v in sd.items())
        d = os.path.join(args.out, name)
        os.makedirs(d, exist_ok=True)
        if fmt == "pth":
            torch.save(converted, os.path.join(d, "weights.pth"))
        elif fmt == "legacy":
            torch.save(converted, os.path.join(d, "weights.pth"), _use_new_zipfile_serialization=False)
        else:
            write_safetensors(os.path.join(d, "weights.safetensors"), converted)
        model.load_state_dict(converted)
        model.eval()
        with torch.no_grad():
            for f in inputs:
                x = torch.from_numpy(np.load(f))[None]
                base = os.path.basename(f)[:-len(".npy")]
                np.save(os.path.join(d, base + ".logits.npy"), model(x)[0].numpy().astype(np.float32))
                if args.copy_inputs:
                    shutil.copy(f, d)
        print(f"{d}: {len(inputs)} inputs")
    if args.checkpoints:
        # What training scripts save, which load_state_dict does not take as it is either: refused with the remedy.
        d = os.path.join(args.out, "checkpoints")
        os.makedirs(d, exist_ok=True)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        torch.save({"epoch": 3, "arch": "resnet18", "state_dict": sd, "best_acc1": torch.tensor(71.5),
                    "optimizer": optimizer.state_dict()}, os.path.join(d, "checkpoint.pth"))
        torch.save(type(sd)(("module." + k, v) for k, v in sd.items()), os.path.join(d, "dataparallel.pth"))
        print(f"{d}: checkpoint.pth, dataparallel.pth")


if __name__ == "__main__":
    main()
