"""Two-way bridge between torchvision modules and the arch/*.json layer specs.

`export(model, name, input_shape)` writes the module tree of a torch model in the spec format (one line
per module, attributes as in the repr); `build(spec)` builds a torch nn.Module from a spec, with the same
state_dict keys and the same forward as torchvision's ResNet, so narrow test networks can be made from
the same JSON the C# generator compiles.
"""
import json

import torch
from torch import nn


def _pair(v):
    return list(v) if isinstance(v, (tuple, list)) else v


def _module_json(name, m):
    t = type(m).__name__
    d = {"name": name, "type": t}
    if isinstance(m, nn.Conv2d):
        d.update(in_channels=m.in_channels, out_channels=m.out_channels, kernel_size=_pair(m.kernel_size),
                 stride=_pair(m.stride), padding=_pair(m.padding), dilation=_pair(m.dilation), groups=m.groups,
                 bias=m.bias is not None, padding_mode=m.padding_mode)
    elif isinstance(m, nn.BatchNorm2d):
        d.update(num_features=m.num_features, eps=m.eps, momentum=m.momentum, affine=m.affine,
                 track_running_stats=m.track_running_stats)
    elif isinstance(m, nn.ReLU):
        d.update(inplace=m.inplace)
    elif isinstance(m, nn.MaxPool2d):
        d.update(kernel_size=_pair(m.kernel_size), stride=_pair(m.stride), padding=_pair(m.padding),
                 dilation=_pair(m.dilation), ceil_mode=m.ceil_mode)
    elif isinstance(m, nn.AdaptiveAvgPool2d):
        d.update(output_size=_pair(m.output_size))
    elif isinstance(m, nn.Linear):
        d.update(in_features=m.in_features, out_features=m.out_features, bias=m.bias is not None)
    children = list(m.named_children())
    if children:
        d["modules"] = [_module_json(n, c) for n, c in children]
    return d


def _dump(d, indent):
    pad = "  " * indent
    kids = d.get("modules")
    flat = {k: v for k, v in d.items() if k != "modules"}
    head = json.dumps(flat)
    if not kids:
        return pad + head
    inner = ",\n".join(_dump(k, indent + 2) for k in kids)
    return f'{pad}{head[:-1]}, "modules": [\n{inner}\n{pad}]}}'


def export(model, name, input_shape):
    top = {"name": name, "type": type(model).__name__, "input": list(input_shape)}
    kids = ",\n".join(_dump(_module_json(n, c), 2) for n, c in model.named_children())
    head = json.dumps(top)
    return f'{head[:-1]}, "modules": [\n{kids}\n]}}\n'


class BasicBlock(nn.Module):
    """torchvision.models.resnet.BasicBlock's forward, built from a spec's children."""

    def __init__(self, children):
        super().__init__()
        for n, c in children:
            setattr(self, n, c)

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if hasattr(self, "downsample"):
            identity = self.downsample(x)
        return self.relu(out + identity)


class Net(nn.Module):
    """torchvision.models.resnet.ResNet's forward: children in order, flatten before Linear."""

    def __init__(self, children):
        super().__init__()
        for n, c in children:
            setattr(self, n, c)

    def forward(self, x):
        for m in self.children():
            if isinstance(m, nn.Linear):
                x = torch.flatten(x, 1)
            x = m(x)
        return x


def _tup(v):
    return tuple(v) if isinstance(v, list) else v


def _build_module(d):
    t = d["type"]
    if t == "Conv2d":
        return nn.Conv2d(d["in_channels"], d["out_channels"], _tup(d["kernel_size"]), _tup(d["stride"]),
                         _tup(d["padding"]), _tup(d["dilation"]), d["groups"], d["bias"], d["padding_mode"])
    if t == "BatchNorm2d":
        return nn.BatchNorm2d(d["num_features"], d["eps"], d["momentum"], d["affine"], d["track_running_stats"])
    if t == "ReLU":
        return nn.ReLU(d["inplace"])
    if t == "MaxPool2d":
        return nn.MaxPool2d(_tup(d["kernel_size"]), _tup(d["stride"]), _tup(d["padding"]), _tup(d["dilation"]),
                            ceil_mode=d["ceil_mode"])
    if t == "AdaptiveAvgPool2d":
        return nn.AdaptiveAvgPool2d(_tup(d["output_size"]))
    if t == "Linear":
        return nn.Linear(d["in_features"], d["out_features"], d["bias"])
    kids = [(k["name"], _build_module(k)) for k in d.get("modules", [])]
    if t == "Sequential":
        return nn.Sequential(*[m for _, m in kids])
    if t == "BasicBlock":
        return BasicBlock(kids)
    raise ValueError(f"unknown module type {t}")


def build(spec):
    return Net([(k["name"], _build_module(k)) for k in spec["modules"]])


def load(path):
    with open(path) as f:
        return json.load(f)


if __name__ == "__main__":
    import torchvision
    print(export(torchvision.models.resnet18(), "ResNet18", [3, 224, 224]), end="")
