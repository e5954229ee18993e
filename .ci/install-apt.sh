#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (interop tests: real exporters softflowd and pmacct,
# and tshark as the reference decoder). Idempotent: apt-get (update + install) runs only when one is missing.
set -euo pipefail

# Binary, image and installer tests: qemu-user-static + libc6-arm64-cross (the arm64 binary), shellcheck,
# systemd (systemd-analyze verify), ca-certificates (the image's CA bundle), util-linux (unshare).
# TLS tests: openssl (certificates). Installer tests: curl and wget.
# Status page browser test (test/status_page_browser.test.ts): chromium, driven headless over DevTools.
PACKAGES=(softflowd pmacct tshark qemu-user-static libc6-arm64-cross shellcheck systemd ca-certificates util-linux
  openssl curl wget chromium)

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-apt: ${PACKAGES[*]} already installed"
else
  echo "install-apt: installing ${missing[*]} (apt-get update + install)"
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer without a prompt (capabilities are set below).
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The tests capture on the loopback interface with tshark (dumpcap): a non-root CI user needs capabilities.
if [[ $(id -u) -ne 0 ]] && ! getcap /usr/bin/dumpcap 2>/dev/null | grep -q cap_net_raw; then
  command -v setcap >/dev/null || $SUDO apt-get install -y -qq libcap2-bin >/dev/null
  $SUDO setcap cap_net_raw,cap_net_admin=eip /usr/bin/dumpcap
  echo "install-apt: granted capture capabilities to /usr/bin/dumpcap for the non-root test user"
fi

# Kubernetes manifest tests (test/deploy.test.ts) render with `kubectl kustomize`; no cluster is needed.
# Machines of this kind carry a kubectl; elsewhere Debian's kubernetes-client provides one.
if ! command -v kubectl >/dev/null; then
  [[ -n "${missing[*]}" ]] || $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
  echo "install-apt: installed kubernetes-client (kubectl)"
fi
