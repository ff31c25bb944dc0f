"""Makes parity fixtures with real PyTorch: seeded random weights with randomized BatchNorm statistics and
affine parameters (so folding is exercised), saved with torch.save; random inputs as .npy; PyTorch's logits.

    python3 tools/make_fixtures.py --spec arch/resnet18.json --torchvision --seed 1 --out fixtures/full
    python3 tools/make_fixtures.py --spec tests/specs/tiny_resnet.json --seed 7 --out tests/fixtures/tiny

--torchvision builds torchvision.models.resnet18() itself (and checks the spec mirrors it) instead of the
model built from the spec. --onnx also exports the model to model.onnx (for the benchmarks).

--calibrate DIR makes the statistics a trained network has instead of uniform random ones, since the real
torchvision weights cannot be downloaded here: the inputs are DIR's photos (*.jpg, *.png) through torchvision's
ImageNet preprocessing, each BatchNorm's running mean and variance are its input's real statistics over those
photos, and 5% of every convolution's output channels are nearly dead (weights × 1e-3, so their variance is tiny
and BatchNorm folds them into weights hundreds of times larger, as in trained networks); logits come out around
±10 to ±15, like the pretrained model's on photos.

    python3 tools/make_fixtures.py --spec arch/resnet18.json --torchvision --seed 2 --calibrate /usr/share/darknet/data --out fixtures/calibrated
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


def photos(directory, c, h, w):
    """DIR's photos as torchvision's ImageNet preprocessing makes them (Resize(256), CenterCrop(224) at 224×224)."""
    import glob
    import torchvision.transforms as T
    from PIL import Image
    files = sorted(glob.glob(os.path.join(directory, "*.jpg")) + glob.glob(os.path.join(directory, "*.png")))
    if not files:
        sys.exit(f"{directory}: no .jpg or .png photos to calibrate on")
    assert c == 3, "--calibrate needs a 3-channel input"
    tf = T.Compose([T.Resize(h * 256 // 224), T.CenterCrop((h, w)), T.ToTensor(),
                    T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])])
    return torch.stack([tf(Image.open(f).convert("RGB")) for f in files])


def calibrate(model, images, gen):
    """Near-dead channels, BatchNorm statistics measured on the photos, random affine parameters."""
    with torch.no_grad():
        conv = None
        for m in model.modules():
            if isinstance(m, torch.nn.Conv2d):
                conv = m
            elif isinstance(m, torch.nn.BatchNorm2d):
                dead = torch.rand(m.num_features, generator=gen) < 0.05
                conv.weight[dead] *= 1e-3
                m.weight.copy_(torch.rand(m.num_features, generator=gen) * 1.3 + 0.2)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
                m.reset_running_stats()
                m.momentum = None  # a cumulative average: one batch gives exactly its statistics
                m.num_batches_tracked.fill_(0)
            elif isinstance(m, torch.nn.Linear):
                m.weight.mul_(8)  # logits on the pretrained model's scale
                m.bias.copy_(torch.randn(m.out_features, generator=gen) * 0.1)
        model.train()
        model(images)  # each BatchNorm records its input's statistics, layer after layer
        model.eval()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--inputs", type=int, default=2)
    ap.add_argument("--torchvision", action="store_true")
    ap.add_argument("--onnx", action="store_true")
    ap.add_argument("--calibrate", metavar="DIR", help="photos to take BatchNorm statistics and inputs from")
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
    c, h, w = spec["input"]
    images = None
    if args.calibrate:
        images = photos(args.calibrate, c, h, w)[:args.inputs]
        calibrate(model, images, gen)
    else:
        randomize(model, gen)
    model.eval()
    os.makedirs(args.out, exist_ok=True)
    torch.save(model.state_dict(), os.path.join(args.out, "weights.pth"))

    meta = {"spec": os.path.basename(args.spec), "seed": args.seed, "torch": torch.__version__, "inputs": []}
    if args.calibrate:
        meta["calibrated_on"] = args.calibrate
    with torch.no_grad():
        for i in range(args.inputs if images is None else len(images)):
            x = torch.randn(1, c, h, w, generator=gen) if images is None else images[i:i + 1]
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
