"""Writes tests/fixtures/views/views.pth with torch.save: tensors that share storages, as views at an offset,
before and after the tensor that is their whole storage, and non-contiguous ones, in float32 and in the other
floating dtypes, so that the reader's paths for them are tested on a file real PyTorch wrote. Values are aranges,
so the test states them without Python. The same state_dict also goes into views-legacy.pth, in torch.save's legacy
format (PyTorch before 1.6), and into views-legacy-v1.pth, whose tensors are pickled as PyTorch 0.3 pickled them
(torch._utils._rebuild_tensor, without the _v2); torch.load reads each back equal to the state_dict, checked here.

    /usr/bin/python3 tools/make_views_fixture.py tests/fixtures/views
"""
import collections
import os
import sys

import torch

t = torch.arange(10, dtype=torch.float32)          # storage A, 10 elements
u = torch.arange(100, 112, dtype=torch.float32)    # storage B, 12 elements
m = torch.arange(200, 212, dtype=torch.float32).view(3, 4)  # storage C
sd = collections.OrderedDict()
sd["whole"] = t                # the whole of A, first
sd["tail"] = t[2:]             # A from offset 2
sd["head_of_u"] = u[:5]        # B's first 5, before B's whole tensor
sd["u"] = u                    # the whole of B, after a view of it
sd["transposed"] = m.t()       # C, non-contiguous
sd["row"] = m[1]               # C from offset 4
sd["middle"] = torch.arange(300, 306, dtype=torch.float32)[2:5]  # the only view of storage D, at an offset
# Other floating dtypes, which the reader converts to float32: a whole float16 storage, then a view of it; a
# transposed bfloat16 one (small integers: bfloat16 has 8 significant bits); a float64 view at an offset.
h = torch.arange(400, 410, dtype=torch.float16)
sd["half_whole"] = h
sd["half_tail"] = h[3:]
sd["bf16_transposed"] = torch.arange(10, 16, dtype=torch.bfloat16).view(2, 3).t()
sd["f64_middle"] = torch.arange(600, 606, dtype=torch.float64)[1:4]


class PickledAsInPyTorch03:
    """A tensor that pickles as PyTorch 0.3's did: _rebuild_tensor(storage, offset, size, stride)."""

    def __init__(self, t):
        self.t = t

    def __reduce__(self):
        t = self.t
        return torch._utils._rebuild_tensor, (t.storage(), t.storage_offset(), tuple(t.size()), t.stride())


out = sys.argv[1]
files = {"views.pth": (sd, {}), "views-legacy.pth": (sd, {"_use_new_zipfile_serialization": False}),
         "views-legacy-v1.pth": (collections.OrderedDict((k, PickledAsInPyTorch03(v)) for k, v in sd.items()),
                                 {"_use_new_zipfile_serialization": False})}
for name, (obj, kwargs) in files.items():
    path = os.path.join(out, name)
    torch.save(obj, path, **kwargs)
    back = torch.load(path)
    assert list(back) == list(sd), name
    for k, v in sd.items():
        assert back[k].dtype == v.dtype and back[k].shape == v.shape and torch.equal(back[k], v), (name, k)
    print(path)
