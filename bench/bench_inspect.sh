#!/usr/bin/env bash
# bench_inspect.sh - side-by-side benchmark of `signwatch inspect` against
# peers doing the same job (openssl dgst, osslsigncode verify, yara), in one
# run over the same files. Prints medians and ratios only: the machine is
# shared and noisy, so absolute times mean little and nothing is asserted.
#
# Usage: bench/bench_inspect.sh [--quick]
#   --quick   small sizes (64 MiB / 256 MiB, fewer files and runs) to try it out
#
# Environment (all optional):
#   SIGNWATCH=/path/to/signwatch   default /tmp/bench-build/signwatch (build it:
#       meson setup /tmp/bench-build --buildtype=release && ninja -C /tmp/bench-build signwatch)
#   BENCH_DIR=DIR     work dir (default: a fresh mktemp dir, removed at the end)
#   BENCH_KEEP=1      keep the work dir (and reuse the big signed files in it next time)
#   BENCH_CORE=0      the core for the one-core runs; BENCH_CORES2=0,1 for the two-core run
#   BENCH_MID_MIB=256 BENCH_BIG_MIB=1024  large-file sizes
#   BENCH_SIGNER_N=2000 BENCH_SMALL_N=5000  file counts
#   BENCH_REPS_BIG=5 BENCH_REPS=7         repetitions (plus one warm-up run each)
#
# Exit status: 0, or 3 when a peer tool was missing (it is named and skipped),
# or 2 when the benchmark cannot run at all (no signwatch, python3, ...).

set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
LIB="$HERE/lib.py"
FIX="$ROOT/tests/fixtures"
PKI="$FIX/pki"
CORPUS="${BENCH_CORPUS:-/work/shared/corpus}"
SW="${SIGNWATCH:-/tmp/bench-build/signwatch}"
ROOTS="$PKI/roots.pem"

MID_MIB="${BENCH_MID_MIB:-256}"
BIG_MIB="${BENCH_BIG_MIB:-1024}"
SIGNER_N="${BENCH_SIGNER_N:-2000}"
SMALL_N="${BENCH_SMALL_N:-5000}"
REPS_BIG="${BENCH_REPS_BIG:-5}"
REPS="${BENCH_REPS:-7}"
CORE="${BENCH_CORE:-0}"
CORES2="${BENCH_CORES2:-0,1}"
if [ "${1:-}" = "--quick" ]; then
    MID_MIB=64 BIG_MIB=256 SIGNER_N=500 SMALL_N=1000 REPS_BIG=3 REPS=3
fi

export LC_ALL=C
MISSING=()
missing() { echo "  !! missing tool: $1 - skipping $2" >&2; MISSING+=("$1"); }
die() { echo "bench_inspect: $*" >&2; exit 2; }

command -v python3 >/dev/null || die "python3 is required"
command -v taskset >/dev/null || die "taskset (util-linux) is required for pinning"
[ -x "$SW" ] || die "no signwatch binary at $SW (build it: meson setup /tmp/bench-build --buildtype=release && ninja -C /tmp/bench-build signwatch)"
command -v osslsigncode >/dev/null || die "osslsigncode is required to sign the large test files"

HAVE_OPENSSL=1; command -v openssl >/dev/null || { HAVE_OPENSSL=0; missing openssl "the openssl dgst floor"; }
HAVE_YARA=1; command -v yara >/dev/null || { HAVE_YARA=0; missing yara "the yara peer of section 2"; }
TIMEBIN=/usr/bin/time; [ -x "$TIMEBIN" ] || { TIMEBIN=-; missing "/usr/bin/time (apt-get install -y time)" "GNU time; section 4 falls back to wait4 ru_maxrss, an upper bound"; }
NCPU="$(nproc 2>/dev/null || echo 1)"

if [ -n "${BENCH_DIR:-}" ]; then
    W="$BENCH_DIR"; mkdir -p "$W"
else
    W="$(mktemp -d /tmp/sw-bench.XXXXXX)"
fi
[ "${BENCH_KEEP:-0}" = 1 ] || trap 'rm -rf "$W"' EXIT
OUT="$W/results.json"
rm -f "$OUT" "$OUT.stderr.log"

pin() { echo "taskset -c $CORE $*"; }
run() { python3 "$LIB" run "$OUT" "$@"; }
ratio() { python3 "$LIB" ratio "$OUT" "$@"; }
rate() { python3 "$LIB" rate "$OUT" "$@"; }

T0=$SECONDS
echo "signwatch inspect benchmark  ($(date -u +%FT%TZ))"
echo "  binary:  $SW ($("$SW" --version 2>&1 | head -1))"
echo "  peers:   $(openssl version 2>/dev/null | head -1); osslsigncode $(osslsigncode --version 2>&1 | sed -n 's/^osslsigncode \([0-9.]*\).*/\1/p' | head -1); yara $(yara --version 2>/dev/null)"
echo "  cpu:     $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), $NCPU online; pinned to core $CORE"
echo "  workdir: $W   timing: interleaved rounds, median of N (+1 warm-up), wall and user+sys cpu"
echo "  note: every file is read once untimed first, so all timings are page-cache (warm) reads"

# ------------------------------------------------------------ test files
sign() { # in out
    osslsigncode sign -certs "$PKI/mmsoft-chain.pem" -key "$PKI/mmsoft.key" -h sha256 \
        -n "signwatch bench" -i "https://signwatch.test/" -in "$1" -out "$2" >"$W/sign.log" 2>&1 \
        || { cat "$W/sign.log" >&2; die "osslsigncode sign failed for $2"; }
}
mkbig() { # MiB out
    [ -s "$2" ] && return 0
    python3 "$LIB" mkpe "$1" "$W/unsigned.exe" || die "cannot write $W/unsigned.exe"
    sign "$W/unsigned.exe" "$2"
    rm -f "$W/unsigned.exe"
}
echo
echo "== preparing files"
MID="$W/big-${MID_MIB}m.exe"
BIG="$W/big-${BIG_MIB}m.exe"
mkbig "$MID_MIB" "$MID"
mkbig "$BIG_MIB" "$BIG"
echo "  $(basename "$MID"): $(stat -c %s "$MID") bytes; $(basename "$BIG"): $(stat -c %s "$BIG") bytes (one random .text section, signed sha256 by mmsoft)"

# Many names for few inodes: hard links (a copy when linking fails).
fill() { # dir count file...
    local dir="$1" n="$2"; shift 2
    rm -rf "$dir"; mkdir -p "$dir"
    local srcs=("$@") i=0
    while [ "$i" -lt "$n" ]; do
        local f="${srcs[$((i % ${#srcs[@]}))]}"
        local name; name="$(printf 'f%05d%s' "$i" "${f##*/}" | tr -c 'A-Za-z0-9._\n-' _)"
        ln "$f" "$dir/$name" 2>/dev/null || cp "$f" "$dir/$name"
        i=$((i + 1))
    done
}
SIGNED_FIX=()
for f in mmsoft-sha256-ts mmsoft-sha1 mmsoft-md5 mmsoft-sha384 mmsoft-sha512 contoso-sha256 \
         expired-ts expired-nots noeku selfsigned nested; do
    [ -f "$FIX/$f.exe" ] && SIGNED_FIX+=("$FIX/$f.exe")
done
CORPUS_PE=()
for f in conpty.dll fbx64.efi.signed fwupdx64.efi.signed signtool.exe snoretoast-x64.exe; do
    [ -f "$CORPUS/$f" ] && CORPUS_PE+=("$CORPUS/$f")
done
[ "${#SIGNED_FIX[@]}" -gt 0 ] || die "no signed fixtures in $FIX"
SIGNER_DIR="$W/signer"; SMALL_DIR="$W/small"
fill "$SIGNER_DIR" "$SIGNER_N" "${SIGNED_FIX[@]}" "${CORPUS_PE[@]}"
fill "$SMALL_DIR" "$SMALL_N" "${SIGNED_FIX[@]}"
echo "  signer/: $SIGNER_N names over ${#SIGNED_FIX[@]} signed fixtures + ${#CORPUS_PE[@]} corpus PEs ($(du -sb --count-links "$SIGNER_DIR" | cut -f1) bytes counted per name)"
echo "  small/:  $SMALL_N names over the ${#SIGNED_FIX[@]} signed fixtures (~20 KiB each)"
cat "$MID" "$BIG" "$SIGNER_DIR"/* "$SMALL_DIR"/* >/dev/null 2>&1   # warm the page cache

# ------------------------------------------------------------ sanity
echo
echo "== sanity (untimed)"
for f in "$MID" "$BIG"; do
    rec="$("$SW" inspect --json --ca-file "$ROOTS" "$f")"
    fl="$(python3 "$LIB" floor "$f")"
    want256="${fl%% *}"; rest="${fl#* }"; want1="${rest%% *}"
    ok=ok
    case "$rec" in *'"DigestMatches":true'*) ;; *) ok="DIGEST MISMATCH";; esac
    case "$rec" in *"\"SHA256\":\"$want256\""*) ;; *) ok="$ok; SHA256 differs from hashlib";; esac
    case "$rec" in *"\"SHA1\":\"$want1\""*) ;; *) ok="$ok; SHA1 differs from hashlib";; esac
    case "$rec" in *'"IsTrusted":true'*) ;; *) ok="$ok; not trusted";; esac
    echo "  $(basename "$f"): signwatch record: $ok"
done
if [ "$HAVE_OPENSSL" = 1 ]; then
    nl="$(openssl dgst -sha1 -sha256 "$MID" | wc -l)"
    if [ "$nl" -ge 2 ]; then
        DGST_BOTH=1; echo "  'openssl dgst -sha1 -sha256' prints $nl digests: using it as a one-process floor"
    else
        DGST_BOTH=0; echo "  'openssl dgst -sha1 -sha256' prints $nl digest (the last -digest wins): the CLI floor is one openssl run per digest"
    fi
fi

# ------------------------------------------------------------ 1. large files
echo
echo "== 1. large files, full verification, core $CORE"
echo "   signwatch = Authenticode SHA-256 + file SHA-1 + file SHA-256 (3 digests, one read) + PKCS#7/chain checks"
echo "   floor-cli = openssl dgst -sha256, -sha1, -sha256: 3 processes, 3 reads of the cached file: the same 3 digests"
echo "   floor-1read = python3 hashlib (same libcrypto), one read feeding sha256+sha1+sha256"
echo "   floor-2dg = openssl dgst -sha256 + -sha1 only (2 digests: what a tool sharing file/Authenticode SHA-256 would need)"
echo "   osslsigncode verify = Authenticode SHA-256 only (1 digest) + PKCS#7/chain checks"
for f in "$MID" "$BIG"; do
    tag="$(basename "$f" .exe)"
    reps="$REPS_BIG"; [ "$f" = "$MID" ] && reps="$REPS"
    echo "  -- $tag ($(( $(stat -c %s "$f") >> 20 )) MiB), $reps runs"
    cmds=("sw:$tag" "$(pin "$SW") inspect --json --ca-file $ROOTS $f"
          "floor-1read:$tag" "$(pin python3) $LIB floor $f"
          "osslsigncode:$tag" "$(pin osslsigncode) verify -ignore-crl -CAfile $ROOTS -in $f")
    if [ "$HAVE_OPENSSL" = 1 ]; then
        cmds+=("floor-cli:$tag" "$(pin openssl) dgst -sha256 $f; $(pin openssl) dgst -sha1 $f; $(pin openssl) dgst -sha256 $f"
               "floor-2dg:$tag" "$(pin openssl) dgst -sha256 $f; $(pin openssl) dgst -sha1 $f")
    fi
    run "$reps" 1 "${cmds[@]}"
    ratio "sw:$tag" "floor-cli:$tag" "signwatch / floor-cli   " "<=1.25"
    ratio "sw:$tag" "floor-1read:$tag" "signwatch / floor-1read "
    ratio "sw:$tag" "floor-2dg:$tag" "signwatch / floor-2dg   "
    ratio "sw:$tag" "osslsigncode:$tag" "signwatch / osslsigncode"
    python3 - "$OUT" "$tag" "$f" <<'EOF'
import json, statistics, sys, os
d = json.load(open(sys.argv[1])); tag = sys.argv[2]; mib = os.path.getsize(sys.argv[3]) / 2**20
for k in ("sw", "floor-cli", "floor-1read", "osslsigncode"):
    r = d.get(f"{k}:{tag}")
    if r:
        print(f"    {k:<13} {mib / statistics.median(r['wall']):8.0f} MiB/s of file")
EOF
done

# ------------------------------------------------------------ 2. signer only
echo
echo "== 2. signer only: $SIGNER_N files, one invocation each, core $CORE"
cmds=("sw-signer-only" "cd $SIGNER_DIR && $(pin "$SW") inspect --signer-only --json *")
if [ "$HAVE_YARA" = 1 ]; then
    printf 'import "pe"\nrule s { condition: pe.number_of_signatures > 0 and pe.signatures[0].subject contains "MMSoft" }\n' >"$W/s.yar"
    swm="$(cd "$SIGNER_DIR" && "$SW" inspect --signer-only --json * 2>/dev/null | grep '"SignatureIndex":0,' | grep -c '"Signer":"MMSoft')"
    ym="$(yara -r "$W/s.yar" "$SIGNER_DIR" 2>/dev/null | wc -l)"
    echo "  sanity: files whose first signature is MMSoft's: signwatch $swm, yara $ym"
    cmds+=("yara" "$(pin yara) -r $W/s.yar $SIGNER_DIR")
fi
run "$REPS" 1 "${cmds[@]}"
rate "sw-signer-only" "$SIGNER_N" files
rate "yara" "$SIGNER_N" files
ratio "yara" "sw-signer-only" "signwatch speed-up over yara (yara time / signwatch time)" ">=10"

# ------------------------------------------------------------ 3. small files
echo
echo "== 3. small signed files, full verification (--ca-file), core $CORE"
run "$REPS" 1 \
    "sw-small-full" "cd $SMALL_DIR && printf '%s\\0' * | $(pin xargs) -0 -s 2000000 -n $SMALL_N $SW inspect --json --ca-file $ROOTS" \
    "sw-small-signer-only" "cd $SMALL_DIR && printf '%s\\0' * | $(pin xargs) -0 -s 2000000 -n $SMALL_N $SW inspect --json --signer-only"
rate "sw-small-full" "$SMALL_N" files 5000
rate "sw-small-signer-only" "$SMALL_N" files

# ------------------------------------------------------------ 4. memory
echo
echo "== 4. peak memory (max RSS, median of 3)"
tiny="$(python3 "$LIB" rss 3 "$TIMEBIN" "$SW inspect --json --ca-file $ROOTS ${SIGNED_FIX[0]}")"
rm="$(python3 "$LIB" rss 3 "$TIMEBIN" "$SW inspect --json --ca-file $ROOTS $MID")"
rb="$(python3 "$LIB" rss 3 "$TIMEBIN" "$SW inspect --json --ca-file $ROOTS $BIG")"
echo "    20 KiB fixture: ${tiny} KiB;  ${MID_MIB} MiB: ${rm} KiB;  ${BIG_MIB} MiB: ${rb} KiB"
python3 -c "import sys; a,b=int(sys.argv[1]),int(sys.argv[2]); r=b/a; print(f'    max RSS {sys.argv[4]} MiB / {sys.argv[3]} MiB: {r:.3f}x   goal ~1.0 (independent of size): ' + ('met' if r < 1.1 else 'NOT met'))" "$rm" "$rb" "$MID_MIB" "$BIG_MIB" 2>/dev/null || echo "    n/a"

# ------------------------------------------------------------ 5. two cores
echo
if [ "$NCPU" -lt 2 ]; then
    echo "== 5. two cores: skipped (only $NCPU cpu online)"
else
    echo "== 5. two cores (taskset -c $CORES2, xargs -P2) vs one core (taskset -c $CORE, xargs -P1), same batches"
    half=$(( (SMALL_N + 1) / 2 ))
    LARGE4="$W/large4"; fill "$LARGE4" 4 "$MID"
    run "$REPS" 1 \
        "small-P1" "cd $SMALL_DIR && printf '%s\\0' * | taskset -c $CORE xargs -0 -P1 -s 2000000 -n $half $SW inspect --json --ca-file $ROOTS" \
        "small-P2" "cd $SMALL_DIR && printf '%s\\0' * | taskset -c $CORES2 xargs -0 -P2 -s 2000000 -n $half $SW inspect --json --ca-file $ROOTS" \
        "large4-P1" "cd $LARGE4 && printf '%s\\0' * | taskset -c $CORE xargs -0 -P1 -n 1 $SW inspect --json --ca-file $ROOTS" \
        "large4-P2" "cd $LARGE4 && printf '%s\\0' * | taskset -c $CORES2 xargs -0 -P2 -n 1 $SW inspect --json --ca-file $ROOTS"
    ratio "small-P1" "small-P2" "small files ($SMALL_N, 2 batches): 2-core throughput / 1-core"
    ratio "large4-P1" "large4-P2" "4 x ${MID_MIB} MiB: 2-core throughput / 1-core            "
fi

echo
echo "== done in $((SECONDS - T0)) s; raw times in $OUT$( [ "${BENCH_KEEP:-0}" = 1 ] || echo ' (removed: set BENCH_KEEP=1 to keep)')"
if [ "${#MISSING[@]}" -gt 0 ]; then
    echo "missing tools (their peers were skipped): ${MISSING[*]}" >&2
    exit 3
fi
exit 0
