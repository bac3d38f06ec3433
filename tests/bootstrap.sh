#!/usr/bin/env bash
# Install what signwatch needs to build and test on Debian 12 (as root),
# then build it in ./build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  # build
  gcc clang libclang-rt-14-dev meson ninja-build pkg-config python3
  libssl-dev libuv1-dev libyaml-dev libjansson-dev libutf8proc-dev
  libsqlite3-dev libcurl4-openssl-dev libyara-dev zlib1g-dev
  # tests and checks
  valgrind clang-format yara sqlite3 openssl
  # the .deb: build, lint, install/purge test
  dpkg-dev binutils lintian systemd
  # the syslog collector the forwarding test runs
  rsyslog rsyslog-gnutls
  # Windows: the dependency build (packaging/windows/build-deps.sh), the
  # cross build, the MSI, and wine to run the tests and the MSI scenario
  mingw-w64 autoconf automake libtool cmake make perl tcl xz-utils
  wine wine64 wixl msitools
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
# OpenSSL >= 3.0.21 is required (CVE-2026-45447); Debian's security
# archive has it, so always ask apt for the newest libssl-dev.
if [ ${#missing[@]} -gt 0 ] || ! pkg-config --atleast-version=3.0.21 openssl 2>/dev/null; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${PKGS[@]}" >/dev/null
fi
# osslsigncode is a differential-test peer; any version will do (Debian 12
# ships 2.5; the fixtures need 2.9 only to be regenerated).
command -v osslsigncode >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq osslsigncode >/dev/null

if [ ! -d build ]; then
  meson setup build --buildtype=debugoptimized >/dev/null
fi
ninja -C build >/dev/null
