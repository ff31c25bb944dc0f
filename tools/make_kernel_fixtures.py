"""Cases for the generic reference kernels, computed by PyTorch: every Conv2d option (stride, padding with each
padding_mode, dilation, groups, bias), MaxPool2d with dilation and ceil_mode, AdaptiveAvgPool2d to odd sizes.

    python3 tools/make_kernel_fixtures.py tests/fixtures/kernels
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(3)
cases = []


def save(name, **arrays):
    for k, v in arrays.items():
        np.save(os.path.join(out, f"{name}.{k}.npy"), v.detach().numpy().astype(np.float32))


convs = [
    dict(ic=3, oc=4, h=7, w=6, k=(3, 3), s=(1, 1), p=(1, 1), d=(1, 1), g=1, bias=True, mode="zeros"),
    dict(ic=4, oc=6, h=9, w=8, k=(3, 2), s=(2, 1), p=(1, 2), d=(1, 1), g=2, bias=False, mode="zeros"),
    dict(ic=2, oc=3, h=8, w=7, k=(3, 3), s=(1, 2), p=(2, 2), d=(2, 1), g=1, bias=True, mode="reflect"),
    dict(ic=2, oc=2, h=5, w=6, k=(3, 3), s=(1, 1), p=(2, 1), d=(1, 1), g=1, bias=True, mode="replicate"),
    dict(ic=3, oc=3, h=6, w=5, k=(3, 3), s=(2, 2), p=(1, 3), d=(1, 1), g=3, bias=True, mode="circular"),
    dict(ic=2, oc=4, h=6, w=6, k=(1, 1), s=(2, 2), p=(0, 0), d=(1, 1), g=1, bias=False, mode="zeros"),
]
for i, c in enumerate(convs):
    conv = torch.nn.Conv2d(c["ic"], c["oc"], c["k"], c["s"], c["p"], c["d"], c["g"], c["bias"], c["mode"])
    x = torch.randn(2, c["ic"], c["h"], c["w"])
    name = f"conv{i}"
    save(name, x=x, w=conv.weight, y=conv(x), **({"b": conv.bias} if c["bias"] else {}))
    cases.append(dict(kind="conv", name=name, **c))

pools = [
    dict(c=2, h=7, w=8, k=(3, 3), s=(2, 2), p=(1, 1), d=(1, 1), ceil=False),
    dict(c=2, h=7, w=8, k=(3, 2), s=(2, 2), p=(1, 1), d=(1, 1), ceil=True),
    dict(c=1, h=9, w=10, k=(2, 3), s=(2, 3), p=(1, 1), d=(2, 2), ceil=True),
    dict(c=1, h=5, w=5, k=(2, 2), s=(2, 2), p=(0, 0), d=(1, 1), ceil=True),
]
for i, c in enumerate(pools):
    x = torch.randn(2, c["c"], c["h"], c["w"])
    y = F.max_pool2d(x, c["k"], c["s"], c["p"], c["d"], ceil_mode=c["ceil"])
    name = f"maxpool{i}"
    save(name, x=x, y=y)
    cases.append(dict(kind="maxpool", name=name, **c))

for i, (h, w, oh, ow) in enumerate([(7, 7, 1, 1), (7, 9, 3, 4), (5, 5, 5, 5), (10, 3, 4, 2)]):
    x = torch.randn(2, 3, h, w)
    name = f"avgpool{i}"
    save(name, x=x, y=F.adaptive_avg_pool2d(x, (oh, ow)))
    cases.append(dict(kind="avgpool", name=name, c=3, h=h, w=w, oh=oh, ow=ow))

with open(os.path.join(out, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
