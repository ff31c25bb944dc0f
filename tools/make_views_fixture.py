"""Writes tests/fixtures/views/views.pth with torch.save: tensors that share storages, as views at an offset,
before and after the tensor that is their whole storage, and non-contiguous ones, in float32 and in the other
floating dtypes, so that the reader's paths for them are tested on a file real PyTorch wrote. Values are aranges,
so the test states them without Python. The same state_dict also goes into views-legacy.pth, in torch.save's legacy
format (PyTorch before 1.6), and into views-legacy-v1.pth, whose tensors are pickled as PyTorch 0.3 pickled them
(torch._utils._rebuild_tensor, without the _v2); torch.load reads each back equal to the state_dict, checked here.
views-big-endian.pth is views.pth as a big-endian machine's PyTorch (2.1 and later) writes it: every storage's elements
byte-swapped, and a byteorder record saying "big", which torch.load reads to swap them back. PyTorch 1.13 neither
writes nor reads that record, so this file is checked by swapping back here, not by torch.load.

    /usr/bin/python3 tools/make_views_fixture.py tests/fixtures/views
"""
import collections
import os
import pickle
import sys
import zipfile

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


class StorageSizes(pickle.Unpickler):
    """Reads data.pkl only to learn each storage's element size (calling nothing)."""

    SIZES = {"FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "DoubleStorage": 8, "LongStorage": 8}

    def __init__(self, f):
        super().__init__(f)
        self.sizes = {}

    def find_class(self, module, name):
        if module == "torch" and name in self.SIZES:
            return name
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        return lambda *args: None

    def persistent_load(self, pid):
        self.sizes[pid[2]] = self.SIZES[pid[1]]


def big_endian_copy(src, dst):
    with zipfile.ZipFile(src) as z:
        prefix = next(n for n in z.namelist() if n.endswith("/data.pkl"))[:-len("data.pkl")]
        reader = StorageSizes(z.open(prefix + "data.pkl"))
        reader.load()
        with zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as out:
            for name in z.namelist():
                data = z.read(name)
                key = name[len(prefix + "data/"):] if name.startswith(prefix + "data/") else None
                if key is not None:
                    size = reader.sizes[key]
                    data = b"".join(data[i:i + size][::-1] for i in range(0, len(data), size))
                out.writestr(name, data)
            out.writestr(prefix + "byteorder", b"big")
    # Swapped back, the storages are views.pth's again.
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst) as b:
        for name in a.namelist():
            key = name[len(prefix + "data/"):] if name.startswith(prefix + "data/") else None
            if key is not None:
                size, data = reader.sizes[key], b.read(name)
                assert b"".join(data[i:i + size][::-1] for i in range(0, len(data), size)) == a.read(name), name
    print(dst)


big_endian_copy(os.path.join(out, "views.pth"), os.path.join(out, "views-big-endian.pth"))
