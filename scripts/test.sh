#!/usr/bin/env bash
# Runs every test (type-check, lint, unit and integration) with the project's Node 24,
# installing what the tests need first. Integration tests need root (namespaces, loop devices).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_system_packages
ensure_node
ensure_npm_deps
cd "$REPO"
exec npm test "$@"
