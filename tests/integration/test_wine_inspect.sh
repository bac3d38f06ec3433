#!/usr/bin/env bash
# The Windows build gives the Linux build's records (TAP on stdout):
#   test_wine_inspect.sh WIN_BUILD_DIR LINUX_BUILD_DIR
# Every fixture (and the shared corpus when present) is inspected by both
# builds, at the same verification time and against the same roots; the
# records must be equal field by field except DeviceId, DeviceName,
# Timestamp and FolderPath, which describe the machine and the path. Files
# neither build can read as PE must fail the same way (exit status 1).
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
win=${1:?usage: test_wine_inspect.sh WIN_BUILD_DIR LINUX_BUILD_DIR}
lin=${2:?usage: test_wine_inspect.sh WIN_BUILD_DIR LINUX_BUILD_DIR}
exe=$win/signwatch.exe
[ -f "$exe" ] || {
	echo "Bail out! $exe not built"
	exit 1
}
[ -x "$lin/signwatch" ] || {
	echo "Bail out! $lin/signwatch not built"
	exit 1
}
command -v wine >/dev/null || {
	echo "Bail out! wine not found"
	exit 1
}

own_prefix=
if [ -z "${WINEPREFIX:-}" ]; then
	WINEPREFIX=$(mktemp -d /tmp/signwatch-wine.XXXXXX)
	own_prefix=1
fi
export WINEPREFIX WINEDEBUG=-all WINEDLLOVERRIDES="mscoree=;mshtml="
work=$(mktemp -d)
cleanup() {
	[ -n "$own_prefix" ] && {
		wineserver -k >/dev/null 2>&1
		rm -rf "$WINEPREFIX"
	}
	rm -rf "$work"
}
trap cleanup EXIT
# The first command creates the prefix (not `wineboot -i`: on an empty
# prefix it leaves two service managers; packaging/windows/test-wine.sh).
[ -n "$own_prefix" ] && wineboot -u >/dev/null 2>&1

files=("$src"/tests/fixtures/*.exe "$src"/tests/fixtures/notpe.txt "$src"/tests/fixtures/empty.bin)
if [ -d "$src/../shared/corpus" ]; then
	for f in "$src"/../shared/corpus/*; do
		case $f in *.tsv | *.md | *.pem) continue ;; esac
		[ -f "$f" ] && files+=("$f")
	done
fi
roots=$src/tests/fixtures/pki/roots.pem
# One clock for both: validity is judged at this time when a file has no
# countersignature.
export SIGNWATCH_TEST_NOW=2026-06-01T00:00:00Z

"$lin/signwatch" inspect --json --ca-file "$roots" "${files[@]}" >"$work/linux.jsonl" 2>"$work/linux.err"
lrc=$?
winfiles=()
for f in "${files[@]}"; do winfiles+=("$(winepath -w "$f" 2>/dev/null)"); done
# wine passes the environment through; the Windows build reads the same
# variable.
wine "$exe" inspect --json --ca-file "$(winepath -w "$roots")" "${winfiles[@]}" 2>"$work/win.err" |
	tr -d '\r' >"$work/win.jsonl"
wrc=${PIPESTATUS[0]}

echo "# ${#files[@]} files; exit status: linux $lrc, windows $wrc"
# DeviceId on Windows: SHA-1 of "signwatch-device:" + the prefix's MachineGuid.
guid=$(wine reg query 'HKLM\SOFTWARE\Microsoft\Cryptography' /v MachineGuid 2>/dev/null | tr -d '\r' |
	awk '$1 == "MachineGuid" {print $3}')
python3 - "$work/linux.jsonl" "$work/win.jsonl" "$lrc" "$wrc" "$guid" <<'EOF'
import hashlib, json, re, sys

IGNORED = {"DeviceId", "DeviceName", "Timestamp", "FolderPath"}

def load(path):
    out = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        key = (r.get("FileName"), r.get("SHA256"), r.get("SignatureIndex"))
        out.setdefault(key, []).append(r)
    return out

lin, win = load(sys.argv[1]), load(sys.argv[2])
n = 0
fails = 0

def check(ok, what, detail=""):
    global n, fails
    n += 1
    if ok:
        print(f"ok {n} - {what}")
    else:
        fails += 1
        print(f"not ok {n} - {what}")
        for l in detail.splitlines():
            print("#   " + l)

check(sys.argv[3] == sys.argv[4], "both builds exit with the same status",
      f"linux {sys.argv[3]}, windows {sys.argv[4]}")
check(len(lin) > 20, f"the Linux build gave records ({len(lin)})")
check(set(lin) == set(win), f"the same {len(lin)} records (file, SHA256, signature)",
      "only linux: %s\nonly windows: %s" % (sorted(set(lin) - set(win), key=str)[:10],
                                            sorted(set(win) - set(lin), key=str)[:10]))
for key in sorted(set(lin) & set(win), key=str):
    a, b = lin[key], win[key]
    diffs = []
    for ra, rb in zip(a, b):
        for f in sorted(set(ra) | set(rb)):
            if f in IGNORED:
                continue
            if ra.get(f) != rb.get(f):
                diffs.append(f"{f}: linux {ra.get(f)!r} windows {rb.get(f)!r}")
    if len(a) != len(b):
        diffs.append(f"{len(a)} records on linux, {len(b)} on windows")
    check(not diffs, f"{key[0]} #{key[2]}: same fields and values", "\n".join(diffs))
# The fields that are allowed to differ must still be there.
sample = next(iter(win.values()))[0] if win else {}
check(all(sample.get(f) for f in ("DeviceId", "DeviceName", "Timestamp", "FolderPath")),
      "the Windows records carry DeviceId, DeviceName, Timestamp, FolderPath",
      json.dumps(sample)[:500])
check(":\\" in (sample.get("FolderPath") or ""), "FolderPath is a Windows path",
      str(sample.get("FolderPath")))
guid = sys.argv[5]
want = hashlib.sha1(("signwatch-device:" + guid).encode()).hexdigest() if guid else None
ids = {r.get("DeviceId") for rs in win.values() for r in rs}
check(bool(guid) and ids == {want} and re.fullmatch(r"[0-9a-f]{40}", want or "") is not None,
      "every Windows record's DeviceId is sha1(\"signwatch-device:\" + MachineGuid), 40 lowercase hex",
      f"MachineGuid {guid!r}: want {want}, got {sorted(map(str, ids))[:5]}")
print(f"1..{n}")
sys.exit(1 if fails else 0)
EOF
