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
  rm -rf build-asan && CC=clang meson setup build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
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

# Windows: the static dependency prefix (built from Debian source packages
# once, then reused), the cross build with -Werror, the unit tests under
# wine, the records against the Linux build's, the MSI and its scenario.
# One wine prefix with a persistent wineserver for the unit tests and the
# comparison; the MSI scenario makes its own fresh prefix, as a new machine.
win_deps() {
  local out
  out=$(packaging/windows/build-deps.sh) || return 1
  eval "$out"
  [ -n "${SW_WIN_DEPS:-}" ] && [ -f "$SW_WIN_DEPS/cross-deps.txt" ]
}
win_build_and_test() {
  [ -n "${SW_WIN_DEPS:-}" ] || return 1
  rm -rf build-win && meson setup build-win -Dwerror=true --cross-file packaging/windows/cross-mingw64.txt \
    --cross-file "$SW_WIN_DEPS/cross-deps.txt" >/dev/null &&
    ninja -C build-win || return 1
  # The exe imports nothing but Windows' own DLLs.
  local dlls
  dlls=$(x86_64-w64-mingw32-objdump -p build-win/signwatch.exe | awk '/DLL Name:/ {print tolower($3)}' | sort -u)
  echo "signwatch.exe imports: $(echo $dlls)"
  if echo "$dlls" | grep -vqE '^(kernel32|advapi32|user32|gdi32|ws2_32|crypt32|bcrypt|iphlpapi|userenv|secur32|shell32|ole32|dbghelp|wintrust|msvcrt|api-ms-win-.*|ntdll|psapi|normaliz|wldap32|rpcrt4|shlwapi|version)\.dll$'; then
    echo "signwatch.exe imports a DLL that is not Windows' own"
    return 1
  fi
  # The prefix is made right before the tests: one that idled for a minute
  # or more with its persistent wineserver (seen here after the dependency
  # and cross builds) can leave a test process hanging at its exit.
  export SW_WINEPREFIX WINEDEBUG=-all WINEDLLOVERRIDES="mscoree=;mshtml="
  SW_WINEPREFIX=$(mktemp -d /tmp/signwatch-ci-wine.XXXXXX)
  WINEPREFIX=$SW_WINEPREFIX wineboot -u >/dev/null 2>&1 # creates it; not -i (see test-wine.sh)
  WINEPREFIX=$SW_WINEPREFIX wineserver -p
  WINEPREFIX=$SW_WINEPREFIX meson test -C build-win --print-errorlogs && return 0
  win_rerun_exit_hangs
}
# wine 8 now and then leaves a finished test process hanging at its exit
# (seen for tests whose TAP output was complete, with and without load; not
# reproducible in a loop). A test that timed out after printing its whole
# plan with every subtest ok is run once more, and says so; any other
# failure, or a second hang, fails the stage.
win_rerun_exit_hangs() {
  local log=build-win/meson-logs/testlog.json names
  [ -f "$log" ] || return 1
  names=$(python3 - "$log" <<'PY'
import json, re, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
bad = [r for r in rows if r["result"] not in ("OK", "SKIP", "EXPECTEDFAIL")]
def complete(r):
    out = r.get("stdout") or ""
    m = re.search(r"^1\.\.(\d+)\s*$", out, re.M)
    oks = len(re.findall(r"^ok \d+", out, re.M))
    return m and "not ok" not in out and oks == int(m.group(1))
if not bad or not all(r["result"] == "TIMEOUT" and complete(r) for r in bad):
    sys.exit(1)
print(" ".join(r["name"] for r in bad))
PY
) || return 1
  echo "=== wine hung at exit after a complete, passing TAP run: $names; running them once more"
  cp "$log" "$log.first"
  WINEPREFIX=$SW_WINEPREFIX meson test -C build-win --no-rebuild --print-errorlogs $names || return 1
  # The totals count the first run's results with the re-run's in place.
  python3 - "$log.first" "$log" <<'PY'
import json, sys
first = [json.loads(l) for l in open(sys.argv[1])]
again = {json.loads(l)["name"]: l for l in open(sys.argv[2])}
with open(sys.argv[2], "w") as f:
    for r in first:
        f.write(again.get(r["name"], json.dumps(r) + "\n").rstrip("\n") + "\n")
PY
}
win_msi() {
  [ -f build-win/signwatch.exe ] || return 1
  SIGNWATCH_EXE=$PWD/build-win/signwatch.exe bash packaging/windows/make-msi.sh build-win
}
win_stage() {
  SW_WINEPREFIX=
  step "Windows: dependencies from Debian source packages" win_deps
  step "Windows: cross build (-Werror), test suite under wine" win_build_and_test
  count_meson build-win
  step "Windows: inspect --json gives the Linux build's records" \
    env WINEPREFIX="$SW_WINEPREFIX" bash tests/integration/test_wine_inspect.sh build-win build-ci
  step "Windows: the OS root store and catalogs under wine" bash tests/integration/test_wine_trust.sh build-win
  step "Windows: the MSI (wixl)" win_msi
  local msi
  msi=$(ls -t build-win/signwatch-*-x64.msi 2>/dev/null | head -1)
  step "Windows: the MSI scenario under wine" bash packaging/windows/test-wine.sh "${msi:-build-win/none.msi}"
  if [ -n "$SW_WINEPREFIX" ]; then
    WINEPREFIX=$SW_WINEPREFIX wineserver -k >/dev/null 2>&1
    rm -rf "$SW_WINEPREFIX"
  fi
}
if [ "${SW_SKIP_WINDOWS:-}" = 1 ]; then
  echo "=== Windows stages skipped (SW_SKIP_WINDOWS=1)"
else
  win_stage
fi

style() {
  git ls-files '*.c' '*.h' ':!tests/fixtures/src' | xargs clang-format --dry-run --Werror
}
step "clang-format" style

echo
[ ${#failures[@]} -eq 0 ] || printf 'failed: %s\n' "${failures[@]}"
echo "signwatch: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
