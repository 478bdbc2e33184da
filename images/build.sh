#!/usr/bin/env bash
# Builds the node pod image with podman, offline: Python wheels prepared here, the base image given.
# usage: images/build.sh [--base IMAGE] [--tag TAG]     (run from anywhere, as root, after scripts/install.sh)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
base=docker.io/library/debian:bookworm-slim
tag=localhost/gadgetbook-node:$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml")
while [[ $# -gt 0 ]]; do
    case "$1" in
        --base) base=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        *) echo "usage: $0 [--base IMAGE] [--tag TAG]" >&2; exit 2 ;;
    esac
done
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# Wheels for the image's Python (Debian 12's 3.11, the same as the build host's): gadgetbook itself,
# built with its BPF objects, and everything it needs on a node.
"$ROOT/.venv/bin/pip" wheel -q --wheel-dir "$ctx/wheels" "$ROOT[node]" ipykernel
cp "$ROOT/images/Containerfile" "$ctx/"
podman build -q --network none --build-arg "BASE=$base" -t "$tag" -f "$ctx/Containerfile" "$ctx" >/dev/null
echo "$tag"
