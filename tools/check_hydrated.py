"""Checks that StartPages.c's piece gave an executable's ".hydrated" section (where NativeAOT expands its runtime data
at every start) a 2 MiB-aligned start and a whole 2 MiB block to span, so that the section can be one huge page.

    python3 tools/check_hydrated.py out/resnet18 src/ResNet.Native/obj/Release/net10.0/linux-x64/avx2/resnet18-avx2
"""
import subprocess
import sys

HUGE = 2 << 20
failed = False
for path in sys.argv[1:]:
    lines = subprocess.run(["readelf", "-SW", path], capture_output=True, text=True, check=True).stdout.splitlines()
    fields = next((l.split("]", 1)[1].split() for l in lines if " .hydrated " in l), None)
    if fields is None:
        print(f"{path}: no .hydrated section")
        failed = True
        continue
    # Name Type Address Off Size ES Flg Lk Inf Al
    address, size, align = int(fields[2], 16), int(fields[4], 16), int(fields[-1])
    ok = align >= HUGE and address % HUGE == 0 and size >= HUGE
    print(f"{path}: .hydrated at {address:#x}, {size:#x} bytes, aligned {align}: {'ok' if ok else 'NOT one whole 2 MiB block'}")
    failed |= not ok
sys.exit(1 if failed else 0)
