#!/usr/bin/env bash
# Builds the node pod image with podman from Python wheels prepared here (pip never reaches the network in the
# image) and the base image given; apt fetches Python and the libraries only when the base lacks them.
# usage: images/build.sh [--base IMAGE] [--tag TAG] [--slim] [--bcc]   (run from anywhere, as root, after scripts/install.sh)
# --slim: without the node's Jupyter kernel (ipykernel, pandas, dnspython): %%node cells then find none.
# --bcc: with Debian's bcc (and its LLVM, ~150 MB more), for %%bcc cells on the nodes; tagged VERSION-bcc.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
base=docker.io/library/debian:bookworm-slim
slim=0
bcc=0
tag=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --base) base=$2; shift 2 ;;
        --tag) tag=$2; shift 2 ;;
        --slim) slim=1; shift ;;
        --bcc) bcc=1; shift ;;
        *) echo "usage: $0 [--base IMAGE] [--tag TAG] [--slim] [--bcc]" >&2; exit 2 ;;
    esac
done
if [[ -z $tag ]]; then
    tag=localhost/gadgetbook-node:$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/pyproject.toml")
    [[ $bcc == 1 ]] && tag+=-bcc
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
# Wheels for the image's Python (Debian 12's 3.11, the same as the build host's): gadgetbook itself,
# built with its BPF objects but without its client-side dependencies (pandas, Arrow, the Kubernetes
# client), and what the node imports: numpy, the node extra (jupyter-server, tornado, zstandard, the
# symbol readers, ipykernel).
pip=("$ROOT/.venv/bin/pip" wheel -q --wheel-dir "$ctx/wheels")
# gadgetbook's own wheel comes from a copy of the tracked files with this checkout's compiled BPF objects
# (make finds them current): setuptools' build directory in a checkout keeps files deleted since, and
# they would ship.
mkdir "$ctx/src"
git -C "$ROOT" ls-files -z | tar -C "$ROOT" --null -T - -c gadgetbook/_bpf bpf/.build | tar -C "$ctx/src" -x
"${pip[@]}" --no-deps "$ctx/src"
node_deps=$("$ROOT/.venv/bin/python" - "$ROOT/pyproject.toml" "$slim" <<'PY'
import sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
core, extras = project["dependencies"], project["optional-dependencies"]
wanted = [d for d in core if d.startswith("numpy")] + extras["node"]
if sys.argv[2] != "1":  # the %%node kernel, pandas for the DataFrames its gadget runs give, dnspython for DNS work
    wanted += extras["node-kernel"] + [d for d in core if d.startswith(("pandas", "dnspython"))]
print(" ".join(wanted))
PY
)
# shellcheck disable=SC2086 # one requirement per word
"${pip[@]}" $node_deps
# jsonschema's optional format checkers (pulled in by jupyter-events): never used by the node, and
# rfc3987-syntax builds a parser at import that costs ~20 MB of memory and 0.8 s.
# tzdata: Debian's own zone files (in every Debian 12 base: the package is required there) serve Python's
# zoneinfo and pandas.
rm -f "$ctx"/wheels/tzdata-*.whl
rm -f "$ctx"/wheels/{rfc3987_syntax,lark,fqdn,isoduration,arrow,uri_template,webcolors,jsonpointer,rfc3339_validator,rfc3986_validator,types_python_dateutil}-*.whl
# The debugger and the completer of a %%node kernel (debugpy, jedi with parso: ~55 MB): ipykernel and IPython
# run without them, and a cell sent from a notebook needs neither.
rm -f "$ctx"/wheels/{debugpy,jedi,parso}-*.whl
# Some projects ship their extension modules with debug sections (zstandard's alone is 12 MB): those are
# stripped of them and the wheel repacked, so that its RECORD stays true. Libraries that auditwheel
# bundled (*.libs/) are left alone: strip breaks the program headers it patched.
strip_debug() {
    local dir=$ctx/unpacked files=() f
    "$ROOT/.venv/bin/python" -m wheel unpack -d "$dir" "$1" >/dev/null
    while IFS= read -r -d '' f; do
        readelf -S "$f" 2>/dev/null | grep -q '\.debug_info' && files+=("$f")
    done < <(find "$dir" -name '*.so' -not -path '*.libs/*' -print0)
    if [[ ${#files[@]} -gt 0 ]]; then
        strip --strip-debug "${files[@]}"
        rm "$1"
        "$ROOT/.venv/bin/python" -m wheel pack -d "$ctx/wheels" "$dir"/* >/dev/null
    fi
    rm -rf "$dir"
}
for whl in "$ctx"/wheels/*.whl; do
    [[ $whl == *-none-any.whl ]] || strip_debug "$whl"
done
cp "$ROOT/images/Containerfile" "$ROOT/images/node_imports.py" "$ctx/"
old=$(podman image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)
build_id=$(basename "$ctx")
podman build -q --build-arg "BASE=$base" --build-arg "BUILD_ID=$build_id" --build-arg "BCC=$bcc" -t "$tag" \
    -f "$ctx/Containerfile" "$ctx" >/dev/null
# Leave nothing behind: the first stage's image, and the image this tag named before (if no container uses it).
podman images -q --filter "label=gadgetbook.build-stage=$build_id" | xargs -r podman rmi -f >/dev/null 2>&1 || true
new=$(podman image inspect --format '{{.Id}}' "$tag")
if [[ -n $old && $old != "$new" ]]; then podman rmi "$old" >/dev/null 2>&1 || true; fi
echo "$tag"
