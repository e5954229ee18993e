#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (interop tests: real exporters and tshark as the
# reference decoder). Idempotent: runs apt-get (and apt-get update) only when something is missing.
set -euo pipefail

PACKAGES=(softflowd pmacct tshark)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-apt: ${PACKAGES[*]} already installed"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-apt: installing ${missing[*]} (apt-get update + install)"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
if [[ $(id -u) -ne 0 ]]; then
  # The tests capture on the loopback interface with tshark (dumpcap): let a non-root CI user do that.
  command -v setcap >/dev/null || $SUDO apt-get install -y -qq libcap2-bin >/dev/null
  $SUDO setcap cap_net_raw,cap_net_admin=eip /usr/bin/dumpcap
  echo "install-apt: granted capture capabilities to /usr/bin/dumpcap for non-root tests"
fi
echo "install-apt: done"
