#!/usr/bin/env bash
# Runs the benchmarks in bench/ and prints their figures (targets are checked there, not in tests).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_system_packages
ensure_node
ensure_npm_deps
cd "$REPO"
exec npm run bench -- "$@"
