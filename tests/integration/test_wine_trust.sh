#!/usr/bin/env bash
# The Windows build's trust sources under wine (TAP on stdout):
#   test_wine_trust.sh WIN_BUILD_DIR
# In a fresh WINEPREFIX, with no --ca-file:
#  - a file signed under tests/fixtures/pki is not trusted until the test
#    root is in LocalMachine\ROOT, then it is; with the intermediate in
#    LocalMachine\Disallowed it is not again;
#  - the unsigned hello64.exe is unsigned until tests/fixtures/catalog/hello.cat
#    is added to the catalog database (CryptCATAdminAddCatalog), then it is
#    signed with SignatureType "Catalog" by the catalog's signer; hello32.exe,
#    which the catalog does not list, stays unsigned.
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
