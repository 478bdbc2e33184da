#!/usr/bin/env bash
# Sets everything up (install.sh) and opens the quickstart notebook in JupyterLab on this host.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/jupyter lab notebooks/quickstart.ipynb --ip 127.0.0.1 --no-browser --allow-root \
    --ServerApp.root_dir="$PWD" "$@"
