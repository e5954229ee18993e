#!/bin/sh
# netflow2traces installer: downloads the single binary for this machine from a release, verifies it against
# the release's SHA256SUMS, and installs it (plus, optionally, the systemd unit).
#
#   curl -fsSL https://github.com/netflow2traces/netflow2traces/releases/latest/download/install.sh | sh
#   curl -fsSL …/install.sh | sudo sh -s -- --systemd          # also install and register the systemd unit
#   curl -fsSL …/install.sh | NETFLOW2TRACES_VERSION=0.1.0 sh  # a pinned version
#
# Options: --version V, --dir DIR, --systemd, --help. Environment (options win):
#   NETFLOW2TRACES_VERSION      release to install, e.g. 0.1.0 or v0.1.0 (default: the latest)
#   NETFLOW2TRACES_BASE_URL     releases URL (default https://github.com/netflow2traces/netflow2traces/releases);
#                               files are fetched from BASE/latest/download/ or BASE/download/vVERSION/
#   NETFLOW2TRACES_INSTALL_DIR  where to put the binary (default /usr/local/bin if writable, else ~/.local/bin)
#   NETFLOW2TRACES_SYSTEMD=1    same as --systemd
#   NETFLOW2TRACES_RUNTIME      bun (default) or deno: which build of the binary
# For tests and packagers: NETFLOW2TRACES_SYSTEM_BIN_DIR (/usr/local/bin), NETFLOW2TRACES_SYSTEMD_DIR
# (/etc/systemd/system), NETFLOW2TRACES_ETC_DIR (/etc/netflow2traces).
set -eu

BASE_URL=${NETFLOW2TRACES_BASE_URL:-https://github.com/netflow2traces/netflow2traces/releases}
VERSION=${NETFLOW2TRACES_VERSION:-latest}
INSTALL_DIR=${NETFLOW2TRACES_INSTALL_DIR:-}
SYSTEMD=${NETFLOW2TRACES_SYSTEMD:-0}
RUNTIME=${NETFLOW2TRACES_RUNTIME:-bun}
SYSTEM_BIN_DIR=${NETFLOW2TRACES_SYSTEM_BIN_DIR:-/usr/local/bin}
SYSTEMD_DIR=${NETFLOW2TRACES_SYSTEMD_DIR:-/etc/systemd/system}
ETC_DIR=${NETFLOW2TRACES_ETC_DIR:-/etc/netflow2traces}

say() { printf 'netflow2traces: %s\n' "$*"; }
die() {
  printf 'netflow2traces: %s\n' "$*" >&2
  exit 1
}

usage() {
  cat <<'EOF'
usage: install.sh [--version VERSION] [--dir DIR] [--systemd]
Installs the netflow2traces binary for this OS and CPU after checking its SHA-256 against the release's
SHA256SUMS. --systemd (root) also installs /etc/systemd/system/netflow2traces.service.
EOF
}

while [ "$#" -gt 0 ]; do
  case "$1" in
    --version) [ "$#" -ge 2 ] || die "--version needs a value"; VERSION=$2; shift 2 ;;
    --version=*) VERSION=${1#--version=}; shift ;;
    --dir) [ "$#" -ge 2 ] || die "--dir needs a value"; INSTALL_DIR=$2; shift 2 ;;
    --dir=*) INSTALL_DIR=${1#--dir=}; shift ;;
    --systemd) SYSTEMD=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

# --- what to download -------------------------------------------------------------------------------------
os=$(uname -s)
arch=$(uname -m)
case "$os" in
  Linux) os=linux ;;
  Darwin) os=darwin ;;
  *) die "unsupported operating system: $os (supported: Linux, macOS; on Windows download the .exe from the release page)" ;;
esac
case "$arch" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "unsupported architecture: $arch (supported: x86_64/amd64, aarch64/arm64)" ;;
esac
case "$RUNTIME" in
  bun | deno) ;;
  *) die "NETFLOW2TRACES_RUNTIME must be bun or deno, not: $RUNTIME" ;;
esac
libc=
if [ "$os" = linux ] && [ "$RUNTIME" = bun ]; then
  # Alpine and other musl systems get Bun's musl build (it needs libstdc++: apk add libstdc++).
  for loader in /lib/ld-musl-*.so.1; do
    if [ -e "$loader" ]; then libc=-musl; fi
  done
fi
asset="netflow2traces-$RUNTIME-$os-$arch$libc"

case "$VERSION" in
  latest) url="$BASE_URL/latest/download" ;;
  v*) url="$BASE_URL/download/$VERSION" ;;
  *) url="$BASE_URL/download/v$VERSION" ;;
esac

# --- tools ------------------------------------------------------------------------------------------------
if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fsSL --retry 2 -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget -q -O "$2" "$1"; }
else
  die "neither curl nor wget is installed: install one of them (e.g. apt-get install curl) and run this again"
fi
if command -v sha256sum >/dev/null 2>&1; then
  sha256() { sha256sum "$1" | awk '{ print $1 }'; }
elif command -v shasum >/dev/null 2>&1; then
  sha256() { shasum -a 256 "$1" | awk '{ print $1 }'; }
else
  die "neither sha256sum nor shasum is installed: cannot verify the download, not installing"
fi

tmp=$(mktemp -d 2>/dev/null || mktemp -d -t netflow2traces)
trap 'rm -rf "$tmp"' EXIT INT TERM

# --- download and verify ----------------------------------------------------------------------------------
say "downloading $asset ($VERSION) from $url"
fetch "$url/$asset" "$tmp/$asset" || die "download failed: $url/$asset"
fetch "$url/SHA256SUMS" "$tmp/SHA256SUMS" || die "download failed: $url/SHA256SUMS"
expected=$(awk -v f="$asset" '$2 == f || $2 == "*" f { print $1; exit }' "$tmp/SHA256SUMS")
[ -n "$expected" ] || die "SHA256SUMS has no entry for $asset: not installing"
actual=$(sha256 "$tmp/$asset")
if [ "$actual" != "$expected" ]; then
  die "checksum mismatch for $asset: expected $expected, got $actual: not installing"
fi
say "checksum OK ($actual)"

# --- install ----------------------------------------------------------------------------------------------
if [ -z "$INSTALL_DIR" ]; then
  if [ -d "$SYSTEM_BIN_DIR" ] && [ -w "$SYSTEM_BIN_DIR" ]; then
    INSTALL_DIR=$SYSTEM_BIN_DIR
  else
    [ -n "${HOME:-}" ] || die "$SYSTEM_BIN_DIR is not writable and HOME is not set: use --dir DIR"
    INSTALL_DIR=$HOME/.local/bin
    say "$SYSTEM_BIN_DIR is not writable (run as root to install there): installing to $INSTALL_DIR"
  fi
fi
mkdir -p "$INSTALL_DIR" || die "cannot create $INSTALL_DIR"
dest=$INSTALL_DIR/netflow2traces
cp "$tmp/$asset" "$INSTALL_DIR/.netflow2traces.new" || die "cannot write to $INSTALL_DIR"
chmod 0755 "$INSTALL_DIR/.netflow2traces.new"
mv -f "$INSTALL_DIR/.netflow2traces.new" "$dest"
say "installed $dest"
if version=$("$dest" --version 2>&1); then
  say "$version"
else
  say "warning: $dest --version failed: $version"
fi
case ":${PATH:-}:" in
  *":$INSTALL_DIR:"*) ;;
  *) say "note: $INSTALL_DIR is not on your PATH; add it, e.g.: export PATH=\"$INSTALL_DIR:\$PATH\"" ;;
esac

# --- systemd (optional) -----------------------------------------------------------------------------------
if [ "$SYSTEMD" = 1 ]; then
  if ! { [ -d "$SYSTEMD_DIR" ] && [ -w "$SYSTEMD_DIR" ]; }; then
    die "--systemd: $SYSTEMD_DIR is not writable (run as root)"
  fi
  case "$dest" in
    /home/* | /root/* | /run/user/*) die "--systemd: the unit cannot run $dest (ProtectHome=yes): install with --dir /usr/local/bin" ;;
  esac
  fetch "$url/netflow2traces.service" "$tmp/netflow2traces.service" || die "download failed: $url/netflow2traces.service"
  sed "s|^ExecStart=.*|ExecStart=$dest|" "$tmp/netflow2traces.service" >"$SYSTEMD_DIR/netflow2traces.service"
  chmod 0644 "$SYSTEMD_DIR/netflow2traces.service"
  say "installed $SYSTEMD_DIR/netflow2traces.service"
  mkdir -p "$ETC_DIR"
  if [ ! -e "$ETC_DIR/env" ]; then
    cat >"$ETC_DIR/env" <<'EOF'
# netflow2traces configuration (systemd EnvironmentFile): VARIABLE=value, one per line.
#OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317
#OTEL_EXPORTER_OTLP_PROTOCOL=grpc
#NETFLOW_LISTEN_PORT=2055
#LOG_LEVEL=INFO
EOF
    chmod 0640 "$ETC_DIR/env"
    say "wrote $ETC_DIR/env (edit it to set the OTLP endpoint)"
  fi
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ] && [ "$SYSTEMD_DIR" = /etc/systemd/system ]; then
    systemctl daemon-reload
  fi
  say "start it with: systemctl enable --now netflow2traces"
fi
