#!/usr/bin/env bash
# The library as a user's app gets it: packs ResNet.Runtime, builds tests/Embedding (copied outside the repository)
# against the .nupkg, and checks its logits against PyTorch's under the JIT, as NativeAOT by default (portable
# kernels, and the package's RN2001 warning saying so) and as NativeAOT for x86-64-v4 (AVX-512 kernels).
# usage: tools/check_embedding.sh FIXTURES_DIR (weights.pth, input*.npy, input*.logits.npy) [IMAGE]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fixtures=$(cd "$1" && pwd)
image=${2:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

dotnet pack "$root/src/ResNet.Runtime" -c Release -o "$work/feed" -v quiet -nologo
nupkg=$(cd "$work/feed" && ls ResNet.Runtime.*.nupkg)
version=${nupkg#ResNet.Runtime.}; version=${version%.nupkg}
# A restore takes a version from the NuGet cache if it is there: make it take this package.
rm -rf "${NUGET_PACKAGES:-$HOME/.nuget/packages}/resnet.runtime/$version"
mkdir "$work/app"
cp "$root/tests/Embedding/Embedding.csproj" "$root/tests/Embedding/Program.cs" "$work/app/"
cat > "$work/app/nuget.config" <<XML
<?xml version="1.0" encoding="utf-8"?>
<configuration><packageSources><add key="resnet-runtime" value="$work/feed" /></packageSources></configuration>
XML
cd "$work/app"
inputs=()
for f in "$fixtures"/input*.npy; do [[ $f == *.logits.npy ]] || inputs+=("$f"); done
[ -n "$image" ] && inputs+=("$image")
props=(-c Release -p:ResNetRuntimeVersion="$version" -nologo)

if grep -qw avx512f /proc/cpuinfo; then jit_isa=Avx512; else jit_isa=Avx2; fi
dotnet build "${props[@]}" -v quiet > build.log || { cat build.log; exit 1; }
dotnet bin/Release/net10.0/Embedding.dll "$fixtures/weights.pth" "${inputs[@]}" > jit.txt
check() { /usr/bin/python3 "$root/tools/check_embedding_logits.py" "$1" "$2" "$fixtures" "${image:+$root/out/resnet18}"; }
check jit.txt "$jit_isa"

dotnet publish "${props[@]}" -p:PublishAot=true -o aot-default > publish-default.log || { cat publish-default.log; exit 1; }
grep -q "warning RN2001" publish-default.log || { echo "no RN2001 warning from a NativeAOT build without IlcInstructionSet"; exit 1; }
aot-default/Embedding "$fixtures/weights.pth" "${inputs[@]}" > aot-default.txt
check aot-default.txt Portable

if [ "$jit_isa" = Avx512 ]; then
  dotnet publish "${props[@]}" -p:PublishAot=true -p:IlcInstructionSet=x86-64-v4 -o aot-v4 > publish-v4.log || { cat publish-v4.log; exit 1; }
  if grep -q "RN2001" publish-v4.log; then echo "RN2001 despite IlcInstructionSet"; exit 1; fi
  aot-v4/Embedding "$fixtures/weights.pth" "${inputs[@]}" > aot-v4.txt
  check aot-v4.txt Avx512
fi
echo "embedding: ResNet.Runtime $version from its package, under the JIT and as NativeAOT: logits as PyTorch's"
