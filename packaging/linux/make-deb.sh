#!/usr/bin/env bash
# Build the signwatch .deb: make-deb.sh [BUILD_DIR] [OUT_DIR]
#
# BUILD_DIR (default build-deb in the source tree) gets its own meson build
# (--prefix=/usr, release, PIE, Debian's hardening flags), the staged tree
# and the package's control files; OUT_DIR (default BUILD_DIR) gets
# signwatch_VERSION_ARCH.deb, whose path is the last line printed on stdout.
#
# The package holds /usr/bin/signwatch, the rule pack and the YARA rules
# (meson install), the hardened unit /lib/systemd/system/signwatch.service,
# the default configuration /etc/signwatch/signwatch.yaml (a conffile, mode
# 0600) and /usr/share/doc/signwatch/. Depends comes from dpkg-shlibdeps.
# lintian runs when installed; what it says is shown, never fatal.
#
# Needs: meson, ninja, a C compiler and the build dependencies
# (tests/bootstrap.sh), dpkg-dev (dpkg-shlibdeps, dpkg-buildflags); lintian
# is optional. SOURCE_DATE_EPOCH, when set, dates the files (else the last
# commit's time). DEB_MAINTAINER overrides the Maintainer field.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${1:-$src/build-deb}
mkdir -p "$build"
build=$(cd "$build" && pwd)
out=${2:-$build}
mkdir -p "$out"
out=$(cd "$out" && pwd)

log() { echo "make-deb: $*" >&2; }
die() {
	echo "make-deb: error: $*" >&2
	exit 1
}

for tool in meson ninja dpkg-deb dpkg-shlibdeps dpkg-buildflags; do
	command -v "$tool" >/dev/null || die "$tool not found (apt-get install meson ninja-build dpkg-dev)"
done

arch=$(dpkg --print-architecture)
maintainer=${DEB_MAINTAINER:-signwatch developers <signwatch@example.org>}
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git -C "$src" log -1 --format=%ct 2>/dev/null || date +%s)
fi
export SOURCE_DATE_EPOCH

# 1. Build. Debian's hardening flags (fortify, stack protector, full RELRO,
# bind now) on top of meson's release build; PIE through meson.
mesonbuild=$build/meson
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
CFLAGS="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
LDFLAGS=$(dpkg-buildflags --get LDFLAGS)
export CFLAGS LDFLAGS
if [ -f "$mesonbuild/build.ninja" ]; then
	meson configure "$mesonbuild" --prefix=/usr --buildtype=release -Db_pie=true >/dev/null
else
	meson setup "$mesonbuild" "$src" --prefix=/usr --buildtype=release -Db_pie=true >/dev/null
fi
log "building in $mesonbuild"
ninja -C "$mesonbuild" signwatch >&2
version=$(meson introspect --projectinfo "$mesonbuild" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
[ -n "$version" ] || die "no project version in meson.build"

# 2. Stage. dpkg-shlibdeps wants the package's files in debian/PACKAGE
# below the folder it runs in.
work=$build/deb
root=$work/debian/signwatch
rm -rf "$work"
mkdir -p "$root"
DESTDIR=$root meson install -C "$mesonbuild" --strip --no-rebuild --quiet >&2
[ -x "$root/usr/bin/signwatch" ] || die "meson install gave no usr/bin/signwatch"

install -D -m 0644 "$here/signwatch.service" "$root/lib/systemd/system/signwatch.service"
install -D -m 0600 "$here/signwatch.yaml" "$root/etc/signwatch/signwatch.yaml"
install -D -m 0644 "$src/README.md" "$root/usr/share/doc/signwatch/README.md"
install -D -m 0644 "$here/debian/copyright" "$root/usr/share/doc/signwatch/copyright"
install -D -m 0644 "$here/debian/lintian-overrides" "$root/usr/share/lintian/overrides/signwatch"
# A native package's changelog, as Debian policy asks (12.7).
{
	echo "signwatch ($version) unstable; urgency=medium"
	echo
	echo "  * Release $version, built from $(git -C "$src" describe --always --dirty 2>/dev/null || echo 'a source tree')."
	echo
	echo " -- $maintainer  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$root/usr/share/doc/signwatch/changelog.gz"

# Modes independent of the builder's umask; the conffile stays 0600.
find "$root" -type d -exec chmod 0755 {} +
find "$root" -type f ! -path "$root/usr/bin/*" ! -path "$root/etc/signwatch/*" -exec chmod 0644 {} +
chmod 0755 "$root/usr/bin/signwatch"
chmod 0600 "$root/etc/signwatch/signwatch.yaml"

# 3. Control files.
mkdir -p "$root/DEBIAN"
printf 'Source: signwatch\n\nPackage: signwatch\nArchitecture: any\n' >"$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O -e"$root/usr/bin/signwatch" 2>/dev/null |
	sed -n 's/^shlibs:Depends=//p')
rm -f "$work/debian/control"
[ -n "$depends" ] || die "dpkg-shlibdeps computed no Depends"
installed_size=$(du -sk --apparent-size --exclude=DEBIAN "$root" | cut -f1)

sed -e "s|@VERSION@|$version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
	-e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@DEPENDS@|$depends|" \
	"$here/debian/control" >"$root/DEBIAN/control"
! grep -q '@[A-Z_]*@' "$root/DEBIAN/control" || die "unfilled field in DEBIAN/control"
install -m 0644 "$here/debian/conffiles" "$root/DEBIAN/conffiles"
for s in postinst prerm postrm; do
	install -m 0755 "$here/debian/$s" "$root/DEBIAN/$s"
done
(cd "$root" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
	LC_ALL=C sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/md5sums"

# 4. Build the package.
deb=$out/signwatch_${version}_${arch}.deb
rm -f "$deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >&2
log "Depends: $depends"
log "Installed-Size: $installed_size KiB"

if command -v lintian >/dev/null; then
	log "lintian (warnings are reported, not fatal):"
	lintian --tag-display-limit 0 "$deb" >&2 || true
else
	log "lintian not installed; skipped"
fi
echo "$deb"
