#!/usr/bin/env bash
# Fuzz one reader with AFL++ through SharpFuzz:  fuzz/run.sh image|weights|npy [seconds]
# Installs afl++ (Debian) and the SharpFuzz instrumenter, builds and instruments the harness, then runs
# afl-fuzz on fuzz/corpus/<target>. Crashes land in fuzz/findings/<target>/default/crashes: turn each into a
# regression test (tests/ResNet.Tests/FuzzRegressionTests.cs) and fix the reader.
set -euo pipefail
cd "$(dirname "$0")"
target=${1:?usage: fuzz/run.sh image|weights|npy [seconds]}
seconds=${2:-600}
command -v afl-fuzz >/dev/null || { apt-get update -q && apt-get install -y -q afl++; }
export PATH="$PATH:$HOME/.dotnet/tools"
command -v sharpfuzz >/dev/null || dotnet tool install --global SharpFuzz.CommandLine --version 2.3.0
rm -rf build
dotnet publish ResNet.Fuzz -c Release -o build -nologo -v:q
sharpfuzz build/ResNet.Runtime.dll
mkdir -p findings
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
timeout --preserve-status "$seconds" afl-fuzz -i "corpus/$target" -o "findings/$target" -t 10000 -m none -- dotnet build/ResNet.Fuzz.dll "$target" || true
echo "crashes:"; ls "findings/$target/default/crashes" 2>/dev/null | grep -v README || echo none
echo "hangs:"; ls "findings/$target/default/hangs" 2>/dev/null || echo none
