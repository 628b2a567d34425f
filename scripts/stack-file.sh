#!/usr/bin/env bash
# Usage: scripts/stack-file.sh STACK [EXAMPLE]
# Makes sure Pulumi.STACK.yaml exists: a stack without its own file starts from examples/EXAMPLE.yaml
# (EXAMPLE defaults to STACK). An existing Pulumi.STACK.yaml is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=$1
example=${2:-$1}
if [ -f "Pulumi.$stack.yaml" ]; then
  exit 0
fi
if [ ! -f "examples/$example.yaml" ]; then
  names=""
  for file in examples/*.yaml; do
    names="$names $(basename "$file" .yaml)"
  done
  echo "no Pulumi.$stack.yaml and no examples/$example.yaml; examples:$names" >&2
  exit 1
fi
cp "examples/$example.yaml" "Pulumi.$stack.yaml"
echo "Pulumi.$stack.yaml: copied from examples/$example.yaml"
