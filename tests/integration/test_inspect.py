#!/usr/bin/env python3
"""signwatch inspect against the fixtures' EXPECTED.tsv and the real
corpus' TRUTH.tsv, both computed with other tools (openssl, osslsigncode,
pefile, python), never with signwatch.

usage: test_inspect.py SIGNWATCH FIXTURES_DIR SHARED_DIR
"""
import csv
import json
import os
import subprocess
import sys

from tap import Tap

SW, FIX, SHARED = sys.argv[1:4]
CORPUS = os.path.join(SHARED, 'corpus')
t = Tap()

# Anomalies each malformed fixture was built to have (tests/fixtures/README.md).
ANOMALIES = {
    'bad-data-after-table.exe': ['DataAfterTable'],
    'bad-grown-table.exe': ['UnaccountedTableBytes'],
    'bad-padded-entry.exe': ['NonZeroPadding'],
    'bad-two-entries.exe': ['MultipleEntries'],
    'bad-revision.exe': ['BadEntryRevision'],
    'bad-type.exe': ['BadEntryType'],
    'bad-dwlength-small.exe': ['UnaccountedTableBytes', 'BadSignatureBlob'],
    'bad-dwlength-big.exe': ['TableLengthMismatch'],
    'bad-dir-outside.exe': ['TableOutsideFile'],
    'bad-truncated.exe': ['TableOutsideFile'],
    'bad-pkcs7-garbage.exe': ['BadSignatureBlob'],
}
# Files that are no PE at all (or whose PE header cannot be found): exit 1
# and a message naming the file; the other files are still reported.
NOT_PE = {'notpe.txt': 'not a PE file', 'empty.bin': 'not a PE file',
          'bad-huge-lfanew.exe': 'malformed PE headers'}


def inspect(files, ca=None, extra=()):
    cmd = [SW, 'inspect', '--json'] + list(extra)
    if ca:
        cmd += ['--ca-file', ca]
    p = subprocess.run(cmd + list(files), capture_output=True, text=True)
    recs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
    return p.returncode, recs, p.stderr


def rows(path):
    with open(path, newline='') as f:
        return list(csv.DictReader(f, delimiter='\t'))


def check_row(rec, row, label, trusted=None):
    """Compare one record with one truth row, field by field."""
    t.eq(rec['FileSize'], int(row['size']), label + ' FileSize')
    t.eq(rec['SHA1'], row['sha1'], label + ' SHA1')
    t.eq(rec['SHA256'], row['sha256'], label + ' SHA256')
    signed = row.get('is_signed', '1') == '1'
    t.eq(rec['IsSigned'], signed, label + ' IsSigned')
    if not signed:
        t.eq(rec['Signer'], None, label + ' no Signer')
        t.eq(rec['IsTrusted'], False, label + ' IsTrusted false')
        return
    t.eq(rec['SignatureIndex'], int(row['sig_index']), label + ' SignatureIndex')
    t.eq(rec['IsNested'], row['nested'] == '1', label + ' IsNested')
    t.eq(rec['SignatureType'], 'Embedded', label + ' SignatureType')
    t.eq(rec['DigestAlgorithm'], row['digest_alg'], label + ' DigestAlgorithm')
    t.eq(rec['DigestMatches'], row['digest_ok'] == '1', label + ' DigestMatches')
    t.eq(rec['Signer'], row['signer_cn'] or row['signer_o'], label + ' Signer (CN, else O)')
    t.eq(rec['SignerDN'], row['signer_dn'], label + ' SignerDN')
    if row['issuer_cn']:
        t.eq(rec['Issuer'], row['issuer_cn'], label + ' Issuer')
    t.eq(rec['IssuerDN'], row['issuer_dn'], label + ' IssuerDN')
    t.eq(rec['CertificateSerialNumber'], row['serial_hex'], label + ' CertificateSerialNumber')
    t.eq(rec['CertificateCreationTime'], row['not_before'], label + ' CertificateCreationTime')
    t.eq(rec['CertificateExpirationTime'], row['not_after'], label + ' CertificateExpirationTime')
    t.eq(rec['SignerHash'], row['signer_sha1_thumbprint'], label + ' SignerHash')
    t.eq(rec['IssuerHash'], row['issuer_sha1_thumbprint'] or None, label + ' IssuerHash')
    kind = None if row['countersig_kind'] == 'none' else row['countersig_kind']
    t.eq(rec['CountersignatureType'], kind, label + ' CountersignatureType')
    ct = rec['CertificateCountersignatureTime']
    if ct and '.' in ct:  # truth drops fractions of a second
        ct = ct.split('.')[0] + 'Z'
    t.eq(ct, row['countersig_time'] or None, label + ' CertificateCountersignatureTime')
    if trusted is not None:
        t.eq(rec['IsTrusted'], trusted, label + ' IsTrusted')


# --- fixtures -----------------------------------------------------------
exp = rows(os.path.join(FIX, 'EXPECTED.tsv'))
ca = os.path.join(FIX, 'pki', 'roots.pem')
by_file = {}
for r in exp:
    by_file.setdefault(r['file'], []).append(r)

for name, want in sorted(by_file.items()):
    path = os.path.join(FIX, name)
    rc, recs, err = inspect([path], ca)
    if name in NOT_PE:
        t.eq(rc, 1, name + ': exit status 1')
        t.ok(name in err and NOT_PE[name] in err, name + ': message names the file and the reason', err)
        t.eq(recs, [], name + ': no record')
        continue
    t.eq(rc, 0, name + ': exit status 0')
    if not t.eq(len(recs), len(want), name + ': one record per signature'):
        continue
    for rec, row in zip(recs, want):
        label = '%s[%s]' % (name, row['sig_index'] or 0)
        check_row(rec, row, label, row['trusted_with_test_roots'] == '1')
        t.eq(rec['Anomalies'], ANOMALIES.get(name, []), label + ' Anomalies')
        t.eq(rec['FileName'], name, label + ' FileName')
        t.eq(rec['FolderPath'], os.path.realpath(FIX), label + ' FolderPath')
        t.ok(len(rec['DeviceId']) == 40 and all(c in '0123456789abcdef' for c in rec['DeviceId']),
             label + ' DeviceId is 40 lowercase hex')
        t.ok(rec['DeviceName'] == rec['DeviceName'].lower() and rec['DeviceName'], label + ' DeviceName lowercase')
        t.ok(rec['Timestamp'].endswith('Z'), label + ' Timestamp is UTC')
        if not rec['IsTrusted']:
            t.ok(rec['TrustError'], label + ' TrustError says why not trusted')

# Several files in one run: failures reported, the rest still inspected, exit 1.
rc, recs, err = inspect([os.path.join(FIX, 'notpe.txt'), os.path.join(FIX, 'nested.exe'),
                         os.path.join(FIX, 'missing-file.exe')], ca)
t.eq(rc, 1, 'mixed run: exit 1 when any file failed')
t.eq([r['Signer'] for r in recs], ['MMSoft Design Ltd.', 'Contoso Tools'], 'mixed run: the good file is still reported')
t.ok('missing-file.exe' in err and 'notpe.txt' in err, 'mixed run: each failure named on stderr', err)

# --signer-only: the same identity, no digests, no trust.
rc, full, _ = inspect([os.path.join(FIX, 'nested.exe')], ca)
rc2, quick, _ = inspect([os.path.join(FIX, 'nested.exe')], ca, ['--signer-only'])
t.eq(rc2, 0, '--signer-only exit 0')
for key in ('Signer', 'SignerDN', 'Issuer', 'CertificateSerialNumber', 'SignerHash', 'IssuerHash',
            'CertificateCreationTime', 'CertificateExpirationTime', 'DigestAlgorithm', 'SignatureIndex'):
    t.eq([r[key] for r in quick], [r[key] for r in full], '--signer-only keeps ' + key)
for key in ('DigestMatches', 'IsTrusted', 'SHA1', 'SHA256'):
    t.eq([r[key] for r in quick], [None, None], '--signer-only leaves %s null' % key)

# Without a CA file nothing is trusted, and the record says why.
rc, recs, _ = inspect([os.path.join(FIX, 'mmsoft-sha256-ts.exe')])
t.eq([r['IsTrusted'] for r in recs], [False], 'no --ca-file: not trusted')
t.eq(recs[0]['TrustError'], 'no trust store (no ca_file, and no OS root store)', 'no --ca-file: reason given')

# Usage errors exit 2 with a message.
for args, what in (([], 'no FILE'), (['--bogus', 'x'], 'unknown option'), (['--ca-file'], 'missing value'),
                   (['--ca-file', '/nonexistent.pem', 'x'], 'unreadable CA file')):
    p = subprocess.run([SW, 'inspect'] + args, capture_output=True, text=True)
    t.ok(p.returncode == 2 and p.stderr.strip(), 'usage error (%s): exit 2 and a message' % what, p.stderr)

# The readable table: one block per signature, hostile bytes escaped.
p = subprocess.run([SW, 'inspect', '--ca-file', ca, os.path.join(FIX, 'nested.exe')], capture_output=True,
                   text=True)
t.ok(p.returncode == 0 and p.stdout.count('[signature ') == 2 and 'Contoso Tools' in p.stdout,
     'table output: a block per signature')
t.ok(all(ch == '\n' or ch >= ' ' for ch in p.stdout), 'table output: no raw control characters')

# --- the real corpus ----------------------------------------------------
truth = os.path.join(CORPUS, 'TRUTH.tsv')
if not os.path.exists(truth):
    t.skip('../shared/corpus is absent: real-file checks not run')
else:
    # Trust expectations from the corpus README: Microsoft (PCA 2011,
    # timestamped inside its validity) and DigiCert (timestamped) files
    # chain to code-signing-roots.pem; signtool.exe's 1997 root is not in
    # it; the EFI files chain to the Debian Secure Boot CA.
    trusted = {'conpty.dll': True, 'snoretoast-x64.exe': True, 'signtool.exe': False,
               'fwupdx64.efi.signed': True, 'fbx64.efi.signed': True}
    ms_root = {'conpty.dll': True}
    tr = rows(truth)
    files = sorted({r['file'] for r in tr})
    for name in files:
        want = [r for r in tr if r['file'] == name]
        ca_c = os.path.join(CORPUS, 'debian-secure-boot-ca.pem' if name.endswith('.efi.signed')
                            else 'code-signing-roots.pem')
        rc, recs, err = inspect([os.path.join(CORPUS, name)], ca_c)
        t.eq(rc, 0, 'corpus %s: exit 0' % name)
        if not t.eq(len(recs), len(want), 'corpus %s: one record per signature' % name):
            continue
        for rec, row in zip(recs, want):
            label = 'corpus %s[%s]' % (name, row['sig_index'])
            check_row(rec, row, label, trusted.get(name))
            t.eq(rec['Anomalies'], [], label + ' no anomalies')
            t.eq(rec['IsRootSignerMicrosoft'], ms_root.get(name, False), label + ' IsRootSignerMicrosoft')
t.done()
