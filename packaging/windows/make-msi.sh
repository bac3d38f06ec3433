#!/usr/bin/env bash
# Build the signwatch MSI: make-msi.sh [BUILD_DIR] [OUT_DIR]
#
# BUILD_DIR (default $SW_WIN_BUILD, else build-win in the source tree) is a
# meson cross build (packaging/windows/cross-mingw64.txt); signwatch.exe is
# built there when needed. OUT_DIR (default BUILD_DIR) gets
# signwatch-VERSION-x64.msi, whose path is the last line printed on stdout.
#
# Environment:
#   SW_WIN_DEPS     the static dependency prefix (packaging/windows/build-deps.sh);
#                   when unset, build-deps.sh is run (it reuses a built prefix)
#   SIGNWATCH_EXE   use this signwatch.exe instead of building one
#   SW_WIN_BUILD    the default BUILD_DIR (test-wine.sh looks there too)
#   SW_MSI_VERSION  the MSI's ProductVersion (default: meson.build's project
#                   version), e.g. 0.1.1 to package the same signwatch.exe as
#                   a newer release (test-wine.sh's major upgrade does); the
#                   ProductCode follows it, the UpgradeCode never changes.
#                   signwatch.exe's own version resource stays meson's.
#
# Needs wixl (Debian package wixl, msitools >= 0.101), python3, and for the
# build meson, ninja and mingw-w64.
#
# The ProductCode is derived from the UpgradeCode and the version (UUIDv5),
# so one version always has the same ProductCode (Intune's detection rule);
# a new version is a major upgrade. Component GUIDs are derived the same way
# from their file names, stable across versions.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-${SW_WIN_BUILD:-$src/build-win}}
out=${2:-$build}
mkdir -p "$out"
out=$(cd "$out" && pwd)

log() { echo "make-msi: $*" >&2; }
die() {
	echo "make-msi: error: $*" >&2
	exit 1
}

command -v wixl >/dev/null || die "wixl not found (apt-get install wixl)"
command -v python3 >/dev/null || die "python3 not found"

# 1. signwatch.exe
if [ -n "${SIGNWATCH_EXE:-}" ]; then
	exe=$(cd "$(dirname "$SIGNWATCH_EXE")" && pwd)/$(basename "$SIGNWATCH_EXE")
	[ -f "$exe" ] || die "SIGNWATCH_EXE=$SIGNWATCH_EXE does not exist"
else
	if [ ! -f "$build/build.ninja" ]; then
		if [ -z "${SW_WIN_DEPS:-}" ]; then
			log "SW_WIN_DEPS unset: running build-deps.sh (reuses an existing prefix)"
			eval "$("$here/build-deps.sh")"
		fi
		[ -f "$SW_WIN_DEPS/cross-deps.txt" ] || die "$SW_WIN_DEPS/cross-deps.txt not found"
		log "meson setup $build (cross, deps $SW_WIN_DEPS)"
		meson setup "$build" "$src" --buildtype=release \
			--cross-file "$here/cross-mingw64.txt" --cross-file "$SW_WIN_DEPS/cross-deps.txt" >&2
	fi
	log "building signwatch.exe in $build"
	ninja -C "$build" signwatch.exe >&2
	exe=$build/signwatch.exe
fi
[ -f "$exe" ] || die "no signwatch.exe"

# 2. Version: $SW_MSI_VERSION, else meson.build's project version. Windows
# Installer compares major.minor.build, at most 255.255.65535.
if [ -n "${SW_MSI_VERSION:-}" ]; then
	version=$SW_MSI_VERSION
else
	version=$(sed -n "s/^[[:space:]]*version[[:space:]]*:[[:space:]]*'\([0-9][0-9.]*\)'.*/\1/p" "$src/meson.build" | head -1)
	[ -n "$version" ] || die "no project version in $src/meson.build"
fi
python3 -c '
import re, sys
m = re.fullmatch(r"(0|[1-9][0-9]{0,2})\.(0|[1-9][0-9]{0,2})(?:\.(0|[1-9][0-9]{0,4}))?", sys.argv[1])
sys.exit(not (m and int(m[1]) <= 255 and int(m[2]) <= 255 and int(m[3] or 0) <= 65535))' "$version" ||
	die "version '$version' is not major.minor[.build] (at most 255.255.65535)"
upgrade_code=6b2f1c0e-5a47-4e8e-9d61-3f0c2b9a7e15 # also in signwatch.wxs
product_code=$(python3 -c 'import sys, uuid; print(uuid.uuid5(uuid.UUID(sys.argv[1]), "signwatch-product-" + sys.argv[2]))' \
	"$upgrade_code" "$version")

# 3. Stage (wixl resolves Source paths relative to the current folder) and
# write the rule pack as a fragment, one component per file.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
stage=$work/stage
mkdir -p "$stage/rules"
cp "$exe" "$stage/signwatch.exe"
cp "$src/README.md" "$stage/README.md"
cp "$src/docs/DEPLOY.md" "$stage/DEPLOY.md"
cp "$src/agent/yara/pulseway.yar" "$stage/pulseway.yar"
cp "$src"/agent/rules/rmm/*.yaml "$stage/rules/"
python3 - "$stage/rules" "$upgrade_code" >"$work/rules.wxs" <<'EOF'
import os, sys, uuid
from xml.sax.saxutils import quoteattr
d, ns = sys.argv[1], uuid.UUID(sys.argv[2])
files = sorted(f for f in os.listdir(d) if f.endswith(".yaml"))
if not files:
    sys.exit("make-msi: no rules in " + d)
print('<?xml version="1.0" encoding="utf-8"?>')
print('<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi"><Fragment>')
print('  <DirectoryRef Id="RULESDIR">')
ids = []
for i, f in enumerate(files):
    cid = "C.rule%03d" % i
    ids.append(cid)
    g = uuid.uuid5(ns, "signwatch-rule-" + f)
    print('    <Component Id="%s" Guid="%s" Win64="yes">' % (cid, g))
    print('      <File Id="rule%03d" Name=%s Source=%s KeyPath="yes"/>'
          % (i, quoteattr(f), quoteattr("rules/" + f)))
    print('    </Component>')
print('  </DirectoryRef>')
print('  <ComponentGroup Id="CG.rules">')
for cid in ids:
    print('    <ComponentRef Id="%s"/>' % cid)
print('  </ComponentGroup>')
print('</Fragment></Wix>')
EOF

# 4. wixl (its GLib warnings about attributes it ignores are noise).
msi=$out/signwatch-$version-x64.msi
log "wixl: $msi (ProductCode {$product_code})"
cp "$here/signwatch.wxs" "$work/signwatch.wxs"
(cd "$stage" && wixl -a x64 -D Version="$version" -D ProductCode="$product_code" \
	-o "$msi" "$work/signwatch.wxs" "$work/rules.wxs") >&2 || die "wixl failed"
echo "ProductCode={$product_code}" >"$out/signwatch-$version-x64.msi.productcode"
echo "$msi"
