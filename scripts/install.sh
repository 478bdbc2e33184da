#!/usr/bin/env bash
# Installs what gadgetbook needs on Debian 12 (as root): system packages, .venv, built BPF objects.
# Idempotent: a second run only checks. GADGETBOOK_EXTRAS=test adds what the test suite needs.
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${GADGETBOOK_EXTRAS:-}"
packages=(clang llvm make libbpf-dev libbpf1 libcap2 libseccomp2 bpftool python3 python3-venv python3-dev gcc git ca-certificates)
if [[ "$extras" == *test* ]]; then
    # Real containers, real bcc/bpftrace/tcpdump for comparison (bcc compiles against Debian's kernel headers,
    # see benchmarks/peers.py), network namespaces, strace (tests that nothing loads), and Java for the
    # test that reads a saved dataset with Spark.
    packages+=(podman runc busybox-static bpftrace python3-bpfcc iproute2 tcpdump default-jre-headless strace)
    [[ "$(dpkg --print-architecture)" == amd64 ]] && packages+=(linux-headers-amd64)
fi

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "install: apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's python3 so that bcc (python3-bpfcc) can be reached for %%bcc cells.
if [[ ! -x .venv/bin/python ]]; then
    /usr/bin/python3 -m venv .venv
    .venv/bin/pip install -q --upgrade pip
fi
pip_extras="all"
[[ "$extras" == *test* ]] && pip_extras="all,test"
stamp=".venv/.installed-$(sha1sum pyproject.toml | cut -c1-12)-$pip_extras"
if [[ ! -f "$stamp" ]]; then
    .venv/bin/pip install -q -e ".[$pip_extras]"
    touch "$stamp"
fi
make -s -C bpf
# JupyterLab keeps widget state in saved notebooks, so a reopened notebook draws its flame graphs
# again instead of "model not found" (Settings > Save Widget State Automatically, on by default here).
lab_settings=.venv/share/jupyter/lab/settings
if [[ ! -f $lab_settings/overrides.json ]]; then
    mkdir -p "$lab_settings"
    printf '%s\n' '{"@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": true}}' >"$lab_settings/overrides.json"
fi
if [[ "$extras" == *test* ]]; then
    bash tests/support/kernel_headers.sh
    # The local Kubernetes cluster the end-to-end tests run on (binaries cached outside the repository),
    # and the browser tests' Chromium and playwright-core.
    bash tests/cluster/install.sh
    bash tests/support/browser/install.sh
fi
echo "install: ready (.venv/bin/gadgetbook)"
