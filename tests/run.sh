#!/usr/bin/env bash
# The whole test suite, as CI runs it: a warnings-as-errors build and every
# test; the unit tests again under ASan+UBSan; a short libFuzzer run of
# every parser; valgrind over the fixtures; the style check. Prints one
# closing line "N passed, N failed" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS=${SW_FUZZ_SECONDS:-60}
passed=0
failed=0
failures=()

step() { # step NAME COMMAND...
  local name=$1
  shift
  echo "=== $name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("$name")
    echo "=== FAILED: $name"
  fi
}

count_meson() { # add meson's per-test results to the totals
  local log=$1/meson-logs/testlog.json
  [ -f "$log" ] || return 0
  read -r p f < <(python3 -c '
import json, sys
p = f = 0
for line in open(sys.argv[1]):
    r = json.loads(line)["result"]
    if r in ("OK", "SKIP", "EXPECTEDFAIL"): p += 1
    else: f += 1
print(p, f)' "$log")
  passed=$((passed + p))
  failed=$((failed + f))
}

build_and_test() {
  rm -rf build-ci && meson setup build-ci -Dwerror=true --buildtype=debugoptimized >/dev/null &&
    ninja -C build-ci &&
    meson test -C build-ci --print-errorlogs
}
step "build (-Werror) and test" build_and_test
count_meson build-ci

asan() {
  rm -rf build-asan && CC=clang meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fno-sanitize-recover=undefined >/dev/null &&
    ninja -C build-asan &&
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      SW_STORE_SKIP_BIG=1 meson test -C build-asan --suite unit --print-errorlogs
}
step "unit tests under ASan+UBSan" asan

fuzz() {
  rm -rf build-fuzz && CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
    >/dev/null && ninja -C build-fuzz || return 1
  local rc=0 t seeds work
  for t in build-fuzz/tests/fuzz/fuzz_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    work=$(mktemp -d)
    seeds=tests/fuzz/seeds/$(basename "$t" | sed 's/^fuzz_//')
    [ -d "$seeds" ] || seeds=tests/fixtures
    cp -r "$seeds"/. "$work"/ 2>/dev/null
    echo "--- $(basename "$t"): ${FUZZ_SECONDS}s"
    SW_FUZZ_CA=tests/fixtures/pki/roots.pem "$t" -max_total_time="$FUZZ_SECONDS" -max_len=262144 \
      -rss_limit_mb=2048 -print_final_stats=1 "$work" 2>&1 | grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Done' ||
      true
    [ "${PIPESTATUS[0]}" -eq 0 ] || rc=1
    rm -rf "$work"
  done
  return $rc
}
step "libFuzzer, ${FUZZ_SECONDS}s per target" fuzz

vg() {
  local files=(tests/fixtures/*.exe)
  [ -d ../shared/corpus ] && files+=(../shared/corpus/*.dll ../shared/corpus/*.exe ../shared/corpus/*.signed)
  [ -x build-ci/signwatch ] || return 1
  # Exit 1 is expected (some fixtures are not PE files); 99 is valgrind's.
  valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect \
    build-ci/signwatch inspect --json --ca-file tests/fixtures/pki/roots.pem "${files[@]}" >/dev/null 2>&1
  local rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 1 ]
}
step "valgrind over the fixtures" vg

step "Debian package: build, install, upgrade, purge" bash tests/integration/test_deb.sh

style() {
  git ls-files '*.c' '*.h' ':!tests/fixtures/src' | xargs clang-format --dry-run --Werror
}
step "clang-format" style

echo
[ ${#failures[@]} -eq 0 ] || printf 'failed: %s\n' "${failures[@]}"
echo "signwatch: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
