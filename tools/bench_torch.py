#!/usr/bin/env python3
"""PyTorch's side of `ResNet.Bench compare`: torchvision's resnet18 on the same weights, timed block by block.

The compare process starts this once (importing torch takes seconds, which must not land in a block) and then
writes one request per line, `MODE THREADS BATCH PASSES`; for each, this runs one untimed pass (the block's
warm-up, as the other engines get) and PASSES timed ones, and answers one JSON line `{"ms": [...]}`. Both modes are
fp32 under `torch.inference_mode()` with `torch.set_num_threads` per block: `eager` is how a PyTorch user runs the
model; `frozen` is PyTorch's own inference path, `torch.jit.optimize_for_inference(torch.jit.freeze(
torch.jit.script(model)))` (BatchNorm folded, oneDNN's blocked layout and fused convolutions), whose profiling
executor specializes at the first calls of each batch size, so those get three more untimed passes.
The first line written is `{"ready": true, "torch": VERSION, ...}` once the weights are loaded.
"""
import argparse
import json
import sys
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True, help="a torchvision resnet18 state_dict (fixtures/full/weights.pth)")
    args = ap.parse_args()

    model = torchvision.models.resnet18()
    model.load_state_dict(torch.load(args.weights, map_location="cpu"))
    model.eval()
    models = {"eager": model, "frozen": torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(model)))}
    inputs = {}
    warmed = set()
    with torch.inference_mode():
        probe = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        frozen_delta = (models["frozen"](probe) - model(probe)).abs().max().item()
    print(json.dumps({"ready": True, "torch": torch.__version__, "torchvision": torchvision.__version__,
                      "frozen_max_abs_delta": frozen_delta}), flush=True)
    for line in sys.stdin:
        parts = line.split()
        if not parts:
            continue
        mode = parts[0]
        threads, batch, passes = (int(p) for p in parts[1:])
        m = models[mode]
        torch.set_num_threads(threads)
        if batch not in inputs:
            inputs[batch] = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(7))
        x = inputs[batch]
        times = []
        with torch.inference_mode():
            for _ in range(1 if (mode, batch) in warmed else 4):
                m(x)
            warmed.add((mode, batch))
            for _ in range(passes):
                t0 = time.perf_counter()
                m(x)
                times.append((time.perf_counter() - t0) * 1000)
        print(json.dumps({"ms": times}), flush=True)


if __name__ == "__main__":
    main()
