#!/usr/bin/env bash
# Installs Lifeline from this checkout: Node 24 (inside the checkout), npm dependencies, the
# build, and a `lifeline` command in /usr/local/bin (root) or ~/.local/bin.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_node
ensure_npm_deps
(cd "$REPO" && npm run --silent build)
if [ "$(id -u)" = 0 ]; then bindir=/usr/local/bin; else bindir="$HOME/.local/bin"; mkdir -p "$bindir"; fi
cat > "$bindir/lifeline" <<WRAPPER
#!/bin/sh
# Installed by $REPO/scripts/install.sh: runs Lifeline with its own Node.js $LIFELINE_NODE_VERSION.
exec "$NODE_DIR/bin/node" "$REPO/dist/bin/lifeline.js" "\$@"
WRAPPER
chmod 755 "$bindir/lifeline"
echo "lifeline: installed $bindir/lifeline" >&2
case ":$PATH:" in *":$bindir:"*) ;; *) echo "lifeline: add $bindir to your PATH" >&2 ;; esac
