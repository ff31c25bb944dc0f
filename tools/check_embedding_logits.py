#!/usr/bin/env python3
"""tools/check_embedding.sh's comparison: the embedding app's output against PyTorch's logits.

usage: check_embedding_logits.py OUTPUT ISA FIXTURES_DIR [CLI]
OUTPUT's first line is `isa NAME` (must be ISA); every other line is an input and its 1000 logits. A fixture
tensor (inputN.npy) is held to PyTorch's inputN.logits.npy within 1e-4; an image, having no PyTorch logits among
the fixtures, to the published CLI's on the same weights within 1e-4 (the CLI's own parity with PyTorch on images
is tools/check_image_parity.py's).
"""
import json
import os
import subprocess
import sys

import numpy as np


def main():
    out, isa, fixtures = sys.argv[1:4]
    cli = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
    lines = open(out).read().splitlines()
    assert lines[0] == f"isa {isa}", f"{out}: expected 'isa {isa}', got {lines[0]!r}"
    worst = 0.0
    for line in lines[1:]:
        name, *values = line.split(" ")
        got = np.array([float(v) for v in values], dtype=np.float32)
        assert got.shape == (1000,), f"{out}: {name}: {got.shape[0]} logits"
        if name.endswith(".npy"):
            want = np.load(name[:-len(".npy")] + ".logits.npy")
        else:
            assert cli, f"{out}: {name}: an image needs the CLI to compare with"
            r = subprocess.run([cli, "--weights", os.path.join(fixtures, "weights.pth"), "--json", "--logits", name],
                               check=True, capture_output=True, text=True)
            want = np.array(json.loads(r.stdout)["logits"], dtype=np.float32)
        d = float(np.abs(got - want).max())
        assert d <= 1e-4, f"{out}: {name}: max |dlogit| {d:.3g}"
        assert list(np.argsort(-got)[:5]) == list(np.argsort(-want)[:5]), f"{out}: {name}: top-5 differs"
        worst = max(worst, d)
    print(f"{out} ({isa}): {len(lines) - 1} inputs, max |dlogit| {worst:.3g}")


if __name__ == "__main__":
    main()
