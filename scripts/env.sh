# Source this to use the project's Node 24 in an interactive shell: `. scripts/env.sh`
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
export PATH="$NODE_DIR/bin:$PATH"
