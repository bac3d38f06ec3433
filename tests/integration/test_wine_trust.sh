#!/usr/bin/env bash
# The Windows build's trust sources under wine (TAP on stdout):
#   test_wine_trust.sh WIN_BUILD_DIR
# In a fresh WINEPREFIX, with no --ca-file:
#  - a file signed under tests/fixtures/pki is not trusted until the test
#    root is in LocalMachine\ROOT, then it is; with the intermediate in
#    LocalMachine\Disallowed it is not again; a root whose purposes are
#    limited to time stamping (or all disabled) anchors no code signing;
#  - the unsigned hello64.exe is unsigned until tests/fixtures/catalog/hello.cat
#    is added to the catalog database (CryptCATAdminAddCatalog), then it is
#    signed with SignatureType "Catalog" by the catalog's signer; so is
#    catalog/hello64-odd.exe (its size is not a multiple of 8: the listed
#    digest includes the zero padding); hello32.exe, which the catalog does
#    not list, stays unsigned.
# Certificates and catalogs go in through tests/tools/sw_wintrust.exe, which
# uses the same CryptoAPI calls an administrator's tools do.
set -u
src=$(cd "$(dirname "$0")/../.." && pwd)
win=${1:?usage: test_wine_trust.sh WIN_BUILD_DIR}
exe=$win/signwatch.exe
tool=$win/tests/sw_wintrust.exe
for f in "$exe" "$tool"; do
	[ -f "$f" ] || {
		echo "Bail out! $f not built (cross build: meson setup with packaging/windows/cross-mingw64.txt)"
		exit 1
	}
done
for t in wine wineboot wineserver winepath openssl python3; do
	command -v "$t" >/dev/null || {
		echo "Bail out! $t not found"
		exit 1
	}
done
fx=$src/tests/fixtures
[ -f "$fx/catalog/hello.cat" ] || {
	echo "Bail out! $fx/catalog/hello.cat missing (tests/fixtures/make-catalog.sh)"
	exit 1
}

WINEPREFIX=$(mktemp -d /tmp/signwatch-wine-trust.XXXXXX)
export WINEPREFIX WINEDEBUG=-all WINEDLLOVERRIDES="mscoree=;mshtml="
work=$(mktemp -d)
cleanup() {
	wineserver -k >/dev/null 2>&1
	rm -rf "$WINEPREFIX" "$work"
}
trap cleanup EXIT
wineboot -u >/dev/null 2>&1 # creates the prefix: not -i (two service managers; test-wine.sh)
# Validity is judged at this time (files without a countersignature).
export SIGNWATCH_TEST_NOW=2026-06-01T00:00:00Z

openssl x509 -in "$fx/pki/root.pem" -outform DER -out "$work/root.der"
openssl x509 -in "$fx/pki/inter.pem" -outform DER -out "$work/inter.der"

n=0
fails=0
ok() { # ok COND DESCRIPTION
	n=$((n + 1))
	if [ "$1" = 0 ]; then echo "ok $n - $2"; else
		echo "not ok $n - $2"
		fails=$((fails + 1))
	fi
}
# inspect FILE: the first record as JSON into $work/out.json, stderr to $work/err
inspect() {
	wine "$exe" inspect --json "$(winepath -w "$1")" 2>"$work/err" | tr -d '\r' | head -1 >"$work/out.json"
}
# field NAME: the record's value of NAME, JSON-encoded (true, false, null, "text")
field() {
	python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1])).get(sys.argv[2])))' "$work/out.json" "$1" 2>/dev/null
}
expect() { # expect NAME VALUE DESCRIPTION
	local got
	got=$(field "$1")
	[ "$got" = "$2" ]
	ok $? "$3 ($1 = $got)"
	[ "$got" = "$2" ] || sed 's/^/# /' "$work/err"
}
run() { # run DESCRIPTION CMD...: a setup step, reported as a test
	local what=$1
	shift
	"$@" >"$work/step" 2>&1
	local rc=$?
	ok $rc "$what"
	[ $rc = 0 ] || sed 's/^/# /' "$work/step"
}

signed=$fx/mmsoft-sha1.exe
# Part 1: IsTrusted from LocalMachine\ROOT.
inspect "$signed"
expect IsSigned true "signed fixture before the root is added: signed"
expect IsTrusted false "signed fixture before the root is added: not trusted"
# A root whose purposes are limited (certmgr's "Enable only the following
# purposes": the certificate's enhanced-key-usage property) anchors only
# chains of those purposes. The property is written as Windows stores it
# (the registry store's serialized Blob: the EKU property, then the
# certificate): wine's crypt32 does not save a property change on a stored
# certificate.
root_with_usage() { # root_with_usage OID...
	local key blob
	key=$(openssl x509 -in "$fx/pki/root.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')
	blob=$(python3 - "$work/root.der" "$@" <<'PY'
import struct, sys
def der_len(n):
    return bytes([n]) if n < 0x80 else bytes([0x81, n]) if n < 0x100 else bytes([0x82, n >> 8, n & 0xff])
def oid(s):
    a = [int(x) for x in s.split('.')]
    body = bytes([40 * a[0] + a[1]])
    for v in a[2:]:
        enc = [v & 0x7f]
        v >>= 7
        while v:
            enc.insert(0, 0x80 | (v & 0x7f))
            v >>= 7
        body += bytes(enc)
    return b'\x06' + der_len(len(body)) + body
def prop(pid, data):
    return struct.pack('<III', pid, 1, len(data)) + data
oids = b''.join(oid(o) for o in sys.argv[2:])
eku = b'\x30' + der_len(len(oids)) + oids
cert = open(sys.argv[1], 'rb').read()
print((prop(9, eku) + prop(0x20, cert)).hex().upper())
PY
)
	wine reg add "HKLM\\Software\\Microsoft\\SystemCertificates\\ROOT\\Certificates\\$key" /v Blob /t REG_BINARY \
		/d "$blob" /f
}
run "test root in LocalMachine\\ROOT for time stamping only" root_with_usage 1.3.6.1.5.5.7.3.8
inspect "$signed"
expect IsTrusted false "a root for time stamping only anchors no code-signing chain"
run "test root in LocalMachine\\ROOT for code signing only" root_with_usage 1.3.6.1.5.5.7.3.3
inspect "$signed"
expect IsTrusted true "a root for code signing only: trusted"
run "test root in LocalMachine\\ROOT with all purposes disabled" root_with_usage
inspect "$signed"
expect IsTrusted false "a root with every purpose disabled: not trusted"
wine reg delete "HKLM\\Software\\Microsoft\\SystemCertificates\\ROOT\\Certificates\\$(openssl x509 -in "$fx/pki/root.pem" -noout -fingerprint -sha1 | sed 's/.*=//; s/://g')" /f >/dev/null 2>&1
run "test root added to LocalMachine\\ROOT" wine "$tool" addcert ROOT "$(winepath -w "$work/root.der")"
inspect "$signed"
expect IsTrusted true "with the root in the store and no --ca-file: trusted"
expect IsRootSignerMicrosoft false "the test root is not Microsoft's"
inspect "$fx/selfsigned.exe"
expect IsTrusted false "a self-signed file is still not trusted"

# Part 2: catalogs.
inspect "$fx/hello64.exe"
expect IsSigned false "hello64.exe before its catalog is installed: unsigned"
expect SignatureType null "no SignatureType"
run "hello.cat added with CryptCATAdminAddCatalog" wine "$tool" addcat "$(winepath -w "$fx/catalog/hello.cat")" signwatch-hello.cat
inspect "$fx/hello64.exe"
expect IsSigned true "hello64.exe with its catalog installed: signed"
expect SignatureType '"Catalog"' "by a catalog"
expect Signer '"MMSoft Design Ltd."' "the catalog signer is reported"
expect Issuer '"signwatch Test Code Signing CA"' "and its issuer"
expect CertificateSerialNumber '"4D4D53000001"' "and its serial"
expect CertificateCountersignatureTime '"2024-03-01T12:00:00Z"' "the catalog's timestamp"
expect IsTrusted true "the catalog chains to the root in the store"
inspect "$fx/catalog/hello64-odd.exe"
expect SignatureType '"Catalog"' "hello64-odd.exe (size not a multiple of 8, digest zero-padded): by the catalog"
expect IsTrusted true "and trusted"
inspect "$fx/hello32.exe"
expect IsSigned false "hello32.exe, not in the catalog: unsigned"
inspect "$signed"
expect SignatureType '"Embedded"' "a signed file keeps its embedded signature"

# Disallowed: the intermediate distrusted, wherever it appears.
run "intermediate added to LocalMachine\\Disallowed" wine "$tool" addcert Disallowed "$(winepath -w "$work/inter.der")"
inspect "$signed"
expect IsTrusted false "embedded signature under a disallowed intermediate: not trusted"
inspect "$fx/hello64.exe"
expect IsTrusted false "catalog signature under a disallowed intermediate: not trusted"

echo "1..$n"
[ $fails = 0 ]
