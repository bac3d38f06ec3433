#!/bin/sh
# pkg-config for the Windows cross build (cross-mingw64.txt): sees only the
# static libraries packaging/windows/build-deps.sh built, never the build
# machine's own. The prefix is $SW_WIN_DEPS (what build-deps.sh prints:
#   eval "$(packaging/windows/build-deps.sh)"
# ), else the last prefix build-deps.sh made ("current" in its cache).
d=${SW_WIN_DEPS:-${SW_WIN_DEPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/signwatch-win64-deps}/current}
case "${1:-}" in
--version | --atleast-pkgconfig-version*) exec pkg-config "$@" ;;
esac
if [ ! -f "$d/.complete" ] || [ ! -d "$d/lib/pkgconfig" ]; then
	echo "pkg-config-win64.sh: no Windows dependency prefix at $d;" \
		"run packaging/windows/build-deps.sh and export SW_WIN_DEPS" >&2
	exit 1
fi
PKG_CONFIG_LIBDIR=$d/lib/pkgconfig PKG_CONFIG_PATH= PKG_CONFIG_SYSROOT_DIR= exec pkg-config "$@"
