#!/usr/bin/env bash
# Sets everything up (as install.sh with the test extras) and runs the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
GADGETBOOK_EXTRAS=test bash scripts/install.sh
.venv/bin/ruff check .
set +e
.venv/bin/python -m pytest -ra "$@"
rc=$?
set -e
if [[ $rc -eq 5 ]]; then
    echo "test: pytest collected no tests; that is a failure" >&2
    exit 1
fi
exit $rc
