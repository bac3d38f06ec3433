#!/usr/bin/env bash
# bench_rules.sh - build and run bench_rules (the RMM rule pack over
# 1,000,000 records, next to a strcasestr floor) and bench_summary (the
# Pulseway summary over a 1,000,000-match store, next to SELECT count(*)),
# each pinned to one core. Prints figures only; asserts nothing.
#
#   bench/bench_rules.sh [BUILD_DIR]     (default: build-bench in the source tree)
#
# BUILD_DIR is set up with --buildtype=release when it does not exist. The
# benches are built by meson when meson.build declares them (targets
# bench_rules and bench_summary); otherwise they are compiled here against
# BUILD_DIR's static libraries, so the script works either way.
# Environment: BENCH_CORE (default 0), BENCH_DIR (temp parent for the
# store, default $TMPDIR or /tmp), BENCH_RECORDS (default 1000000),
# BENCH_RUNS_RULES (3), BENCH_RUNS_SUMMARY (7).
set -euo pipefail

src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${1:-$src/build-bench}
core=${BENCH_CORE:-0}
tmp=${BENCH_DIR:-${TMPDIR:-/tmp}}

for tool in meson ninja taskset cc pkg-config; do
	command -v "$tool" >/dev/null || { echo "bench_rules.sh: $tool not found" >&2; exit 2; }
done

if [ ! -f "$build/build.ninja" ]; then
	opts=(--buildtype=release)
	grep -q "option('bench'" "$src/meson_options.txt" 2>/dev/null && opts+=(-Dbench=true)
	meson setup "${opts[@]}" "$build" "$src" >/dev/null
fi
buildtype=$(meson introspect --buildoptions "$build" 2>/dev/null |
	python3 -c 'import json,sys; print(next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))' \
	2>/dev/null || echo unknown)
[ "$buildtype" = release ] || echo "note: $build is a '$buildtype' build; figures are for release builds" >&2

# The executables' paths if meson knows them (declared at the top level or in bench/).
targets=$(ninja -C "$build" -t targets all 2>/dev/null | sed -n 's/^\([^:]*bench_\(rules\|summary\)\): .*LINKER.*/\1/p')
if [ "$(printf '%s\n' "$targets" | grep -c .)" -ge 2 ]; then
	# shellcheck disable=SC2086
	ninja -C "$build" $targets >/dev/null
	bench_rules=$build/$(printf '%s\n' "$targets" | grep 'bench_rules$')
	bench_summary=$build/$(printf '%s\n' "$targets" | grep 'bench_summary$')
else
	ninja -C "$build" libswagent.a libswcommon.a libswplatform.a >/dev/null
	out=$build/bench-local
	mkdir -p "$out"
	# shellcheck disable=SC2046
	for b in bench_rules bench_summary; do
		cc -O2 -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter \
			-I"$src/agent" -I"$src/common" -I"$src/platform" -I"$build" \
			"$src/bench/$b.c" -o "$out/$b" \
			-Wl,--start-group "$build/libswagent.a" "$build/libswcommon.a" "$build/libswplatform.a" -Wl,--end-group \
			$(pkg-config --cflags --libs openssl yaml-0.1 jansson libutf8proc libuv sqlite3) -lpthread
	done
	bench_rules=$out/bench_rules
	bench_summary=$out/bench_summary
fi

echo "== bench_rules: rule pack over ${BENCH_RECORDS:-1000000} records, core $core =="
(cd "$src" && taskset -c "$core" "$bench_rules" "$src/agent/rules/rmm" \
	--records "${BENCH_RECORDS:-1000000}" --runs "${BENCH_RUNS_RULES:-3}")
echo
echo "== bench_summary: Pulseway summary over 1,000,000 matches, core $core =="
taskset -c "$core" "$bench_summary" --dir "$tmp" --runs "${BENCH_RUNS_SUMMARY:-7}"
