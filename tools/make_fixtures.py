"""Makes parity fixtures with real PyTorch: seeded random weights with randomized BatchNorm statistics and
affine parameters (so folding is exercised), saved with torch.save; random inputs as .npy; PyTorch's logits.

    python3 tools/make_fixtures.py --spec arch/resnet18.json --torchvision --seed 1 --out fixtures/full
    python3 tools/make_fixtures.py --spec tests/specs/tiny_resnet.json --seed 7 --out tests/fixtures/tiny

--torchvision builds torchvision.models.resnet18() itself (and checks the spec mirrors it) instead of the
model built from the spec. --onnx also exports the model to model.onnx (for the benchmarks).
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spec as specmod  # noqa: E402


def randomize(model, gen):
    """Kaiming-like conv/linear weights are already random; make BatchNorm non-trivial."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=gen) * 1.0 + 0.5)
                m.bias.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_mean.copy_(torch.randn(n, generator=gen) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=gen) * 1.5 + 0.5)
                m.num_batches_tracked.fill_(int(torch.randint(0, 1000, (1,), generator=gen)))
            elif isinstance(m, torch.nn.Linear) and m.bias is not None:
                m.bias.copy_(torch.randn(m.out_features, generator=gen) * 0.1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--inputs", type=int, default=2)
    ap.add_argument("--torchvision", action="store_true")
    ap.add_argument("--onnx", action="store_true")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed + 1000)
    spec = specmod.load(args.spec)
    if args.torchvision:
        import torchvision
        model = torchvision.models.resnet18()
        built = specmod.build(spec)
        assert str(built).replace("Net(", "ResNet(", 1) == str(model), "spec does not mirror torchvision's resnet18()"
    else:
        model = specmod.build(spec)
    randomize(model, gen)
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(args.out, "weights.pth"))

    c, h, w = spec["input"]
    meta = {"spec": os.path.basename(args.spec), "seed": args.seed, "torch": torch.__version__, "inputs": []}
    with torch.no_grad():
        for i in range(args.inputs):
            x = torch.randn(1, c, h, w, generator=gen)
            logits = model(x)[0].numpy().astype(np.float32)
            np.save(os.path.join(args.out, f"input{i}.npy"), x[0].numpy().astype(np.float32))
            np.save(os.path.join(args.out, f"input{i}.logits.npy"), logits)
            meta["inputs"].append({"file": f"input{i}.npy", "top5": [int(k) for k in np.argsort(-logits)[:5]]})
        if args.onnx:
            torch.onnx.export(model, torch.randn(1, c, h, w), os.path.join(args.out, "model.onnx"),
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}}, opset_version=13)
    with open(os.path.join(args.out, "fixtures.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
