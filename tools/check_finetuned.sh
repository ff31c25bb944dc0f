#!/bin/sh
# A ResNet-18 fine-tuned to other classes, made as the README's "Your own classes" says: a copy of the repository's
# files (tracked, or new and not ignored) with fc's out_features in arch/resnet18.json set to N, published, and checked against PyTorch's
# torchvision.models.resnet18(num_classes=N) by tools/check_finetuned.py.
#
#     tools/check_finetuned.sh N PHOTO...
set -eu
classes=$1
shift
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work")
sed -i "s/\"out_features\": 1000/\"out_features\": $classes/" "$work/arch/resnet18.json"
grep -q "\"out_features\": $classes" "$work/arch/resnet18.json"
if ! dotnet publish "$work/src/ResNet.Native" -c Release -o "$work/out" > "$work/publish.log" 2>&1; then
    cat "$work/publish.log"
    exit 1
fi
# Both kernel paths (the AVX2 one as the x86-64-v3 build inside the binary runs it).
for isa in "" avx2; do
    RESNET18_ISA=$isa /usr/bin/python3 "$repo/tools/check_finetuned.py" "$work/out/resnet18" "$classes" 1e-4 "$@"
done
