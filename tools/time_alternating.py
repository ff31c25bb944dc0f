"""Times whole processes side by side: each command runs 5 times in turn, for ROUNDS rounds (default 12), after 3
warm-up runs each, so that both see the same machine noise and page-cache state. Prints each command's median,
25th percentile and minimum wall time in ms. A command is split on spaces.

    ROUNDS=20 python3 tools/time_alternating.py "out/resnet18 --weights W dog.jpg" "old/resnet18 --weights W dog.jpg"
"""
import os
import statistics
import subprocess
import sys
import time


def timed(cmd, n):
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return times


rounds = int(os.environ.get("ROUNDS", "12"))
commands = [a.split() for a in sys.argv[1:]]
for c in commands:
    timed(c, 3)
results = [[] for _ in commands]
for _ in range(rounds):
    for i, c in enumerate(commands):
        results[i] += timed(c, 5)
for text, times in zip(sys.argv[1:], results):
    times.sort()
    print(f"{text}: median {statistics.median(times):.2f}  p25 {times[len(times) // 4]:.2f}  min {times[0]:.2f} ms")
