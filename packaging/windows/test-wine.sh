#!/usr/bin/env bash
# The MSI under wine: test-wine.sh [MSI [UPGRADE_MSI]]   (TAP on stdout)
#
# In a temporary WINEPREFIX with a persistent wineserver: install the MSI
# silently with public properties, check the service reaches RUNNING, the
# configuration holds the properties, a signed PE copied into a folder made
# after the start (under ROOTS) is recorded and matched; a major upgrade to
# UPGRADE_MSI without properties (one product left, the service RUNNING
# with its ImagePath, the configuration byte for byte, the store with its
# rows, the event source, a new PE recorded by the upgraded service);
# `service reload` picks up a root added to the configuration; then
# `net stop` stops the service cleanly; the event source (signwatch.exe's
# message table) and version resource; `service uninstall`/`install`/
# `start` without the MSI, with the data folder's protected DACL;
# `msiexec /x` of the upgrade removes the service, the event source and
# the product but keeps the store, and (MSI reinstalled) `msiexec /x
# REMOVE_DATA=1` removes the store, records and configuration too.
# The prefix and the wineserver are removed at the end.
#
# MSI defaults to the newest signwatch-*-x64.msi in $SW_WIN_BUILD (default
# build-win in the source tree). UPGRADE_MSI defaults to one built here by
# make-msi.sh: MSI's own signwatch.exe (msiextract) packaged as the next
# version (0.1.0 -> 0.1.1: SW_MSI_VERSION), so a new ProductCode, the same
# UpgradeCode. Needs wine (64-bit), python3, wixl and msitools.
# Environment: SW_WINE_KEEP=1 keeps the prefix (printed). Every msiexec
# writes a verbose log (/l*v); a failing one is quoted in the TAP output.
#
# The prefix is made like a machine that is set up, then rebooted:
# - it is created by the first wine command alone: `wineboot -i` on an
#   empty prefix runs a second initialisation beside the automatic one and
#   leaves two services.exe answering \\.\pipe\svcctl, so a service created
#   through one is unknown to the other (1060 after `service install`,
#   1055 "database locked" from StartService, 1627 from msiexec). The test
#   checks that exactly one service manager runs;
# - the secret's machine environment variable is set, then wine is
#   restarted: services get the environment the service manager read at
#   boot (docs/DEPLOY.md), and without the variable the agent refuses its
#   configuration and the install fails, as it should.
#
# Wine specifics (each reported as a TAP comment when it happens):
# - the first `msiexec /i` on a fresh prefix is retried once if it fails
#   with 1627 (the reason, from its log, is printed);
# - wine's recursive watching does not report folders that existed before
#   the watch started, so the test folder is created after the start;
# - wine's event log is a stub (ReportEventW goes nowhere): the event
#   source's registration and the message table are checked instead; its
#   service manager ignores FailureActionsOnNonCrashFailures and the
#   pre-shutdown timeout (`service set-recovery` says so, the MSI carries on);
# - wine's msi runs RemoveExistingProducts at once (the old version's
#   whole removal), while the standard actions are only written to the
#   script and run at InstallFinalize: whatever its sequence number, the
#   old version is removed before the new one's files and service are
#   touched, and a failed upgrade leaves neither version (no rollback of
#   the removal; Windows rolls it back). Its place in the table, what
#   Windows follows, is checked from the MSI with msiinfo;
# - wine keeps no ACL on disk for a folder (it maps a DACL to mode bits
#   only), so the data folder's DACL cannot be read back: the
#   SetNamedSecurityInfoW call `service install` makes, and its flags, are
#   checked in a +advapi trace instead;
# - wine's service manager accepts the recovery actions but stores no
#   FailureActions value: that check is skipped (SKIP) when it is absent;
# - `signwatch service reload` (SERVICE_CONTROL_PARAMCHANGE): a root added
#   to the configuration is scanned after it; if wine does not deliver the
#   control, a TAP comment says so.
set -u

here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
build=${SW_WIN_BUILD:-$src/build-win}
msi=${1:-$(ls -t "$build"/signwatch-*-x64.msi 2>/dev/null | head -1)}
[ -n "$msi" ] && [ -f "$msi" ] || {
	echo "Bail out! no MSI (give its path, or build one with packaging/windows/make-msi.sh)"
	exit 1
}
msi=$(cd "$(dirname "$msi")" && pwd)/$(basename "$msi")
fixture=$src/tests/fixtures/mmsoft-sha256-ts.exe # signed by "MMSoft Design": the Pulseway rule matches
[ -f "$fixture" ] || {
	echo "Bail out! $fixture missing"
	exit 1
}
command -v wine >/dev/null || {
	echo "Bail out! wine not found"
	exit 1
}
for t in msiinfo msiextract; do
	command -v $t >/dev/null || {
		echo "Bail out! $t not found (msitools)"
		exit 1
	}
done
# msi_property MSI NAME: a value of the MSI's Property table.
msi_property() {
	msiinfo export "$1" Property 2>/dev/null | tr -d '\r' | awk -F '\t' -v k="$2" '$1 == k {print $2}'
}
version0=$(msi_property "$msi" ProductVersion)
code0=$(msi_property "$msi" ProductCode)
[ -n "$version0" ] && [ -n "$code0" ] || {
	echo "Bail out! no ProductVersion/ProductCode in $msi"
	exit 1
}
updir=$(mktemp -d /tmp/signwatch-upgrade.XXXXXX)
upmsi=${2:-}
if [ -z "$upmsi" ]; then
	# The next version: major.minor.(build + 1).
	upver=$(echo "$version0" | awk -F . '{printf "%d.%d.%d", $1, $2, $3 + 1}')
	msiextract -C "$updir/x" "$msi" >/dev/null 2>&1
	upexe=$(find "$updir/x" -name signwatch.exe | head -1)
	upmsi=$( [ -n "$upexe" ] && SW_MSI_VERSION=$upver SIGNWATCH_EXE=$upexe bash "$here/make-msi.sh" "$updir" "$updir" 2>"$updir/make-msi.err" | tail -1)
	[ -n "$upmsi" ] && [ -f "$upmsi" ] || {
		echo "Bail out! could not build the upgrade MSI ($upver) from $msi: $(tail -5 "$updir/make-msi.err" 2>/dev/null)"
		rm -rf "$updir"
		exit 1
	}
fi
[ -f "$upmsi" ] || {
	echo "Bail out! no upgrade MSI $upmsi"
	rm -rf "$updir"
	exit 1
}
upmsi=$(cd "$(dirname "$upmsi")" && pwd)/$(basename "$upmsi")
upver=$(msi_property "$upmsi" ProductVersion)
code1=$(msi_property "$upmsi" ProductCode)
[ -n "$code1" ] && [ "$code1" != "$code0" ] &&
	[ "$(msi_property "$upmsi" UpgradeCode | tr a-z A-Z)" = "$(msi_property "$msi" UpgradeCode | tr a-z A-Z)" ] || {
	echo "Bail out! $upmsi ($upver, $code1) is not a major upgrade of $msi ($version0, $code0)"
	rm -rf "$updir"
	exit 1
}

WINEPREFIX=$(mktemp -d /tmp/signwatch-wine.XXXXXX)
export WINEPREFIX WINEDEBUG=-all WINEDLLOVERRIDES="mscoree=;mshtml="

n=0
fails=0
ok() {
	n=$((n + 1))
	echo "ok $n - $1"
}
not_ok() {
	n=$((n + 1))
	fails=$((fails + 1))
	echo "not ok $n - $1"
	[ $# -gt 1 ] && printf '%s\n' "$2" | sed 's/^/#   /'
	return 0
}
check() { # check DESCRIPTION COMMAND...
	local d=$1
	shift
	local out
	if out=$("$@" 2>&1); then ok "$d"; else not_ok "$d" "$out"; fi
}
note() { echo "# $*"; }

cleanup() {
	wineserver -k >/dev/null 2>&1
	wineserver -w >/dev/null 2>&1
	if [ "${SW_WINE_KEEP:-}" = 1 ]; then
		note "prefix kept: $WINEPREFIX, upgrade MSI folder: $updir"
	else
		rm -rf "$WINEPREFIX" "$updir"
	fi
}
trap cleanup EXIT

drive=$WINEPREFIX/drive_c
data=$drive/ProgramData/signwatch
yaml=$data/signwatch.yaml
records=$data/logs/records.jsonl
winmsi=$(winepath -w "$msi" 2>/dev/null)
winup=$(winepath -w "$upmsi" 2>/dev/null)

nlog=0
# run_msiexec ARGS...: run it with a verbose log; rc is its exit code. A
# failure quotes the log's failed actions and what the custom actions
# (signwatch.exe) printed.
run_msiexec() {
	nlog=$((nlog + 1))
	local log=$drive/msi-$nlog.log
	wine msiexec "$@" /l*v "C:\\msi-$nlog.log" >"$WINEPREFIX/msiexec-$nlog.out" 2>&1
	rc=$?
	if [ $rc -ne 0 ]; then
		note "msiexec $* -> exit $rc; from C:\\msi-$nlog.log and its output:"
		{
			grep -a -E 'Return value [03]\.' "$log" | grep -v MigrateFeatureStates
			grep -a '^signwatch' "$WINEPREFIX/msiexec-$nlog.out"
		} 2>/dev/null | head -20 | sed 's/^/#   /'
		wine sc query signwatch 2>/dev/null | tr -d '\r' | grep -E 'STATE|EXIT_CODE' | sed 's/^/#   /'
	fi
	return 0
}
# The services.exe processes of this prefix (there must be one).
managers() {
	local p n=0
	for p in /proc/[0-9]*; do
		{ tr '\0' '\n' <"$p/cmdline"; } 2>/dev/null | head -1 | grep -qi 'services\.exe$' || continue
		{ tr '\0' '\n' <"$p/environ"; } 2>/dev/null | grep -qxF "WINEPREFIX=$WINEPREFIX" && n=$((n + 1))
	done
	echo $n
}

# wait_running SECONDS: the service reaches RUNNING ($state: the last state).
wait_running() {
	local i
	state=
	for i in $(seq 1 "$1"); do
		state=$(wine sc query signwatch 2>/dev/null | tr -d '\r' | awk '/STATE/ {print $4}')
		[ "$state" = RUNNING ] && return 0
		sleep 1
	done
	return 1
}
# service_config: the service is automatic, LocalSystem, runs the installed
# exe with the default configuration ($qc: its key, $img: its ImagePath).
# wine's sc has no `qc`: the service's registry key holds the same.
service_config() {
	qc=$(wine reg query 'HKLM\System\CurrentControlSet\Services\signwatch' 2>/dev/null | tr -d '\r')
	img=$(echo "$qc" | awk '$1 == "ImagePath" {sub(/^[ \t]*ImagePath[ \t]+REG_[A-Z_]+[ \t]+/, ""); print}')
	echo "$qc" | grep -Eq 'Start[[:space:]]+REG_DWORD[[:space:]]+0x2$' &&
		echo "$qc" | grep -Eq 'ObjectName[[:space:]]+REG_SZ[[:space:]]+LocalSystem$' &&
		echo "$img" | grep -qF 'C:\Program Files\signwatch\signwatch.exe' &&
		echo "$img" | grep -qF -e 'signwatch.exe" run --config "C:\ProgramData\signwatch\signwatch.yaml"' -e 'signwatch.exe run --config "C:\ProgramData\signwatch\signwatch.yaml"'
}
# products: the installed products named signwatch, from the Uninstall
# key ("{PRODUCT-CODE} VERSION", one a line).
unkey='HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall'
products() {
	local k q
	wine reg query "$unkey" 2>/dev/null | tr -d '\r' | grep -E '\\\{[0-9A-Fa-f-]+\}$' | while read -r k; do
		q=$(wine reg query "$k" 2>/dev/null | tr -d '\r')
		echo "$q" | grep -Eq 'DisplayName[[:space:]]+REG_SZ[[:space:]]+signwatch$' || continue
		echo "${k##*\\} $(echo "$q" | awk '$1 == "DisplayVersion" {print $3}')" | tr a-f A-F
	done
}
# wait_record NAME: a record of the file NAME is in records.jsonl (60 s).
wait_record() {
	local i
	for i in $(seq 1 60); do
		grep -q "\"FileName\":\"$1\"" "$records" 2>/dev/null && return 0
		sleep 1
	done
	return 1
}

evkey='HKLM\System\CurrentControlSet\Services\EventLog\Application\signwatch'
# event_source EXE: the event source's registration names EXE as its
# message file and supports error, warning and information (7).
event_source() {
	local q
	q=$(wine reg query "$evkey" 2>/dev/null | tr -d '\r')
	echo "$q" | grep -Eq "EventMessageFile[[:space:]]+REG_(EXPAND_)?SZ[[:space:]]+$(printf '%s' "$1" | sed 's/[][\\.*^$]/\\&/g')\$" &&
		echo "$q" | grep -Eq 'TypesSupported[[:space:]]+REG_DWORD[[:space:]]+0x7$' || {
		echo "$q"
		return 1
	}
}
# pe_resources EXE: the message table's entries ("message ID TEXT") and
# the version resource's strings ("version KEY=VALUE"), read from the PE
# file itself.
pe_resources() {
	python3 - "$1" <<'EOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
pe = struct.unpack_from("<I", b, 0x3C)[0]
nsec, optsz = struct.unpack_from("<H", b, pe + 6)[0], struct.unpack_from("<H", b, pe + 20)[0]
opt = pe + 24
rsrc_rva = struct.unpack_from("<I", b, opt + 112 + 2 * 8)[0]  # PE32+, data directory 2
secs = [struct.unpack_from("<8sIIII", b, opt + optsz + 40 * i) for i in range(nsec)]
def off(rva):
    for _, vs, va, rs, rp in secs:
        if va <= rva < va + max(vs, rs):
            return rva - va + rp
    sys.exit("rva %#x outside the sections" % rva)
base = off(rsrc_rva)
def entries(d):
    named, ids = struct.unpack_from("<HH", b, base + d + 12)
    for i in range(named + ids):
        yield struct.unpack_from("<II", b, base + d + 16 + 8 * i)
def leaves(d):
    for _, to in entries(d):
        if to & 0x80000000:
            yield from leaves(to & 0x7FFFFFFF)
        else:
            rva, size = struct.unpack_from("<II", b, base + to)
            yield b[off(rva):off(rva) + size]
def version(data, o, end):
    while o + 6 <= end:
        ln, vl, ty = struct.unpack_from("<HHH", data, o)
        if not ln:
            break
        k = e = o + 6
        while data[e:e + 2] != b"\0\0":
            e += 2
        key = data[k:e].decode("utf-16-le")
        v = (e + 2 + 3) & ~3
        if ty == 1 and vl:
            print("version %s=%s" % (key, data[v:v + 2 * vl].decode("utf-16-le").rstrip("\0")))
        c = (v + (2 * vl if ty == 1 else vl) + 3) & ~3
        if key in ("VS_VERSION_INFO", "StringFileInfo") or (len(key) == 8 and key.startswith("04")):
            version(data, c, o + ln)
        o = (o + ln + 3) & ~3
for rtype, to in entries(0):
    for data in leaves(to & 0x7FFFFFFF):
        if rtype == 11:  # RT_MESSAGETABLE: blocks of ids, then (length, flags, text) entries
            for k in range(struct.unpack_from("<I", data)[0]):
                lo, hi, eo = struct.unpack_from("<III", data, 4 + 12 * k)
                for mid in range(lo, hi + 1):
                    ln, fl = struct.unpack_from("<HH", data, eo)
                    t = data[eo + 4:eo + ln].decode("utf-16-le" if fl & 1 else "cp1252")
                    print("message %#010x %s" % (mid, t.rstrip("\0").strip()))
                    eo += ln
        elif rtype == 16:  # RT_VERSION
            version(data, 0, len(data))
EOF
}

note "msi: $msi"
note "prefix: $WINEPREFIX ($(wine --version))"
wineserver -p # persistent: the services outlive each wine command
# The first command creates the prefix (see the top: not `wineboot -i`).
wineboot -u >/dev/null 2>&1
mkdir -p "$drive/swroot"
# The logs_ingestion output's secret, by name (CLIENT_SECRET_ENV): a machine
# environment variable, which services get from the service manager's
# environment, read at boot (docs/DEPLOY.md). Without it the service
# refuses to start (the variable is not set) and the install fails, as it
# should. So: set it, then restart wine ("reboot").
wine reg add 'HKLM\System\CurrentControlSet\Control\Session Manager\Environment' /v SIGNWATCH_TEST_SECRET \
	/t REG_SZ /d not-a-real-secret /f >/dev/null 2>&1
wineserver -k >/dev/null 2>&1
wineserver -w
wineserver -p
wine sc query >/dev/null 2>&1 # boots: services.exe up before the install
m=$(managers)
[ "$m" = 1 ] && ok "one service manager (services.exe) in the prefix" ||
	not_ok "one service manager (services.exe) in the prefix" "$m running"

props=(ROOTS='C:\swroot'
	LOGS_INGESTION_ENDPOINT=https://signwatch-dce.westeurope-1.ingest.monitor.azure.com
	DCR_ID=dcr-0123456789abcdef0123456789abcdef STREAM=Custom-SignwatchCertificateInfo_CL
	TENANT_ID=72f988bf-86f1-41af-91ab-2d7cd011db47 CLIENT_ID=11111111-2222-3333-4444-555555555555
	CLIENT_SECRET_ENV=SIGNWATCH_TEST_SECRET
	SYSLOG_HOST=127.0.0.1 SYSLOG_PORT=6514 HTTPS_URL=https://127.0.0.1:9/signwatch)

# 1. install
run_msiexec /i "$winmsi" /qn "${props[@]}"
# wine passes a Windows exit code to the shell modulo 256: 1627 is 91.
if [ $rc -eq 1627 ] || [ $rc -eq $((1627 % 256)) ]; then
	note "first msiexec /i failed with 1627 (ERROR_FUNCTION_FAILED; wine, fresh prefix): retrying once"
	for _ in $(seq 1 30); do # the rollback deleted the service
		wine sc query signwatch 2>/dev/null | grep -q STATE || break
		sleep 1
	done
	run_msiexec /i "$winmsi" /qn "${props[@]}"
fi
[ $rc -eq 0 ] && ok "msiexec /i /qn with properties (exit 0)" || not_ok "msiexec /i /qn with properties" "exit $rc"

exe=$drive/Program\ Files/signwatch/signwatch.exe
[ -f "$exe" ] && [ -f "$data/rules/Pulseway_filesig.yaml" ] && [ -f "$drive/Program Files/signwatch/yara/pulseway.yar" ] &&
	ok "binary in Program Files\\signwatch, rule pack in ProgramData\\signwatch\\rules, YARA rules" ||
	not_ok "files installed" "$(ls -R "$drive/Program Files/signwatch" "$data" 2>&1 | head -20)"

# 2. RUNNING
wait_running 60 && ok "service signwatch is RUNNING" ||
	not_ok "service signwatch is RUNNING" "state: ${state:-none}; $(wine sc query signwatch 2>&1 | tr -d '\r')"
service_config && ok "service: automatic start, LocalSystem, run --config %ProgramData%\\signwatch\\signwatch.yaml" ||
	not_ok "service configuration" "$qc"
case $img in
'"'*) ;;
*) note "ImagePath is not quoted ($img): wine's msi does not quote it, Windows Installer does" ;;
esac
# The recovery actions SwSetRecovery wrote (apply_recovery in
# platform/windows/service_windows.c): FailureActions, REG_BINARY
# SERVICE_FAILURE_ACTIONS as Windows stores it: reset period, two 32-bit
# pointer slots, the count, a pointer slot, then (type, delay) pairs:
# reset after a day (86400 s), SC_ACTION_RESTART (1) after 30000 ms three
# times, then SC_ACTION_NONE (0).
fa=$(wine reg query 'HKLM\SYSTEM\CurrentControlSet\Services\signwatch' /v FailureActions 2>/dev/null | tr -d '\r' |
	awk '$1 == "FailureActions" {print $3}')
if [ -z "$fa" ]; then
	ok "MSI: FailureActions: reset 86400 s, three restarts after 30000 ms # SKIP wine's service manager stores no FailureActions"
else
	out=$(python3 - "$fa" <<'EOF'
import struct, sys
b = bytes.fromhex(sys.argv[1])
reset, _, _, n, _ = struct.unpack_from("<5I", b)
acts = [struct.unpack_from("<II", b, 20 + 8 * i) for i in range(n)]
print("reset %d actions %s" % (reset, acts))
sys.exit(0 if reset == 86400 and acts == [(1, 30000)] * 3 + [(0, 0)] else 1)
EOF
	) && ok "MSI: FailureActions: reset 86400 s, three restarts after 30000 ms, then none" ||
		not_ok "MSI: FailureActions: reset 86400 s, three restarts after 30000 ms, then none" "$fa: $out"
fi

# The event log: the MSI registered the source with signwatch.exe as its
# message file, and the exe holds the table and a version resource.
winexe='C:\Program Files\signwatch\signwatch.exe'
out=$(event_source "$winexe") && ok "MSI: event source signwatch, EventMessageFile = signwatch.exe, TypesSupported 7" ||
	not_ok "MSI: event source registered" "$out"
res=$(pe_resources "$exe" 2>&1)
echo "$res" | grep -qx 'message 0x40000001 %1' && echo "$res" | grep -qx 'message 0x80000002 %1' &&
	echo "$res" | grep -qx 'message 0xc0000003 %1' &&
	ok "signwatch.exe has the message table (ids 1, 2, 3: information, warning, error; \"%1\")" ||
	not_ok "signwatch.exe has the message table" "$res"
version=$(sed -n "s/^[[:space:]]*version[[:space:]]*:[[:space:]]*'\([0-9][0-9.]*\)'.*/\1/p" "$src/meson.build" | head -1)
echo "$res" | grep -qx "version FileVersion=$version" && echo "$res" | grep -qx "version ProductVersion=$version" &&
	echo "$res" | grep -qx 'version CompanyName=signwatch' && echo "$res" | grep -q '^version FileDescription=.' &&
	ok "signwatch.exe has a version resource ($version, CompanyName signwatch)" ||
	not_ok "signwatch.exe has a version resource ($version)" "$res"

# 3. the configuration
missing=
for want in "roots: ['C:\\swroot']" "endpoint: 'https://signwatch-dce.westeurope-1.ingest.monitor.azure.com'" \
	"dcr_id: 'dcr-0123456789abcdef0123456789abcdef'" "stream: 'Custom-SignwatchCertificateInfo_CL'" \
	"tenant_id: '72f988bf-86f1-41af-91ab-2d7cd011db47'" "client_id: '11111111-2222-3333-4444-555555555555'" \
	"client_secret_env: 'SIGNWATCH_TEST_SECRET'" "host: '127.0.0.1'" "port: 6514" \
	"url: 'https://127.0.0.1:9/signwatch'"; do
	grep -qF "$want" "$yaml" 2>/dev/null || missing="$missing
missing: $want"
done
[ -z "$missing" ] && ok "signwatch.yaml holds the properties" || not_ok "signwatch.yaml holds the properties" "$missing
$(cat "$yaml" 2>&1)"
grep -q 'not-a-real-secret' "$yaml" && not_ok "the secret itself is not in signwatch.yaml" || ok "the secret itself is not in signwatch.yaml"
check "signwatch run --check-config accepts it" wine "$exe" run --check-config

# 4. a signed PE dropped into a folder created after the start
sleep 2
mkdir -p "$drive/swroot/dropped"
sleep 1
cp "$fixture" "$drive/swroot/dropped/pulse-setup.exe"
wait_record pulse-setup.exe && ok "the dropped PE is recorded in $(basename "$records")" ||
	not_ok "the dropped PE is recorded" "$(tail -c 2000 "$records" 2>&1)"
grep '"FileName":"pulse-setup.exe"' "$records" 2>/dev/null | head -1 | grep -q '"Signer":"MMSoft Design' &&
	ok "its record names the signer MMSoft Design" || not_ok "its record names the signer MMSoft Design" "$(grep pulse-setup "$records" | head -c 1500)"
sum=$(wine "$exe" summary --db 'C:\ProgramData\signwatch\signwatch.db' --json 2>&1 | tr -d '\r')
echo "$sum" | grep -q 'Pulseway' && ok "summary --db shows the Pulseway rule's row" || not_ok "summary --db shows the Pulseway rule's row" "$sum"

# 4b. the major upgrade, as Intune or GPO deploys a new version: the
# running 0.1.0 (installed with properties, one file recorded) is upgraded
# by `msiexec /i` of the next version WITHOUT properties. RemoveExistingProducts
# removes the old product first (signwatch.wxs), so its uninstall (stop
# and delete the service, remove the event source and the files) is over
# before the new version installs them again; SwRemoveData and the
# configuration's rewrite must not run.
# wine cannot show where RemoveExistingProducts runs (see the top), so the
# table says it: after InstallInitialize, before ProcessComponents.
seqs=$(msiinfo export "$upmsi" InstallExecuteSequence 2>&1 | tr -d '\r')
seq_of() { echo "$seqs" | awk -F '\t' -v a="$1" '$1 == a {print $3}'; }
s_init=$(seq_of InstallInitialize) s_rep=$(seq_of RemoveExistingProducts) s_pc=$(seq_of ProcessComponents)
[ -n "$s_rep" ] && [ "$(echo "$seqs" | grep -c '^RemoveExistingProducts')" = 1 ] &&
	[ "$s_init" -lt "$s_rep" ] && [ "$s_rep" -lt "$s_pc" ] &&
	ok "$(basename "$upmsi"): RemoveExistingProducts ($s_rep) right after InstallInitialize ($s_init), before ProcessComponents ($s_pc)" ||
	not_ok "$(basename "$upmsi"): RemoveExistingProducts after InstallInitialize, before ProcessComponents" "$seqs"
p0=$(products)
[ "$p0" = "$code0 $version0" ] && ok "installed: one product, $code0 $version0" ||
	not_ok "installed: one product, $code0 $version0" "${p0:-none}"
yaml0=$(md5sum <"$yaml" 2>&1)
db0=$(wine "$exe" summary --db 'C:\ProgramData\signwatch\signwatch.db' --json 2>/dev/null | tr -d '\r')
rec0=$(grep -c '"FileName":"pulse-setup.exe"' "$records" 2>/dev/null)
run_msiexec /i "$winup" /qn
uplog=$drive/msi-$nlog.log
upout=$WINEPREFIX/msiexec-$nlog.out
[ $rc -eq 0 ] && ok "major upgrade: msiexec /i $(basename "$upmsi") /qn without properties (exit 0)" ||
	not_ok "major upgrade: msiexec /i $(basename "$upmsi") /qn without properties" "exit $rc"
p1=$(products)
[ "$p1" = "$code1 $upver" ] && ok "upgraded: one product, $code1 $upver (the old one is gone)" ||
	not_ok "upgraded: one product, $code1 $upver" "${p1:-none}"
# msiexec /x of the old code: ERROR_UNKNOWN_PRODUCT (1605; the shell sees
# it modulo 256).
wine msiexec /x "$code0" /qn >/dev/null 2>&1
rc=$?
[ $rc -eq 1605 ] || [ $rc -eq $((1605 % 256)) ] && ok "msiexec /x $code0 (the old version): not installed (1605)" ||
	not_ok "msiexec /x $code0 (the old version): not installed (1605)" "exit $rc"
wait_running 60 && ok "upgraded: service signwatch is RUNNING" ||
	not_ok "upgraded: service signwatch is RUNNING" "state: ${state:-none}; $(wine sc query signwatch 2>&1 | tr -d '\r')"
service_config && ok "upgraded: service automatic, LocalSystem, ImagePath the installed exe, run --config the default configuration" ||
	not_ok "upgraded: service configuration" "$qc"
[ -f "$exe" ] && [ -f "$data/rules/Pulseway_filesig.yaml" ] && [ -f "$drive/Program Files/signwatch/yara/pulseway.yar" ] &&
	ok "upgraded: binary, rule pack and YARA rules in place" ||
	not_ok "upgraded: files in place" "$(ls -R "$drive/Program Files/signwatch" "$data" 2>&1 | head -20)"
[ "$(md5sum <"$yaml" 2>&1)" = "$yaml0" ] && [ ! -e "$yaml.bak" ] &&
	ok "upgraded: signwatch.yaml unchanged (same bytes, no .bak)" ||
	not_ok "upgraded: signwatch.yaml unchanged" "$(ls -la "$data" 2>&1; cat "$yaml" 2>&1)"
! grep -a -q 'remove-data' "$upout" && ok "upgraded: SwRemoveData did not run" ||
	not_ok "upgraded: SwRemoveData did not run" "$(cat "$upout")"
db1=$(wine "$exe" summary --db 'C:\ProgramData\signwatch\signwatch.db' --json 2>/dev/null | tr -d '\r')
echo "$db1" | grep -q 'Pulseway' && [ "$db1" = "$db0" ] &&
	ok "upgraded: the store is kept (summary --db: the same rows, the Pulseway match)" ||
	not_ok "upgraded: the store is kept" "before: $db0
after: $db1"
[ "$(grep -c '"FileName":"pulse-setup.exe"' "$records" 2>/dev/null)" = "$rec0" ] && [ "$rec0" -ge 1 ] &&
	ok "upgraded: the earlier record is kept in $(basename "$records")" ||
	not_ok "upgraded: the earlier record is kept" "$rec0 before, $(grep -c pulse-setup.exe "$records" 2>&1) after"
out=$(event_source "$winexe") && ok "upgraded: event source signwatch, EventMessageFile = signwatch.exe, TypesSupported 7" ||
	not_ok "upgraded: event source registered" "$out"
sleep 2
mkdir -p "$drive/swroot/after-upgrade"
sleep 1
cp "$fixture" "$drive/swroot/after-upgrade/pulse-upgraded.exe"
wait_record pulse-upgraded.exe && ok "upgraded: a PE dropped into a new folder is recorded" ||
	not_ok "upgraded: a PE dropped into a new folder is recorded" "$(tail -c 2000 "$records" 2>&1)"

# 4c. `signwatch service reload` (SERVICE_CONTROL_PARAMCHANGE): a root
# added to the configuration is walked and watched after the reload, as
# SIGHUP does elsewhere. The configuration is put back afterwards.
cp "$yaml" "$WINEPREFIX/yaml.saved"
mkdir -p "$drive/swroot2"
cp "$fixture" "$drive/swroot2/pulse-reload.exe"
python3 - "$yaml" <<'EOF'
import sys
p = sys.argv[1]
s = open(p, newline="").read()
open(p, "w", newline="").write(s.replace("roots: ['C:\\swroot']", "roots: ['C:\\swroot', 'C:\\swroot2']"))
EOF
grep -qF "roots: ['C:\swroot', 'C:\swroot2']" "$yaml" && ok "reload: C:\\swroot2 added to the configuration's roots" ||
	not_ok "reload: C:\\swroot2 added to the configuration's roots" "$(grep roots "$yaml")"
sleep 3
! grep -q '"FileName":"pulse-reload.exe"' "$records" 2>/dev/null && ok "reload: before it, a PE in C:\\swroot2 is not recorded" ||
	not_ok "reload: before it, a PE in C:\\swroot2 is not recorded"
out=$(wine "$exe" service reload 2>&1 | tr -d '\r')
rc=$?
[ $rc -eq 0 ] && echo "$out" | grep -q '^signwatch service reload: done' && ok "signwatch service reload (exit 0)" ||
	not_ok "signwatch service reload" "exit $rc: $out"
if wait_record pulse-reload.exe; then
	ok "reload: the PE in the newly configured root C:\\swroot2 is recorded"
	sleep 2
	mkdir -p "$drive/swroot2/later"
	sleep 1
	cp "$fixture" "$drive/swroot2/later/pulse-reload-watched.exe"
	wait_record pulse-reload-watched.exe && ok "reload: C:\\swroot2 is watched (a PE dropped into a new folder there is recorded)" ||
		not_ok "reload: C:\\swroot2 is watched" "$(tail -c 2000 "$records" 2>&1)"
else
	note "no record from C:\\swroot2 after service reload: did wine deliver SERVICE_CONTROL_PARAMCHANGE?"
	not_ok "reload: the PE in the newly configured root C:\\swroot2 is recorded" "$(tail -c 2000 "$records" 2>&1)"
fi
wait_running 5 && ok "reload: the service is still RUNNING" || not_ok "reload: the service is still RUNNING" "state ${state:-none}"
cp "$WINEPREFIX/yaml.saved" "$yaml"
check "reload: back to the installed configuration (service reload)" wine "$exe" service reload
# The old MSI again (a stale assignment): refused, the new version stays.
note "the next msiexec (the older version) must fail: its LaunchCondition refuses a downgrade"
run_msiexec /i "$winmsi" /qn
[ $rc -eq 1603 ] || [ $rc -eq $((1603 % 256)) ] && ok "downgrade: msiexec /i $(basename "$msi") is refused (1603)" ||
	not_ok "downgrade: msiexec /i $(basename "$msi") is refused (1603)" "exit $rc"
p1=$(products)
wait_running 10 && [ "$p1" = "$code1 $upver" ] && ok "downgrade refused: still $code1 $upver, the service RUNNING" ||
	not_ok "downgrade refused: still $code1 $upver, the service RUNNING" "${p1:-no product}; state ${state:-none}"

# 5. net stop
out=$(wine net stop signwatch 2>&1 | tr -d '\r')
rc=$?
state=$(wine sc query signwatch 2>/dev/null | tr -d '\r' | awk '/STATE/ {print $4}')
[ $rc -eq 0 ] && [ "$state" = STOPPED ] && ok "net stop signwatch: STOPPED" || not_ok "net stop signwatch" "exit $rc, state ${state:-none}: $out"
ec=$(wine sc query signwatch 2>/dev/null | tr -d '\r' | awk '/WIN32_EXIT_CODE/ {print $3}')
[ "$ec" = 0 ] && ok "stopped cleanly (exit code 0)" || not_ok "stopped cleanly" "WIN32_EXIT_CODE ${ec:-?}"
check "signwatch service start (waits for RUNNING)" wine "$exe" service start --timeout 60
check "signwatch service stop (waits for STOPPED)" wine "$exe" service stop --timeout 60

# 5b. without the MSI: `service uninstall` removes the service and the
# event source; `service install` registers both (the exe as the message
# file), locks the data folder down, and `service start` right after works.
check "signwatch service uninstall" wine "$exe" service uninstall --timeout 60
q=$(wine reg query "$evkey" 2>&1 | tr -d '\r')
wine sc query signwatch 2>/dev/null | grep -q STATE && not_ok "service uninstall removes the service" ||
	ok "service uninstall removes the service"
echo "$q" | grep -q EventMessageFile && not_ok "service uninstall removes the event source" "$q" ||
	ok "service uninstall removes the event source"
# +advapi shows the call that sets the folder's DACL; wine keeps no ACL on
# disk to read back (it maps a DACL to mode bits only), so the call and
# its flags are what is checked, not the DACL itself.
WINEDEBUG=trace+advapi wine "$exe" service install >"$WINEPREFIX/install.out" 2>&1
rc=$?
tr -d '\r' <"$WINEPREFIX/install.out" | grep -q '^signwatch service install: done' && [ $rc -eq 0 ] &&
	ok "signwatch service install (exit 0)" || not_ok "signwatch service install" "exit $rc; $(grep -v ':trace:' "$WINEPREFIX/install.out")"
out=$(event_source "$winexe") && ok "service install: event source signwatch, EventMessageFile = signwatch.exe, TypesSupported 7" ||
	not_ok "service install: event source registered" "$out"
acl=$(grep -a 'trace:advapi:SetNamedSecurityInfoW' "$WINEPREFIX/install.out" | tr -d '\r')
# SE_FILE_OBJECT (1), DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION
# (0x80000004, printed signed), no owner, no group, a DACL, no SACL.
echo "$acl" | grep -Eq 'SetNamedSecurityInfoW L"C:\\\\ProgramData\\\\signwatch" 1 -2147483644 0+ 0+ 0*[1-9A-F][0-9A-F]* 0+$' &&
	ok "service install sets a protected DACL on C:\\ProgramData\\signwatch" ||
	not_ok "service install sets a protected DACL on C:\\ProgramData\\signwatch" "${acl:-no SetNamedSecurityInfoW call}"
qc=$(wine reg query 'HKLM\System\CurrentControlSet\Services\signwatch' 2>/dev/null | tr -d '\r')
echo "$qc" | grep -Eq 'ImagePath[[:space:]]+REG_(EXPAND_)?SZ[[:space:]]+"C:\\Program Files\\signwatch\\signwatch\.exe" run --config "C:\\ProgramData\\signwatch\\signwatch\.yaml"$' &&
	ok "service install: quoted ImagePath, run --config the default configuration" || not_ok "service install: ImagePath" "$qc"
check "signwatch service start right after install (waits for RUNNING)" wine "$exe" service start --timeout 60
check "signwatch service stop (waits for STOPPED)" wine "$exe" service stop --timeout 60

# 6. an upgrade-style reinstall without properties keeps the configuration
before=$(md5sum <"$yaml")
wine "$exe" service configure >/dev/null 2>&1
[ "$(md5sum <"$yaml")" = "$before" ] && ok "service configure without properties keeps signwatch.yaml" ||
	not_ok "service configure without properties keeps signwatch.yaml"

# 7. uninstall (the upgraded version)
run_msiexec /x "$winup" /qn
out=$WINEPREFIX/msiexec-$nlog.out
[ $rc -eq 0 ] && ok "msiexec /x $(basename "$upmsi") /qn (exit 0)" || not_ok "msiexec /x $(basename "$upmsi") /qn" "exit $rc"
p2=$(products)
[ -z "$p2" ] && ok "no signwatch product is installed" || not_ok "no signwatch product is installed" "$p2"
q=$(wine sc query signwatch 2>&1 | tr -d '\r')
echo "$q" | grep -q 'STATE' && not_ok "the service is removed" "$q" || ok "the service is removed"
[ ! -e "$exe" ] && ok "signwatch.exe is removed" || not_ok "signwatch.exe is removed"
q=$(wine reg query "$evkey" 2>&1 | tr -d '\r')
echo "$q" | grep -q -e EventMessageFile -e TypesSupported && not_ok "the event source is removed" "$q" ||
	ok "the event source is removed"
[ -f "$data/signwatch.db" ] && [ -f "$yaml" ] && ! grep -q 'remove-data' "$out" &&
	ok "the store and the configuration are kept (no REMOVE_DATA: SwRemoveData did not run)" ||
	not_ok "the store and the configuration are kept" "$(ls -la "$data" 2>&1; cat "$out")"

# 8. REMOVE_DATA=1
run_msiexec /i "$winmsi" /qn
[ $rc -eq 0 ] && grep -qF "roots: ['C:\\swroot']" "$yaml" && ok "reinstall without properties (exit 0) keeps the configuration" ||
	not_ok "reinstall without properties keeps the configuration" "exit $rc; $(head -20 "$yaml" 2>&1)"
wait_running 30 # the store is in use until the service runs and is stopped again
run_msiexec /x "$winmsi" /qn REMOVE_DATA=1
out=$WINEPREFIX/msiexec-$nlog.out
# SwRemoveData (signwatch.exe service remove-data) runs deferred, after
# DeleteServices and before RemoveFiles, and says what it removed.
tr -d '\r' <"$out" | grep -q 'remove-data: removed .*signwatch\.db$' &&
	tr -d '\r' <"$out" | grep -q 'remove-data: removed .*signwatch\.yaml$' &&
	ok "REMOVE_DATA=1: SwRemoveData ran (service remove-data)" || not_ok "REMOVE_DATA=1: SwRemoveData ran" "$(cat "$out")"
left=$(cd "$data" 2>/dev/null && find . -mindepth 1 | head -20)
[ $rc -eq 0 ] && [ ! -e "$data/signwatch.db" ] && [ ! -e "$yaml" ] && [ ! -e "$records" ] && [ -z "$left" ] &&
	ok "msiexec /x REMOVE_DATA=1 removes the store, the records and the configuration" ||
	not_ok "msiexec /x REMOVE_DATA=1 removes the data" "exit $rc; left in ProgramData\\signwatch: $left"

echo "1..$n"
[ $fails -eq 0 ]
