#!/usr/bin/env python3
"""Differential test: signwatch inspect against two independent peers.

usage: test_differential.py SIGNWATCH FIXTURES_DIR SHARED_DIR

Every fixture (tests/fixtures/EXPECTED.tsv) and every real corpus file
(SHARED_DIR/corpus/TRUTH.tsv) is given to signwatch and to

1. osslsigncode (`verify -ignore-crl -CAfile CA -TSA-CAfile CA`), a full
   Authenticode verifier. Per signature we compare: signer subject, issuer,
   serial, validity, digest algorithm, whether the signed digest matches the
   recomputed one, the countersignature (timestamp) time and, where
   osslsigncode reached a verdict on the signature, IsTrusted.
   Written against osslsigncode 2.9; Debian 12's 2.5 works too: -ignore-crl
   is passed only when `osslsigncode -h` lists it (2.5 has no such option
   and never fetches CRLs), both output formats are parsed, and 2.5's own
   verdicts are documented in OSSL_VERSION_DIFFERENCES['2.5'].
2. libyara's pe module, through the `yara` CLI and a rule that logs
   pe.number_of_signatures and pe.signatures[i].* with the console module.
   yara 4.2 verifies nothing (no digest, no chain, no timestamp: there is not
   even a `verified` field in 4.2.3), so only identity fields are compared:
   count, subject, issuer, serial, not_before, not_after.
   pe.signatures[i].algorithm is the *certificate's* signature algorithm
   (e.g. sha256WithRSAEncryption), not the Authenticode digest algorithm, so
   it is not compared with DigestAlgorithm.

Where a peer and signwatch disagree, the disagreement must be listed in
KNOWN_DIFFERENCES below, with the reason, and it must be *exactly* the
documented one (same fields, and the facts that explain it must hold on
both sides). Anything else fails. A documented difference that does not
show up is not a failure (agreement is always fine) but is reported in a
TAP comment, since the table may then be stale for the peer's version.

Output: TAP. Exit 1 when any test failed. Python 3 stdlib only.
"""
import calendar
import csv
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

if len(sys.argv) != 4:
    sys.stderr.write(__doc__)
    sys.exit(2)

SW, FIX, SHARED = sys.argv[1:4]
if os.sep in SW:
    SW = os.path.abspath(SW)
FIX, SHARED = os.path.abspath(FIX), os.path.abspath(SHARED)
CORPUS = os.path.join(SHARED, 'corpus')
TIMEOUT = 60  # per tool invocation, seconds

# --------------------------------------------------------------------- TAP

_n = 0
_failed = 0


def emit(ok, desc, diag=()):
    global _n, _failed
    _n += 1
    if not ok:
        _failed += 1
    print('%s %d - %s' % ('ok' if ok else 'not ok', _n, desc))
    for line in diag:
        print('#   ' + line)
    sys.stdout.flush()


def skip(reason):
    global _n
    _n += 1
    print('ok %d # SKIP %s' % (_n, reason))
    sys.stdout.flush()


def comment(text):
    for line in text.splitlines():
        print('# ' + line)
    sys.stdout.flush()


# ------------------------------------------------- documented differences
#
# One entry per (peer, file). `fields` is the exact set of fields that
# disagree ('count' = number of signatures; per-signature fields are
# 'subject', 'issuer', 'serial', 'not_before', 'not_after', 'digest_alg',
# 'digest_ok', 'trusted', 'ts_time'). `peer_facts` / `sw_facts` are checks
# that must hold for the explanation in `why` to be the right one: if the
# fields match but a fact does not, the disagreement is NOT the documented
# one and the test fails.
#
# Observed with osslsigncode 2.9 (OpenSSL 3.0) and Debian's yara 4.2.3.

def _ossl_said(text):
    return ('osslsigncode printed %r' % text,
            lambda o: text in o['raw'])


def _ossl_no_sigs():
    return ('osslsigncode reports no signature block',
            lambda o: len(o['sigs']) == 0)


def _sw_count(n):
    return ('signwatch reports %d signature(s)' % n,
            lambda s: len(s['sigs']) == n)


def _sw_all(desc, pred):
    return ('every signwatch signature: ' + desc,
            lambda s: bool(s['sigs']) and all(pred(r) for r in s['sigs']))


def _anom(name):
    return lambda r: name in (r.get('Anomalies') or [])


KNOWN_DIFFERENCES = {
    ('osslsigncode', 'bad-two-entries.exe'): {
        'fields': {'count'},
        'why': 'The table holds two WIN_CERTIFICATE entries (MMSoft, then '
               'contoso-sha256.exe\'s) and the directory Size covers both. '
               'osslsigncode supports one entry only: it requires the first '
               'dwLength to equal the directory Size and rejects the file '
               '("Corrupted attribute certificate table"), so it reports no '
               'signature. signwatch reads every entry and reports both '
               'signatures (digests match), flags MultipleEntries, which '
               'DESIGN treats as a layout anomaly, and trusts neither '
               '(Windows would evaluate only the first entry).',
        'peer_facts': [_ossl_no_sigs(),
                       _ossl_said('Corrupted attribute certificate table')],
        'sw_facts': [_sw_count(2),
                     _sw_all('has MultipleEntries', _anom('MultipleEntries')),
                     _sw_all('DigestMatches true',
                             lambda r: r['DigestMatches'] is True),
                     _sw_all('IsTrusted false',
                             lambda r: r['IsTrusted'] is False)],
    },
    ('osslsigncode', 'bad-padded-entry.exe'): {
        'fields': {'trusted'},
        'why': 'dwLength and Size were grown by 8 and 8 non-zero bytes put '
               'inside the entry after the PKCS#7 DER (CVE-2013-3900 style). '
               'osslsigncode decodes the DER by its own length and ignores '
               'the rest of the entry, so it says "Signature verification: '
               'ok". signwatch reports NonZeroPadding, a layout anomaly, and '
               'does not trust it (TrustError "layout anomaly"); the digest '
               'still matches on both sides.',
        'peer_facts': [('osslsigncode verified the signature',
                        lambda o: len(o['sigs']) == 1
                        and o['sigs'][0]['verdict'] == 'ok')],
        'sw_facts': [_sw_count(1),
                     _sw_all('has NonZeroPadding', _anom('NonZeroPadding')),
                     _sw_all('DigestMatches true',
                             lambda r: r['DigestMatches'] is True),
                     _sw_all('IsTrusted false with TrustError layout anomaly',
                             lambda r: r['IsTrusted'] is False
                             and r['TrustError'] == 'layout anomaly')],
    },
    ('osslsigncode', 'bad-data-after-table.exe'): {
        'fields': {'count'},
        'why': '64 non-zero bytes follow the certificate table (directory '
               'unchanged). osslsigncode only looks for a signature that ends '
               'the file ("Ignoring PE signature not at the end of the '
               'file") and reports none. signwatch reports the signature '
               'with DataAfterTable; the trailing bytes are part of the '
               'Authenticode digest, so DigestMatches is false and it is not '
               'trusted. Both treat the file as not validly signed.',
        'peer_facts': [_ossl_no_sigs(),
                       _ossl_said('Ignoring PE signature not at the end of '
                                  'the file')],
        'sw_facts': [_sw_count(1),
                     _sw_all('has DataAfterTable', _anom('DataAfterTable')),
                     _sw_all('DigestMatches false',
                             lambda r: r['DigestMatches'] is False),
                     _sw_all('IsTrusted false',
                             lambda r: r['IsTrusted'] is False)],
    },
    ('osslsigncode', 'bad-grown-table.exe'): {
        'fields': {'count'},
        'why': 'The directory Size was grown by 16 over 16 appended non-zero '
               'bytes, dwLength unchanged. osslsigncode requires dwLength == '
               'Size ("Corrupted attribute certificate table") and reports no '
               'signature. signwatch reports the (intact) signature, flags '
               'UnaccountedTableBytes, and does not trust it because of the '
               'layout anomaly. Both treat the file as not validly signed.',
        'peer_facts': [_ossl_no_sigs(),
                       _ossl_said('Corrupted attribute certificate table')],
        'sw_facts': [_sw_count(1),
                     _sw_all('has UnaccountedTableBytes',
                             _anom('UnaccountedTableBytes')),
                     _sw_all('DigestMatches true',
                             lambda r: r['DigestMatches'] is True),
                     _sw_all('IsTrusted false with TrustError layout anomaly',
                             lambda r: r['IsTrusted'] is False
                             and r['TrustError'] == 'layout anomaly')],
    },
}

# osslsigncode version-specific tables, keyed by the version's major.minor
# and the file name. A version listed here is judged by its own table only
# (what was observed with it); the osslsigncode entries of
# KNOWN_DIFFERENCES (observed with 2.9) do not apply to it. 2.9, and any
# version not listed, is judged by KNOWN_DIFFERENCES exactly as before.

def _security_dir(path):
    """(directory Size, first entry's dwLength) of a PE file, or None."""
    try:
        with open(path, 'rb') as f:
            d = f.read()
        pe = struct.unpack_from('<I', d, 0x3c)[0]
        magic = struct.unpack_from('<H', d, pe + 24)[0]
        dd = pe + 24 + (96 if magic == 0x10b else 112)
        va, size = struct.unpack_from('<II', d, dd + 4 * 8)
        return size, struct.unpack_from('<I', d, va)[0]
    except (OSError, struct.error):
        return None


def _layout(path, size, dwlength):
    """A fact on the input file itself, checked on the peer's side."""
    return ('the security directory Size is %d and the first dwLength is %d'
            % (size, dwlength),
            lambda o: _security_dir(path()) == (size, dwlength))


def _v25(name, why, peer_facts):
    """A 2.5 entry for a file whose 2.9 entry differs only on osslsigncode's
    side: same disagreeing fields and signwatch facts, 2.5's own reason."""
    base = KNOWN_DIFFERENCES[('osslsigncode', name)]
    return {'fields': set(base['fields']), 'why': why,
            'peer_facts': peer_facts, 'sw_facts': list(base['sw_facts'])}


def _fix(name):
    return lambda: os.path.join(FIX, name)


def _corp(name):
    return lambda: os.path.join(CORPUS, name)


# Observed with Debian 12's osslsigncode 2.5 (2.5-4, OpenSSL 3.0). 2.5
# prints the same field labels as 2.9 for what is compared here, except the
# timestamp ("The signature is timestamped: <time>" where 2.9 has
# "Countersignatures:" / "Timestamp time: <time>"); it verifies RFC 3161
# and legacy PKCS#9 timestamps alike (all timestamped fixtures and corpus
# files agree on ts_time and trust). Its table check is stricter than 2.9's:
# before decoding anything it requires the directory Size to equal the
# first entry's dwLength exactly, else it prints "Invalid signature" and
# lists no signature (2.9 accepts a Size that is dwLength padded to a
# multiple of 8, as in fbx64.efi.signed, and otherwise says "Corrupted
# attribute certificate table").
OSSL_VERSION_DIFFERENCES = {
    '2.5': {
        'bad-two-entries.exe': _v25(
            'bad-two-entries.exe',
            'Two WIN_CERTIFICATE entries; the directory Size (11768) covers '
            'both, the first dwLength is 5888. osslsigncode 2.5 requires '
            'Size == first dwLength, prints "Invalid signature" and reports '
            'no signature (2.9 rejects the same table with "Corrupted '
            'attribute certificate table"). signwatch reports both '
            'signatures (digests match), flags MultipleEntries, a layout '
            'anomaly under DESIGN, and trusts neither.',
            [_ossl_no_sigs(), _ossl_said('Invalid signature'),
             _layout(_fix('bad-two-entries.exe'), 11768, 5888)]),
        'bad-grown-table.exe': _v25(
            'bad-grown-table.exe',
            'The directory Size was grown by 16 (5904) over 16 appended '
            'non-zero bytes, dwLength unchanged (5888). osslsigncode 2.5 '
            'requires Size == dwLength, prints "Invalid signature" and '
            'reports no signature (2.9: "Corrupted attribute certificate '
            'table"). signwatch reports the intact signature, flags '
            'UnaccountedTableBytes and does not trust it (layout anomaly). '
            'Both treat the file as not validly signed.',
            [_ossl_no_sigs(), _ossl_said('Invalid signature'),
             _layout(_fix('bad-grown-table.exe'), 5904, 5888)]),
        'bad-data-after-table.exe': _v25(
            'bad-data-after-table.exe',
            '64 non-zero bytes follow the certificate table (directory '
            'unchanged). osslsigncode 2.5 refuses the whole file while '
            'reading the PE header ("Corrupt PE file - current signature '
            'not at end of file", then "Corrupt PE file") and reports no '
            'signature (2.9 only warns "Ignoring PE signature not at the '
            'end of the file" and finds none). signwatch reports the '
            'signature with DataAfterTable; the trailing bytes are part of '
            'the Authenticode digest, so DigestMatches is false and it is '
            'not trusted. Both treat the file as not validly signed.',
            [_ossl_no_sigs(),
             _ossl_said('Corrupt PE file - current signature not at end '
                        'of file')]),
        # Same as with 2.9, observed identically with 2.5 ("Signature
        # verification: ok" although the entry has 8 junk bytes after the
        # DER): the 2.9 entry, facts and all, applies unchanged.
        'bad-padded-entry.exe':
            KNOWN_DIFFERENCES[('osslsigncode', 'bad-padded-entry.exe')],
        'fbx64.efi.signed': {
            'fields': {'count'},
            'why': 'A real, validly signed Debian shim helper whose only '
                   'entry has dwLength 1471 (not a multiple of 8) inside a '
                   'directory Size of 1472: the entry padded to 8 bytes, as '
                   'the PE format prescribes. osslsigncode 2.5 compares '
                   'Size with the unpadded dwLength, prints "Invalid '
                   'signature" and reports no signature: a 2.5 limitation '
                   '(2.9 accepts the file and agrees with signwatch). '
                   'signwatch reports one signature, no anomaly, digest '
                   'matching and trusted under the Debian Secure Boot CA.',
            'peer_facts': [_ossl_no_sigs(), _ossl_said('Invalid signature'),
                           _layout(_corp('fbx64.efi.signed'), 1472, 1471)],
            'sw_facts': [_sw_count(1),
                         _sw_all('no anomalies',
                                 lambda r: not r.get('Anomalies')),
                         _sw_all('DigestMatches true',
                                 lambda r: r['DigestMatches'] is True),
                         _sw_all('IsTrusted true',
                                 lambda r: r['IsTrusted'] is True)],
        },
    },
}


def known_difference(peer, name):
    """The documented difference for (peer, file). For an osslsigncode
    version with its own table, that table is complete: the 2.9 entries do
    not apply to it. Other versions (2.9, and any not listed) use
    KNOWN_DIFFERENCES."""
    if peer == 'osslsigncode' and OSSL_MM in OSSL_VERSION_DIFFERENCES:
        return OSSL_VERSION_DIFFERENCES[OSSL_MM].get(name)
    return KNOWN_DIFFERENCES.get((peer, name))


# Normalisations that are not disagreements (applied before comparing):
NORMALISATIONS = [
    'DNs: osslsigncode and yara print OpenSSL one-line names in X.509 '
    'order (/C=GB/O=x/CN=y); signwatch prints RFC 2253 (CN=y,O=x,C=GB). '
    'Both are split into (attribute, value) pairs and compared with the '
    'order reversed.',
    'Serials: yara prints the DER INTEGER bytes with colons and keeps the '
    'leading 00 sign byte (00:c0:47:00:01); signwatch and osslsigncode '
    'print C0470001. One 00 is dropped only when the next byte is >= 0x80.',
    'Times: osslsigncode prints "Jan  1 00:00:00 2021 GMT", yara Unix '
    'seconds; signwatch ISO 8601 UTC. Fractions of a second are dropped.',
    'Digest algorithm: osslsigncode prints SHA256, signwatch sha256.',
    'Non-PE input: signwatch exits 1 with an error and no record, '
    'osslsigncode says "Initialization error or unsupported input file '
    'type", yara leaves pe.number_of_signatures undefined: all count as 0 '
    'signatures.',
    'yara 4.2.3 lists nested signatures (1.3.6.1.4.1.311.2.4.1) too: '
    'nested.exe gives pe.number_of_signatures == 2, in the same depth-first '
    'order as signwatch\'s SignatureIndex, so no nested-only difference is '
    'expected and none is documented.',
]

# ------------------------------------------------------------- helpers

OID_ALIASES = {
    's': 'st', 'stateorprovincename': 'st', 'localityname': 'l',
    'organizationname': 'o', 'organizationalunitname': 'ou',
    'commonname': 'cn', 'countryname': 'c', 'e': 'emailaddress',
    'email': 'emailaddress', '1.2.840.113549.1.9.1': 'emailaddress',
    '2.5.4.3': 'cn', '2.5.4.6': 'c', '2.5.4.7': 'l', '2.5.4.8': 'st',
    '2.5.4.10': 'o', '2.5.4.11': 'ou', '2.5.4.5': 'serialnumber',
    'street': 'street', '2.5.4.9': 'street',
}


def _key(k):
    k = k.strip().lower()
    return OID_ALIASES.get(k, k)


def _unhex_escapes(s):
    """Turn \\xHH (OpenSSL one-line) byte escapes into text."""
    if not re.search(r'\\x[0-9A-Fa-f]{2}', s):
        return s
    b = re.sub(rb'\\x([0-9A-Fa-f]{2})',
               lambda m: bytes([int(m.group(1), 16)]), s.encode('utf-8'))
    return b.decode('utf-8', 'replace')


def parse_oneline(dn):
    """'/C=GB/O=x/CN=y' -> [('c','GB'),('o','x'),('cn','y')] (X.509 order)."""
    if dn is None:
        return None
    dn = dn.strip()
    if not dn.startswith('/'):
        return None
    parts = re.split(r'/(?=[A-Za-z][A-Za-z0-9.-]*=)', dn[1:])
    out = []
    for p in parts:
        k, _, v = p.partition('=')
        out.append((_key(k), _unhex_escapes(v)))
    return out


def parse_rfc2253(dn):
    """'CN=y,O=x,C=GB' -> [('c','GB'),('o','x'),('cn','y')] (X.509 order)."""
    if dn is None:
        return None
    rdns, cur, i = [], '', 0
    while i < len(dn):
        ch = dn[i]
        if ch == '\\' and i + 1 < len(dn):
            nxt = dn[i + 1:i + 3]
            if re.fullmatch(r'[0-9A-Fa-f]{2}', nxt):
                cur += '\x00' + nxt  # hex escape, decoded below
                i += 3
                continue
            cur += dn[i + 1]
            i += 2
            continue
        if ch in ',+':
            rdns.append(cur)
            cur = ''
        else:
            cur += ch
        i += 1
    rdns.append(cur)
    out = []
    for p in rdns:
        k, _, v = p.partition('=')
        if '\x00' in v:  # \HH escapes are UTF-8 bytes
            b = bytearray()
            j = 0
            while j < len(v):
                if v[j] == '\x00':
                    b.append(int(v[j + 1:j + 3], 16))
                    j += 3
                else:
                    b += v[j].encode('utf-8')
                    j += 1
            v = b.decode('utf-8', 'replace')
        out.append((_key(k), v))
    out.reverse()
    return out


def norm_serial(s, der=False):
    """Upper hex without separators; with der=True (yara prints the DER
    INTEGER bytes) drop one 00 sign byte in front of a byte >= 0x80.
    signwatch's and osslsigncode's serials are taken as they are."""
    if s is None:
        return None
    h = re.sub(r'[^0-9A-Fa-f]', '', s).upper()
    if der and len(h) >= 4 and h.startswith('00') and int(h[2], 16) >= 8:
        h = h[2:]
    return h


def iso_to_unix(s):
    if not s:
        return None
    s = re.sub(r'\.\d+', '', s)
    return calendar.timegm(time.strptime(s, '%Y-%m-%dT%H:%M:%SZ'))


def ossl_time_to_unix(s):
    """'Jan  1 00:00:00 2021 GMT' (ASN1_TIME_print) -> Unix seconds."""
    if not s or s.strip() in ('N/A', ''):
        return None
    s = re.sub(r'\.\d+', '', ' '.join(s.split()))
    return calendar.timegm(time.strptime(s, '%b %d %H:%M:%S %Y GMT'))


def fmt_unix(t):
    if t is None:
        return None
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t))


def run(cmd, cwd=None):
    try:
        p = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, '', 'timeout after %ds' % TIMEOUT
    return (p.returncode, p.stdout.decode('utf-8', 'replace'),
            p.stderr.decode('utf-8', 'replace'))


# -------------------------------------------------------------- signwatch

def signwatch(path, ca):
    rc, out, err = run([SW, 'inspect', '--json', '--ca-file', ca, path])
    recs, bad = [], []
    for line in out.splitlines():
        if line.strip():
            try:
                recs.append(json.loads(line))
            except ValueError:
                bad.append(line)
    return {
        'rc': rc, 'stderr': err.strip(), 'bad_lines': bad, 'records': recs,
        'sigs': sorted((r for r in recs if r.get('IsSigned')),
                       key=lambda r: r.get('SignatureIndex', 0)),
    }


def sw_view(r):
    """The fields of one signwatch record in the common comparison form."""
    return {
        'subject': parse_rfc2253(r.get('SignerDN')),
        'issuer': parse_rfc2253(r.get('IssuerDN')),
        'serial': norm_serial(r.get('CertificateSerialNumber')),
        'not_before': iso_to_unix(r.get('CertificateCreationTime')),
        'not_after': iso_to_unix(r.get('CertificateExpirationTime')),
        'digest_alg': (r.get('DigestAlgorithm') or '').lower() or None,
        'digest_ok': r.get('DigestMatches'),
        'trusted': r.get('IsTrusted'),
        'ts_time': iso_to_unix(r.get('CertificateCountersignatureTime')),
    }


# ----------------------------------------------------------- osslsigncode

def ossl_version():
    rc, out, err = run(['osslsigncode', '--version'])
    m = re.search(r'osslsigncode\s+(\S+?),?\s', out + err)
    return (m.group(1) if m else '?'), (out + err).strip().splitlines()


def ossl_major_minor(ver):
    """'2.9' -> '2.9', '2.5.1' -> '2.5', '?' -> None."""
    m = re.match(r'(\d+)\.(\d+)', ver or '')
    return '%s.%s' % m.groups() if m else None


def ossl_verify_flags():
    """Options for `osslsigncode verify` beyond -CAfile/-TSA-CAfile/-in.

    -ignore-crl (2.6+) stops osslsigncode from fetching the CRLs named in
    the certificates' distribution points (no network in the tests, and the
    test PKI's CRL URLs do not resolve). 2.5 has no such option (it rejects
    it: usage text and "Failed"), and needs none: it never fetches CRLs, it
    only prints "CRL distribution point: ..." and uses -CRLfile if given.
    So the flag is passed only when the usage text lists it."""
    rc, out, err = run(['osslsigncode', '-h'])
    usage = out + err
    return (['-ignore-crl'] if re.search(r'(^|[\s\[])-ignore-crl\b', usage)
            else [])


OSSL_FLAGS = None  # set in main() once osslsigncode is known to exist
OSSL_MM = None     # osslsigncode major.minor, e.g. '2.9', '2.5'


def _field(block, label):
    m = re.search(r'^\s*' + label + r'\s*:\s*(.*?)\s*$', block, re.M)
    return m.group(1) if m else None


def parse_ossl_block(block):
    sig = {}
    sig['digest_alg'] = (_field(block, r'Message digest algorithm') or
                         '').lower() or None
    cur = _field(block, r'Current message digest')
    calc = _field(block, r'Calculated message digest')
    if cur is not None and calc is not None:
        calc_hex = calc.split()[0] if calc.split() else ''
        sig['digest_ok'] = (cur.split()[0].upper() == calc_hex.upper()
                            and 'MISMATCH' not in calc)
    else:
        sig['digest_ok'] = None
    # The signer's certificate is the first one listed after the header.
    sc = block.split("Signer's certificate:", 1)
    subj = iss = ser = nb = na = None
    if len(sc) == 2:
        cert = sc[1]
        subj = _field(cert, r'Subject')
        iss = _field(cert, r'Issuer')
        ser = _field(cert, r'Serial')
        nb = _field(cert, r'notBefore')
        na = _field(cert, r'notAfter')
    sig['subject'] = parse_oneline(subj)
    sig['issuer'] = parse_oneline(iss)
    sig['serial'] = norm_serial(ser)
    sig['not_before'] = ossl_time_to_unix(nb)
    sig['not_after'] = ossl_time_to_unix(na)
    ts = None
    if 'Countersignatures:' in block:
        # 2.9: "Countersignatures:" then "\tTimestamp time: ..." (and the
        # TSA token's own "Signing time", which is not the timestamp).
        ts = _field(block.split('Countersignatures:', 1)[1],
                    r'Timestamp time')
    else:
        # 2.5: "The signature is timestamped: Mar  1 12:00:00 2024 GMT",
        # for RFC 3161 tokens and for legacy PKCS#9 countersignatures alike
        # (or "Timestamp is not available").
        ts = _field(block, r'The signature is timestamped')
    sig['ts_time'] = ossl_time_to_unix(ts)
    # "Timestamp Server Signature verification" is the TSA's, not ours.
    v = re.findall(r'^Signature verification:\s*(\w+)', block, re.M)
    if v:
        sig['verdict'] = v[-1]
    else:
        # osslsigncode writes "Signature verification: failed" to stderr
        # when it stops early (e.g. digest MISMATCH); a block without an
        # "ok" line on stdout was not verified.
        sig['verdict'] = 'failed'
    sig['trusted'] = sig['verdict'] == 'ok'
    return sig


def osslsigncode(path, ca, cwd):
    rc, out, err = run(['osslsigncode', 'verify'] + OSSL_FLAGS +
                       ['-CAfile', ca, '-TSA-CAfile', ca, '-in', path],
                       cwd=cwd)
    parts = re.split(r'^Signature Index:\s*\d+.*$', out, flags=re.M)
    sigs = [parse_ossl_block(b) for b in parts[1:]]
    return {'rc': rc, 'raw': out + '\n' + err, 'sigs': sigs,
            'succeeded': bool(re.search(r'^Succeeded\s*$', out, re.M))}


OSSL_FIELDS = ['subject', 'issuer', 'serial', 'not_before', 'not_after',
               'digest_alg', 'digest_ok', 'trusted', 'ts_time']


def compare_ossl(sw, ossl):
    diffs = []
    if len(sw['sigs']) != len(ossl['sigs']):
        diffs.append(('-', 'count', len(sw['sigs']), len(ossl['sigs'])))
    for i, (r, o) in enumerate(zip(sw['sigs'], ossl['sigs'])):
        s = sw_view(r)
        for f in OSSL_FIELDS:
            if f == 'trusted' and o.get('verdict') is None:
                continue
            if o[f] is None and o['digest_ok'] is False and \
                    f not in ('digest_alg', 'digest_ok', 'trusted'):
                # On a digest MISMATCH osslsigncode stops before it prints
                # the signer's certificate and the countersignature: there
                # is nothing to compare (only allowed in that case).
                sw.setdefault('ossl_unreported', []).append('sig %d %s'
                                                            % (i, f))
                continue
            if s[f] != o[f]:
                diffs.append((i, f, s[f], o[f]))
    return diffs


# ------------------------------------------------------------------- yara

YARA_TAG = 'SWDIFF'
YARA_FIELDS = ['subject', 'issuer', 'serial', 'not_before', 'not_after',
               'algorithm']


def yara_rule():
    logs = []
    for f in YARA_FIELDS:
        logs.append('(console.log("%s %s=", pe.signatures[i].%s) or true)'
                    % (YARA_TAG, f, f))
    return '''import "pe"
import "console"

rule signwatch_differential {
  condition:
    (console.log("%s nsig=", pe.number_of_signatures) or true) and
    for all i in (0..pe.number_of_signatures - 1) : (
      (console.log("%s sig=", i) or true) and
      %s
    )
}
''' % (YARA_TAG, YARA_TAG, ' and\n      '.join(logs))


def yara_scan(rule_path, path):
    rc, out, err = run(['yara', '-w', rule_path, path])
    res = {'rc': rc, 'raw': out + err, 'nsig': None, 'sigs': []}
    cur = None
    for line in out.splitlines():
        if not line.startswith(YARA_TAG + ' '):
            continue
        k, _, v = line[len(YARA_TAG) + 1:].partition('=')
        if k == 'nsig':
            res['nsig'] = int(v)
        elif k == 'sig':
            cur = {}
            res['sigs'].append(cur)
        elif cur is not None:
            cur[k] = v
    return res


def compare_yara(sw, y):
    diffs = []
    n = y['nsig'] if y['nsig'] is not None else 0
    if len(sw['sigs']) != n:
        diffs.append(('-', 'count', len(sw['sigs']), n))
    if len(y['sigs']) != n:
        diffs.append(('-', 'yara-output', n, len(y['sigs'])))
    for i, (r, ys) in enumerate(zip(sw['sigs'], y['sigs'])):
        s = sw_view(r)
        yv = {
            'subject': parse_oneline(ys.get('subject')),
            'issuer': parse_oneline(ys.get('issuer')),
            'serial': norm_serial(ys.get('serial'), der=True),
            'not_before': int(ys['not_before']) if ys.get('not_before')
            else None,
            'not_after': int(ys['not_after']) if ys.get('not_after')
            else None,
        }
        for f in ('subject', 'issuer', 'serial', 'not_before', 'not_after'):
            if s[f] != yv[f]:
                diffs.append((i, f, s[f], yv[f]))
    return diffs


# ---------------------------------------------------------------- judging

def show(v):
    if isinstance(v, list):
        return ','.join('%s=%s' % kv for kv in reversed(v))
    if isinstance(v, int) and not isinstance(v, bool) and v > 100000000:
        return fmt_unix(v)
    return repr(v)


def judge(peer, name, sw, peer_res, diffs, seen_known):
    key = (peer, name)
    known = known_difference(peer, name)
    nsig = len(sw['sigs'])
    if sw.get('ossl_unreported') and peer == 'osslsigncode':
        comment('%s: %s: not reported by osslsigncode after a digest '
                'mismatch, not compared: %s'
                % (peer, name, ', '.join(sw.pop('ossl_unreported'))))
    if not diffs:
        if known:
            # The peer now agrees. That is fine if the peer changed, but
            # not if signwatch stopped doing what the table documents.
            broken = ['documented signwatch fact does not hold: ' + desc
                      for desc, pred in known.get('sw_facts', [])
                      if not pred(sw)]
            if broken:
                emit(False, '%s agrees on %s, but signwatch no longer '
                     'behaves as documented' % (peer, name),
                     broken + ['documented: ' + known['why']])
                return
            comment('%s: %s: documented difference did not occur (table '
                    'may be stale for this %s version)' % (peer, name, peer))
        emit(True, '%s agrees on %s (%d signature%s)'
             % (peer, name, nsig, '' if nsig == 1 else 's'))
        return
    diag = ['disagreement: sig %s %s: signwatch=%s %s=%s'
            % (i, f, show(a), peer, show(b)) for i, f, a, b in diffs]
    if not known:
        emit(False, '%s disagrees on %s, and no documented difference '
             'explains it' % (peer, name), diag)
        return
    seen_known.add(key)
    fields = {f for _, f, _, _ in diffs}
    problems = []
    if fields != known['fields']:
        problems.append('disagreeing fields %s, documented %s'
                        % (sorted(fields), sorted(known['fields'])))
    for desc, pred in known.get('peer_facts', []):
        if not pred(peer_res):
            problems.append('documented fact does not hold: ' + desc)
    for desc, pred in known.get('sw_facts', []):
        if not pred(sw):
            problems.append('documented fact does not hold: ' + desc)
    if problems:
        emit(False, '%s disagrees on %s, but not as documented'
             % (peer, name), diag + problems + ['documented: ' + known['why']])
    else:
        emit(True, '%s differs on %s exactly as documented (%s)'
             % (peer, name, ', '.join(sorted(fields))),
             diag + ['why: ' + known['why']])


# ------------------------------------------------------------------ files

def tsv_files(path):
    with open(path, newline='') as f:
        names = [r['file'] for r in csv.DictReader(f, delimiter='\t')]
    seen, out = set(), []
    for n in names:
        if n not in seen:
            seen.add(n)
            out.append(n)
    return out


def main():
    global OSSL_FLAGS, OSSL_MM
    comment('signwatch differential test: %s' % SW)
    targets = []  # (set, name, dir, ca path for both tools)
    fix_ca = os.path.join(FIX, 'pki', 'roots.pem')
    fix_list = tsv_files(os.path.join(FIX, 'EXPECTED.tsv'))
    for n in fix_list:
        targets.append(('fixture', n, FIX, fix_ca))
    have_corpus = os.path.isfile(os.path.join(CORPUS, 'TRUTH.tsv'))
    if have_corpus:
        for n in tsv_files(os.path.join(CORPUS, 'TRUTH.tsv')):
            if n.endswith('.efi') or n.endswith('.efi.signed'):
                ca = os.path.join(CORPUS, 'debian-secure-boot-ca.pem')
            else:
                ca = os.path.join(CORPUS, 'code-signing-roots.pem')
            targets.append(('corpus', n, CORPUS, ca))

    emit(bool(fix_list), 'fixture list read from EXPECTED.tsv (%d files)'
         % len(fix_list))

    # signwatch on every file (shared by both peers).
    sw_res = {}
    bad = []
    for kind, name, d, ca in targets:
        p = os.path.join(d, name)
        if not os.path.isfile(p):
            bad.append('%s missing' % p)
            continue
        r = signwatch(p, ca)
        sw_res[(kind, name)] = r
        if r['rc'] is None or r['bad_lines'] or \
                (r['rc'] != 0 and not r['stderr']) or \
                (r['rc'] == 0 and not r['records']):
            bad.append('%s: rc=%s stderr=%r unparsable=%r'
                       % (name, r['rc'], r['stderr'][:200],
                          r['bad_lines'][:2]))
    emit(not bad, 'signwatch inspect --json ran on all %d files with '
         'parsable output' % len(targets), bad)

    def peer_loop(peer, fn):
        seen_known = set()
        for kind, name, d, ca in targets:
            if (kind, name) not in sw_res:
                emit(False, '%s: %s: file missing' % (peer, name))
                continue
            if kind == 'corpus' and not have_corpus:
                continue
            sw = sw_res[(kind, name)]
            res, diffs = fn(os.path.join(d, name), ca, d)
            judge(peer, name, sw, res, diffs, seen_known)
        names = {n for _, n, _, _ in targets}
        if peer == 'osslsigncode' and OSSL_MM in OSSL_VERSION_DIFFERENCES:
            documented = set(OSSL_VERSION_DIFFERENCES[OSSL_MM])
        else:
            documented = {n for p, n in KNOWN_DIFFERENCES if p == peer}
        for n in sorted(documented - names):
            comment('%s: documented difference for %s: file not among '
                    'the inputs (stale entry?)' % (peer, n))
        return seen_known

    # ---- peer 1: osslsigncode
    if shutil.which('osslsigncode') is None:
        skip('osslsigncode not installed: no osslsigncode comparison')
    else:
        ver, lines = ossl_version()
        OSSL_MM = ossl_major_minor(ver)
        OSSL_FLAGS = ossl_verify_flags()
        comment('osslsigncode version: %s (%s)' % (
            ver, ' '.join(l.strip() for l in lines[:2])))
        comment('osslsigncode verify options: %s' % (
            ' '.join(OSSL_FLAGS) if OSSL_FLAGS else
            'no -ignore-crl (not in this version\'s usage text; it does '
            'not fetch CRLs)'))
        if OSSL_MM in OSSL_VERSION_DIFFERENCES:
            comment('documented osslsigncode differences: the ones observed '
                    'with osslsigncode %s (OSSL_VERSION_DIFFERENCES[%r])'
                    % (OSSL_MM, OSSL_MM))
        else:
            comment('documented osslsigncode differences were observed '
                    'with osslsigncode 2.9 (version-specific entries exist '
                    'for: %s)' % ', '.join(sorted(OSSL_VERSION_DIFFERENCES)))

        def via_ossl(path, ca, d):
            o = osslsigncode(path, ca, d)
            return o, compare_ossl(sw_res[(kind_of[path], os.path.basename(
                path))], o)
        kind_of = {os.path.join(d, n): k for k, n, d, _ in targets}
        peer_loop('osslsigncode', via_ossl)
        if not have_corpus:
            skip('%s absent: real corpus not compared with osslsigncode'
                 % CORPUS)

    # ---- peer 2: yara
    if shutil.which('yara') is None:
        skip('yara not installed: no libyara pe module comparison')
    else:
        rc, out, err = run(['yara', '--version'])
        comment('yara version: %s' % (out + err).strip())
        comment('yara 4.2 verifies nothing: only count, subject, issuer, '
                'serial, not_before, not_after are compared')
        tmp = tempfile.mkdtemp(prefix='sw-diff-yara-')
        try:
            rule = os.path.join(tmp, 'signatures.yar')
            with open(rule, 'w') as f:
                f.write(yara_rule())
            # The rule must compile, and must see a signed fixture.
            probe = yara_scan(rule, os.path.join(FIX, 'nested.exe'))
            ok = probe['rc'] == 0 and probe['nsig'] is not None
            emit(ok, 'yara rule with pe + console modules compiles and '
                 'reports pe.number_of_signatures',
                 [] if ok else probe['raw'].splitlines()[:5])
            if ok:
                kind_of = {os.path.join(d, n): k for k, n, d, _ in targets}

                def via_yara(path, ca, d):
                    y = yara_scan(rule, path)
                    return y, compare_yara(
                        sw_res[(kind_of[path], os.path.basename(path))], y)
                peer_loop('yara', via_yara)
                comment('yara nested handling: nested.exe -> '
                        'pe.number_of_signatures = %s' % probe['nsig'])
            if not have_corpus:
                skip('%s absent: real corpus not compared with yara' % CORPUS)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    comment('normalisations applied before comparing:')
    for n in NORMALISATIONS:
        comment(' - ' + n)
    print('1..%d' % _n)
    return 1 if _failed else 0


if __name__ == '__main__':
    sys.exit(main())
