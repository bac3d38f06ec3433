#!/bin/sh
# Build signwatch's Windows (x86_64-w64-mingw32) dependencies as static
# libraries from Debian source packages, into a prefix keyed by the source
# versions and this script's own hash; an existing prefix is reused.
#
#   eval "$(packaging/windows/build-deps.sh)"    # exports SW_WIN_DEPS=<prefix>
#   meson setup build-win --cross-file packaging/windows/cross-mingw64.txt \
#         --cross-file "$SW_WIN_DEPS/cross-deps.txt"
#   packaging/windows/build-deps.sh --print-prefix
#
# Logs go to stderr; stdout carries only the `export SW_WIN_DEPS=...` line.
# Environment: SW_WIN_DEPS_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/
# signwatch-win64-deps), SW_WIN_DEPS_JOBS (default: nproc).
#
# Sources: the machine's own /etc/apt/sources.list.d/debian.sources turned
# into deb-src entries (bookworm, bookworm-updates, bookworm-security), plus
# a trixie deb-src entry derived from it for YARA 4.5.2, which bookworm does
# not ship. No host name is written here: everything comes from that file.
# trixie is pinned to -1 so no trixie binary is ever installed.
set -eu

HOST=x86_64-w64-mingw32
SCRIPT=$(readlink -f "$0")
CACHE=${SW_WIN_DEPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/signwatch-win64-deps}
JOBS=${SW_WIN_DEPS_JOBS:-$(nproc 2>/dev/null || echo 2)}
MODE=build
case "${1:-}" in
--print-prefix) MODE=print ;;
"") ;;
-h | --help)
	sed -n '2,19p' "$SCRIPT" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "build-deps.sh: unknown argument: $1" >&2
	exit 2
	;;
esac

T0=$(date +%s)
log() { echo "[build-deps $(($(date +%s) - T0))s] $*" >&2; }
die() {
	echo "build-deps.sh: error: $*" >&2
	exit 1
}
trap 'rc=$?; [ $rc -eq 0 ] || echo "build-deps.sh: FAILED (exit $rc); see the log above${STEP:+ (step: $STEP)}" >&2' EXIT
STEP=

as_root() {
	if [ "$(id -u)" -eq 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo "$@"
	else
		die "need root (or sudo) for: $*"
	fi
}

# Source packages (Debian names) and the suites each comes from.
BOOKWORM_PKGS="zlib openssl libuv1 sqlite3 libyaml jansson utf8proc curl"
TRIXIE_PKGS="yara"

# ---------------------------------------------------------------- apt setup
SRC_LIST=/etc/apt/sources.list.d/signwatch-deb-src.sources
PIN_FILE=/etc/apt/preferences.d/signwatch-trixie-src
BASE_SOURCES=/etc/apt/sources.list.d/debian.sources

gen_sources() {
	[ -r "$BASE_SOURCES" ] || die "$BASE_SOURCES not found: cannot derive deb-src entries"
	# Every bookworm stanza as deb-src, then the main archive's stanza (the
	# one whose suites are plain bookworm) again for trixie.
	sed 's/^Types: deb$/Types: deb-src/' "$BASE_SOURCES"
	echo
	awk 'BEGIN { RS = ""; ORS = "\n\n" }
	     /\nSuites:[^\n]*bookworm( |\n|$)/ && !/-security/ && !done {
	         n = split($0, l, "\n"); out = ""
	         for (i = 1; i <= n; i++) {
	             if (l[i] ~ /^Types:/) l[i] = "Types: deb-src"
	             else if (l[i] ~ /^Suites:/) l[i] = "Suites: trixie"
	             else if (l[i] ~ /^#/) continue
	             out = out l[i] "\n"
	         }
	         printf "%s\n", out; done = 1
	     }' "$BASE_SOURCES"
}

apt_setup() {
	STEP="apt sources"
	tmp=$(mktemp)
	gen_sources >"$tmp"
	grep -q '^Suites: trixie$' "$tmp" || die "could not derive a trixie stanza from $BASE_SOURCES"
	pin=$(mktemp)
	cat >"$pin" <<'EOF'
# signwatch build-deps.sh: trixie is here for source packages only (YARA).
Package: *
Pin: release n=trixie
Pin-Priority: -1
EOF
	changed=0
	if ! cmp -s "$tmp" "$SRC_LIST" 2>/dev/null; then
		log "writing $SRC_LIST (deb-src derived from $BASE_SOURCES, plus trixie)"
		as_root install -m 0644 "$tmp" "$SRC_LIST"
		changed=1
	fi
	if ! cmp -s "$pin" "$PIN_FILE" 2>/dev/null; then
		log "writing $PIN_FILE (trixie pinned to -1)"
		as_root install -m 0644 "$pin" "$PIN_FILE"
		changed=1
	fi
	rm -f "$tmp" "$pin"
	if [ $changed -eq 1 ] || ! apt-cache showsrc zlib >/dev/null 2>&1 ||
		[ -z "$(apt-cache showsrc zlib 2>/dev/null)" ]; then
		log "apt-get update"
		as_root apt-get -o DPkg::Lock::Timeout=600 update -qq >&2 || die "apt-get update failed"
	fi
}

PREREQS="mingw-w64 autoconf automake libtool pkg-config cmake dpkg-dev make perl tcl xz-utils"
install_prereqs() {
	STEP="prerequisites"
	missing=
	for p in $PREREQS; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		log "apt-get install$missing"
		as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >&2 ||
			die "could not install$missing"
	fi
	command -v $HOST-gcc >/dev/null || die "$HOST-gcc not found after installing mingw-w64"
}

# Versions of source package $1 among the suites matching $2 (a regex on
# apt-cache madison's suite column), highest first.
src_versions() {
	apt-cache madison "$1" 2>/dev/null | awk -F'|' -v re="$2" '
	    $3 ~ / Sources$/ { split($3, a, " "); suite = a[2]; sub(/\/.*/, "", suite);
	                        gsub(/ /, "", $2); if (suite ~ re) print $2 }' |
		sort -u | {
		# dpkg ordering, by insertion (few versions).
		list=
		while read -r v; do list="$list $v"; done
		out=
		for v in $list; do
			placed=
			new=
			for w in $out; do
				if [ -z "$placed" ] && dpkg --compare-versions "$v" gt "$w"; then
					new="$new $v"
					placed=1
				fi
				new="$new $w"
			done
			[ -n "$placed" ] || new="$new $v"
			out=$new
		done
		for v in $out; do echo "$v"; done
	}
}

# Download (into $DL, reused) the newest version of $1 from suites $2 that
# the mirror actually serves: an index can list a version whose files are
# gone. Prints the version. With a minimum version $3: when no complete
# source package at least that new can be had, the newest upstream tarball
# (.orig.tar.*) that is, fetched with apt's helper and checked against the
# signed index's SHA256, is used without the Debian changes (reported, and
# part of the key).
DL=$CACHE/dl
ORIG_ONLY=
pick_source() {
	mkdir -p "$DL"
	vs=$(src_versions "$1" "$2")
	for v in $vs; do
		if [ -n "${3:-}" ] && dpkg --compare-versions "$v" lt "$3"; then continue; fi
		if (cd "$DL" && apt-get source --download-only -qq "$1=$v" >/dev/null 2>"$DL/.err"); then
			echo "$v"
			return 0
		fi
		log "$1=$v is listed but cannot be downloaded:"
		grep '^E:' "$DL/.err" | head -3 | sed 's/^/    /' >&2
	done
	[ -n "${3:-}" ] || return 1
	for v in $vs; do
		dpkg --compare-versions "$v" ge "$3" || continue
		ok=
		# (from an empty folder: apt omits files it finds already downloaded)
		rm -rf "$DL/.uris" && mkdir -p "$DL/.uris"
		uris=$(cd "$DL/.uris" && apt-get source --print-uris -qq "$1=$v" 2>/dev/null | grep -E "\.orig\.tar\.[a-z0-9]+' ") || true
		[ -n "$uris" ] || continue
		ok=1
		echo "$uris" | while read -r uri file size hash; do
			uri=$(echo "$uri" | tr -d "'")
			[ -f "$DL/$file" ] && echo "${hash#SHA256:}  $DL/$file" | sha256sum -c --quiet - 2>/dev/null && continue
			/usr/lib/apt/apt-helper -qq download-file "$uri" "$DL/$file" "$hash" >&2 || exit 1
		done || ok=
		if [ -n "$ok" ]; then
			log "WARNING: $1=$v: only the upstream tarball is served; building it without the Debian patches"
			echo "$uris" | awk '{print $2}' >"$DL/$1_$v.orig-only"
			echo "$v"
			return 0
		fi
	done
	return 1
}

resolve_versions() {
	STEP="resolve versions"
	VERSIONS=
	for p in $BOOKWORM_PKGS; do
		min=
		[ "$p" = openssl ] && min=3.0.21
		v=$(pick_source "$p" '^bookworm(-updates|-security)?$' $min) ||
			die "no downloadable bookworm source for $p (deb-src entries missing?)"
		VERSIONS="$VERSIONS $p=$v"
	done
	for p in $TRIXIE_PKGS; do
		v=$(pick_source "$p" '^trixie$') || die "no downloadable trixie source for $p"
		VERSIONS="$VERSIONS $p=$v"
	done
	VERSIONS=${VERSIONS# }
	ORIG_ONLY=
	for pv in $VERSIONS; do
		[ -f "$DL/${pv%%=*}_${pv#*=}.orig-only" ] && ORIG_ONLY="$ORIG_ONLY ${pv%%=*}"
	done
	ORIG_ONLY=${ORIG_ONLY# }
	ver() { echo "$VERSIONS" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
	ossl=$(ver openssl)
	dpkg --compare-versions "$ossl" ge 3.0.21 || die "openssl source $ossl is older than 3.0.21"
	case "$(ver yara)" in 4.5.*) ;; *) die "yara source $(ver yara) is not 4.5.x" ;; esac
	GCCV=$($HOST-gcc -dumpversion 2>/dev/null || echo none)
	KEY=$( (
		echo "$VERSIONS"
		echo "gcc=$GCCV"
		echo "orig-only=$ORIG_ONLY"
		sha256sum "$SCRIPT" | cut -d' ' -f1
	) | sha256sum | cut -c1-16)
	PREFIX=$CACHE/$KEY
}

print_export() { echo "export SW_WIN_DEPS='$PREFIX'"; }

if [ "$MODE" = print ]; then
	apt_setup
	resolve_versions
	echo "$PREFIX"
	exit 0
fi

install_prereqs
apt_setup
resolve_versions
log "sources: $VERSIONS (gcc $GCCV)${ORIG_ONLY:+; upstream tarball only, no Debian patches: $ORIG_ONLY}"
log "prefix: $PREFIX"
mkdir -p "$CACHE"
ln -sfn "$KEY" "$CACHE/current.tmp" && mv -T "$CACHE/current.tmp" "$CACHE/current"

if [ -f "$PREFIX/.complete" ]; then
	log "prefix exists and is complete: reused"
	print_export
	exit 0
fi

# Build into a staging prefix and rename at the end, so a prefix that exists
# is always complete. One build at a time per key.
exec 9>"$CACHE/$KEY.lock"
flock 9 || die "could not lock $CACHE/$KEY.lock"
if [ -f "$PREFIX/.complete" ]; then
	log "built by a concurrent run: reused"
	print_export
	exit 0
fi
# Leftovers of failed or interrupted builds (of any key) no one is running.
for l in "$CACHE"/*.lock; do
	[ -e "$l" ] || continue
	k=$(basename "$l" .lock)
	[ "$k" = "$KEY" ] && continue
	if flock -n "$l" true; then
		rm -rf "$CACHE/$k.stage" "$CACHE/work-$k"
		[ -d "$CACHE/$k" ] || rm -f "$l"
	fi
done
STAGE=$PREFIX.stage
WORK=$CACHE/work-$KEY
rm -rf "$STAGE" "$WORK"
mkdir -p "$STAGE/lib/pkgconfig" "$STAGE/include" "$WORK"
P=$STAGE

fetch() { # fetch PKG -> sets SRC to the unpacked tree
	STEP="fetch $1"
	v=$(echo "$VERSIONS" | tr ' ' '\n' | sed -n "s/^$1=//p")
	SRC=$WORK/src/$1
	mkdir -p "$WORK/src"
	if [ -f "$DL/$1_$v.orig-only" ]; then
		for t in $(grep -v '\.asc$' "$DL/$1_$v.orig-only"); do
			log "unpacking $t (upstream only)"
			mkdir -p "$SRC"
			tar -xf "$DL/$t" -C "$SRC" --strip-components=1 || die "cannot unpack $t"
		done
	else
		dsc=$DL/$1_$(echo "$v" | sed 's/^[0-9]*://').dsc
		[ -f "$dsc" ] || die "no $dsc (downloaded when versions were resolved)"
		log "unpacking $(basename "$dsc")"
		dpkg-source --no-check -x "$dsc" "$SRC" >&2 || die "dpkg-source -x $dsc failed"
	fi
	UPVER=$(echo "$v" | sed 's/^[0-9]*://; s/-[^-]*$//; s/+.*//; s/~.*//')
}

export PKG_CONFIG_LIBDIR="$P/lib/pkgconfig"
export PKG_CONFIG_PATH=
export PKG_CONFIG_SYSROOT_DIR=
CROSS_ENV="CC=$HOST-gcc AR=$HOST-ar RANLIB=$HOST-ranlib STRIP=$HOST-strip RC=$HOST-windres WINDRES=$HOST-windres"
CFLAGS_W="-O2 -g0"
WINLIBS="-lws2_32 -lgdi32 -lcrypt32 -lbcrypt -ladvapi32 -luser32"

autotools() { # configure --host, make, make install, in $SRC
	(cd "$SRC" && env $CROSS_ENV CFLAGS="$CFLAGS_W ${XCFLAGS:-}" CPPFLAGS="-I$P/include ${XCPPFLAGS:-}" \
		LDFLAGS="-L$P/lib" LIBS="${XLIBS:-}" PKG_CONFIG=pkg-config \
		./configure --host=$HOST --build="$(dpkg-architecture -qDEB_BUILD_GNU_TYPE)" --prefix="$P" \
		--libdir="$P/lib" --disable-shared --enable-static "$@" >&2) || die "$STEP: configure failed"
	(cd "$SRC" && make -j"$JOBS" >&2) || die "$STEP: make failed"
	(cd "$SRC" && make install >&2) || die "$STEP: make install failed"
}

# --------------------------------------------------------------------- zlib
fetch zlib
STEP="build zlib"
log "building zlib $UPVER"
# Debian's .dfsg tarball has no win32/ makefiles: compile the library's
# sources directly (what win32/Makefile.gcc does).
(cd "$SRC" && for c in adler32 compress crc32 deflate gzclose gzlib gzread gzwrite infback inffast inflate \
	inftrees trees uncompr zutil; do
	$HOST-gcc $CFLAGS_W -D_LARGEFILE64_SOURCE=1 -c $c.c -o $c.o || exit 1
done && rm -f libz.a && $HOST-ar rcs libz.a adler32.o compress.o crc32.o deflate.o gzclose.o gzlib.o gzread.o \
	gzwrite.o infback.o inffast.o inflate.o inftrees.o trees.o uncompr.o zutil.o >&2) || die "zlib: compile failed"
install -m 0644 "$SRC/libz.a" "$P/lib/"
install -m 0644 "$SRC/zlib.h" "$SRC/zconf.h" "$P/include/"
ZV=$(sed -n 's/^#define ZLIB_VERSION "\(.*\)"/\1/p' "$SRC/zlib.h")
cat >"$P/lib/pkgconfig/zlib.pc" <<EOF
prefix=$P
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: zlib
Description: zlib compression library (static, $HOST)
Version: $ZV
Libs: -L\${libdir} -lz
Cflags: -I\${includedir}
EOF

# ------------------------------------------------------------------ OpenSSL
fetch openssl
STEP="build openssl"
log "building OpenSSL $UPVER (takes a few minutes)"
# The directories baked into libcrypto (openssl.cnf, engines, providers)
# must be Windows paths only administrators can write: a build-machine path
# like /root/... would resolve to \root\... on the current drive, which any
# user may create (a DLL-planting hole for a SYSTEM service).
WIN_SSLDIR=C:/ProgramData/signwatch/ssl
OSSL_DIRS="OPENSSLDIR=$WIN_SSLDIR ENGINESDIR=$WIN_SSLDIR/engines-3 MODULESDIR=$WIN_SSLDIR/ossl-modules"
(cd "$SRC" && ./Configure mingw64 no-shared no-tests no-module --cross-compile-prefix=$HOST- \
	--prefix="$P" --libdir=lib --openssldir="$WIN_SSLDIR" >&2) || die "openssl: Configure failed"
(cd "$SRC" && make -j"$JOBS" build_libs $OSSL_DIRS >&2) || die "openssl: make failed"
(cd "$SRC" && make install_dev $OSSL_DIRS >&2) || die "openssl: make install_dev failed"
strings "$P/lib/libcrypto.a" | grep -q "$CACHE" && die "openssl: libcrypto.a still names a build path"
[ -f "$P/lib/pkgconfig/libcrypto.pc" ] || die "openssl: libcrypto.pc not installed"

# -------------------------------------------------------------------- libuv
fetch libuv1
STEP="build libuv"
log "building libuv $UPVER"
(cd "$SRC" && sh autogen.sh >&2) || die "libuv: autogen.sh failed"
autotools
# libuv's .pc puts the Windows libraries in Libs; make sure they are there.
grep -q 'ws2_32' "$P/lib/pkgconfig/libuv.pc" ||
	sed -i 's/^Libs: \(.*\)$/Libs: \1 -lws2_32 -liphlpapi -luserenv -lpsapi -luser32 -ldbghelp -lole32 -lshell32/' "$P/lib/pkgconfig/libuv.pc"

# ------------------------------------------------------------------- SQLite
fetch sqlite3
STEP="build sqlite3"
log "building SQLite $UPVER (amalgamation made natively, compiled for $HOST)"
mkdir -p "$SRC/native"
(cd "$SRC/native" && ../configure --disable-tcl --disable-shared >&2 && make sqlite3.c >&2) ||
	die "sqlite3: making the amalgamation failed"
SQLITE_DEFS="-DSQLITE_THREADSAFE=1 -DSQLITE_ENABLE_COLUMN_METADATA -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_RTREE -DSQLITE_ENABLE_JSON1 -DSQLITE_SECURE_DELETE -DSQLITE_ENABLE_UNLOCK_NOTIFY -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_USE_URI=1 -DSQLITE_WIN64=1"
(cd "$SRC/native" && $HOST-gcc $CFLAGS_W $SQLITE_DEFS -c sqlite3.c -o sqlite3.o && $HOST-ar rcs libsqlite3.a sqlite3.o) ||
	die "sqlite3: compile failed"
install -m 0644 "$SRC/native/libsqlite3.a" "$P/lib/"
install -m 0644 "$SRC/native/sqlite3.h" "$SRC/native/sqlite3ext.h" "$P/include/" 2>/dev/null ||
	install -m 0644 "$SRC/native/sqlite3.h" "$SRC/src/sqlite3ext.h" "$P/include/"
SQV=$(sed -n 's/^#define SQLITE_VERSION *"\(.*\)"/\1/p' "$SRC/native/sqlite3.h")
cat >"$P/lib/pkgconfig/sqlite3.pc" <<EOF
prefix=$P
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: SQLite
Description: SQL database engine (static, $HOST)
Version: $SQV
Libs: -L\${libdir} -lsqlite3
Cflags: -I\${includedir}
EOF

# ------------------------------------------------------------------ libyaml
fetch libyaml
STEP="build libyaml"
log "building libyaml $UPVER"
[ -x "$SRC/configure" ] || (cd "$SRC" && autoreconf -fi >&2) || die "libyaml: autoreconf failed"
XCPPFLAGS=-DYAML_DECLARE_STATIC autotools
XCPPFLAGS=
# yaml.h declares dllimport unless YAML_DECLARE_STATIC.
sed -i 's/^Cflags: \(.*\)$/Cflags: \1 -DYAML_DECLARE_STATIC/' "$P/lib/pkgconfig/yaml-0.1.pc"

# ------------------------------------------------------------------ jansson
fetch jansson
STEP="build jansson"
log "building jansson $UPVER"
[ -x "$SRC/configure" ] || (cd "$SRC" && autoreconf -fi >&2) || die "jansson: autoreconf failed"
autotools

# ----------------------------------------------------------------- utf8proc
fetch utf8proc
STEP="build utf8proc"
log "building utf8proc $UPVER"
(cd "$SRC" && $HOST-gcc $CFLAGS_W -std=c99 -DUTF8PROC_STATIC -c utf8proc.c -o utf8proc.o &&
	$HOST-ar rcs libutf8proc.a utf8proc.o) || die "utf8proc: compile failed"
install -m 0644 "$SRC/libutf8proc.a" "$P/lib/"
install -m 0644 "$SRC/utf8proc.h" "$P/include/"
U8V=$(awk '/#define UTF8PROC_VERSION_MAJOR/ {a=$3} /#define UTF8PROC_VERSION_MINOR/ {b=$3}
           /#define UTF8PROC_VERSION_PATCH/ {c=$3} END {print a "." b "." c}' "$SRC/utf8proc.h")
cat >"$P/lib/pkgconfig/libutf8proc.pc" <<EOF
prefix=$P
libdir=\${prefix}/lib
includedir=\${prefix}/include

Name: libutf8proc
Description: UTF-8 processing (static, $HOST)
Version: $U8V
Libs: -L\${libdir} -lutf8proc
Cflags: -I\${includedir} -DUTF8PROC_STATIC
EOF

# --------------------------------------------------------------------- curl
fetch curl
STEP="build curl"
log "building curl $UPVER (OpenSSL, zlib; nothing else)"
(cd "$SRC" && autoreconf -fi >&2) || die "curl: autoreconf failed"
XLIBS="$WINLIBS" autotools --with-openssl="$P" --with-zlib="$P" --without-libpsl --without-brotli \
	--without-zstd --without-libidn2 --without-nghttp2 --without-nghttp3 --without-ngtcp2 \
	--without-libssh2 --without-libssh --without-librtmp --without-libgsasl --without-hyper \
	--without-quiche --without-msh3 --without-gssapi --without-schannel --disable-ldap \
	--disable-ldaps --disable-rtsp --disable-dict --disable-telnet --disable-tftp --disable-pop3 \
	--disable-imap --disable-smtp --disable-gopher --disable-mqtt --disable-smb --disable-manual \
	--disable-docs --without-ca-bundle --without-ca-path --enable-static
XLIBS=
# Debian's curl patches name the library after a flavour (libcurl-nss.a
# here); its libcurl.pc says -lcurl.
if [ ! -f "$P/lib/libcurl.a" ]; then
	for a in "$P"/lib/libcurl-*.a; do
		[ -f "$a" ] && mv "$a" "$P/lib/libcurl.a" && break
	done
fi
[ -f "$P/lib/libcurl.a" ] || die "curl: libcurl.a not installed"
grep -q CURL_STATICLIB "$P/lib/pkgconfig/libcurl.pc" ||
	sed -i 's/^Cflags: \(.*\)$/Cflags: \1 -DCURL_STATICLIB/' "$P/lib/pkgconfig/libcurl.pc"

# --------------------------------------------------------------------- YARA
fetch yara
STEP="build yara"
log "building YARA $UPVER (with OpenSSL for the pe/hash modules)"
(cd "$SRC" && autoreconf -fi >&2) || die "yara: autoreconf failed"
XLIBS="$WINLIBS" autotools --with-crypto --disable-magic --disable-cuckoo --disable-dotnet
XLIBS=
grep -q '^Requires.private:.*libcrypto' "$P/lib/pkgconfig/yara.pc" ||
	sed -i 's/^Libs.private:\(.*\)$/Libs.private:\1 -lcrypto '"$WINLIBS"'/' "$P/lib/pkgconfig/yara.pc"

# ------------------------------------------------------------------- finish
STEP="finish"
# Static only: no DLL import libraries or DLLs may be picked up by a link.
rm -f "$P"/lib/*.dll.a "$P"/lib/*.la
rm -rf "$P/bin" "$P/share/man" "$P/share/doc"
# Point every .pc at the final prefix.
for pc in "$P"/lib/pkgconfig/*.pc; do
	sed -i "s|$STAGE|$PREFIX|g" "$pc"
done
for pc in zlib libcrypto libssl openssl libuv sqlite3 yaml-0.1 jansson libutf8proc libcurl yara; do
	PKG_CONFIG_LIBDIR="$P/lib/pkgconfig" pkg-config --exists "$pc" || die "$pc.pc missing or broken"
done
# meson 1.0 cannot read the environment or its cross file's folder, so the
# prefix comes as a second machine file:
#   meson setup B --cross-file packaging/windows/cross-mingw64.txt --cross-file "$SW_WIN_DEPS/cross-deps.txt"
cat >"$P/cross-deps.txt" <<EOF
# Generated by packaging/windows/build-deps.sh: where the static Windows
# dependencies are. Use after packaging/windows/cross-mingw64.txt.
[properties]
pkg_config_libdir = ['$PREFIX/lib/pkgconfig']
EOF
{
	echo "# signwatch Windows dependencies, built by packaging/windows/build-deps.sh"
	echo "key=$KEY"
	echo "host=$HOST"
	echo "gcc=$GCCV"
	echo "orig-only=$ORIG_ONLY"
	echo "$VERSIONS" | tr ' ' '\n'
} >"$P/VERSIONS"
touch "$P/.complete"
rm -rf "$PREFIX"
mv -T "$STAGE" "$PREFIX"
rm -rf "$WORK"
log "done: $PREFIX"
print_export
