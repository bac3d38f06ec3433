#!/usr/bin/env python3
"""signwatch scan / summary / rules over real trees and a real SQLite
store in temporary folders.

usage: test_scan.py SIGNWATCH FIXTURES_DIR DEMO_DIR RULES_DIR
"""
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from tap import Tap

SW, FIX, DEMO, PACK = sys.argv[1:5]
CA = os.path.join(FIX, 'pki', 'roots.pem')
PULSEWAY = '6192b741-4540-4416-8dbb-ce0405166d0a'
t = Tap()
tmp = tempfile.mkdtemp(prefix='sw-scan-')


def run(*args, **kw):
    return subprocess.run([SW] + list(args), capture_output=True, text=True, **kw)


def summary(db, *extra):
    p = run('summary', '--db', db, '--json', *extra)
    return p, [json.loads(l) for l in p.stdout.splitlines() if l.strip()]


# --- the demo tree ------------------------------------------------------
db = os.path.join(tmp, 'demo', 'sw.db')  # its folder does not exist yet
p = run('scan', '--db', db, '--ca-file', CA, '--json', DEMO)
t.eq(p.returncode, 0, 'demo scan: exit 0')
lines = [json.loads(l) for l in p.stdout.splitlines()]
recs = [l for l in lines if 'MatchedRules' in l]
sums = [l for l in lines if 'RuleId' in l]
t.eq(sorted(r['FileName'] for r in recs), ['PCMonitorSetup.exe', 'pcmonitor-patched.dll', 'pcmonitorsrv.exe'],
     'demo scan: the three MMSoft files match')
t.ok(all(r['MatchedRules'] == [PULSEWAY] for r in recs), 'demo scan: matched by the Pulseway rule')
t.eq([r['IsTrusted'] for r in sorted(recs, key=lambda r: r['FileName'])], [True, False, True],
     'demo scan: the tampered copy matches but is not trusted')
t.eq(len(sums), 1, 'demo scan: one summary row')
if sums:
    s = sums[0]
    t.eq(list(s.keys()), ['RuleId', 'RuleName', 'DeviceId', 'DeviceName', 'FirstSeen', 'LastSeen', 'Report', 'Count'],
         'summary row has the KQL output shape')
    t.eq(s['Count'], 3, 'summary Count')
    t.eq(sorted(s['Report']), sorted(r['ReportId'] for r in recs), 'summary Report is the set of ReportIds')
    t.eq(s['FirstSeen'], min(r['Timestamp'] for r in recs), 'summary FirstSeen = min(Timestamp)')
    t.eq(s['LastSeen'], max(r['Timestamp'] for r in recs), 'summary LastSeen = max(Timestamp)')
t.eq(oct(os.stat(db).st_mode & 0o777), '0o600', 'store file is owner-only')
t.eq(oct(os.stat(os.path.dirname(db)).st_mode & 0o777), '0o700', 'store folder created owner-only')
con = sqlite3.connect(db)
t.eq(con.execute('PRAGMA journal_mode').fetchone()[0], 'wal', 'store is in WAL mode')
con.close()

# Again: nothing changed, nothing new stored; the summary is the same.
p = run('scan', '--db', db, '--ca-file', CA, '--json', DEMO)
again = [json.loads(l) for l in p.stdout.splitlines()]
t.eq([l for l in again if 'MatchedRules' in l], [], 'rescan: unchanged files are not recorded again')
t.eq([l for l in again if 'RuleId' in l], sums, 'rescan: the summary is unchanged')
p, rows = summary(db)
t.eq(rows, sums, 'summary in a new process equals the scan\'s (the store persists)')
p, rows = summary(db, '--rule', PULSEWAY)
t.eq(rows, sums, 'summary --rule selects the rule')
p, rows = summary(db, '--rule', 'no-such-rule')
t.ok(p.returncode == 2 and 'no-such-rule' in p.stderr, 'summary --rule unknown: exit 2 and named', p.stderr)
p = run('summary', '--db', os.path.join(tmp, 'missing.db'))
t.ok(p.returncode == 2 and 'missing.db' in p.stderr, 'summary of a missing store: exit 2 and named', p.stderr)
t.ok(not os.path.exists(os.path.join(tmp, 'missing.db')), 'summary of a missing store creates nothing')

# A changed file is scanned again and gets a new ReportId.
tree = os.path.join(tmp, 'tree')
shutil.copytree(DEMO, tree)
db2 = os.path.join(tmp, 'tree.db')
run('scan', '--db', db2, '--ca-file', CA, tree)
target = os.path.join(tree, 'Users', 'alice', 'Downloads', 'PCMonitorSetup.exe')
with open(target, 'ab') as f:
    f.write(b'\0' * 8)  # appended bytes: a new observation (and a DataAfterTable anomaly)
p = run('scan', '--db', db2, '--ca-file', CA, '--json', tree)
new = [json.loads(l) for l in p.stdout.splitlines() if 'MatchedRules' in l]
t.eq([r['FileName'] for r in new], ['PCMonitorSetup.exe'], 'changed file: recorded again, alone')
t.ok(new and new[0]['Anomalies'] == ['DataAfterTable'] and new[0]['IsTrusted'] is False,
     'changed file: appended data is an anomaly, not trusted')
p, rows = summary(db2)
t.eq(rows[0]['Count'] if rows else None, 4, 'changed file: the summary counts the new observation')

# Links are not followed out of the tree.
os.symlink(os.path.join(FIX, 'mmsoft-md5.exe'), os.path.join(tree, 'link.exe'))
os.symlink(FIX, os.path.join(tree, 'linkdir'))
p = run('scan', '--db', db2, '--ca-file', CA, '--json', tree)
t.eq([json.loads(l) for l in p.stdout.splitlines() if 'MatchedRules' in l], [],
     'symbolic links to files and folders are not followed')

# Bad input loses nothing: a bad rule stops the scan before the store is touched.
bad_rules = os.path.join(tmp, 'badrules')
os.makedirs(bad_rules)
shutil.copy(os.path.join(PACK, 'TeamViewer_filesig.yaml'), bad_rules)
with open(os.path.join(bad_rules, 'bad.yaml'), 'w') as f:
    f.write('id: x1\nname: bad\nquery: |\n  DeviceFileCertificateInfo\n  | where Signer matches regex "x"\n')
db3 = os.path.join(tmp, 'never.db')
p = run('scan', '--db', db3, '--rules', bad_rules, DEMO)
t.ok(p.returncode == 2 and 'bad.yaml:5:' in p.stderr, 'scan with a bad rule: exit 2, file:line named', p.stderr)
t.ok(not os.path.exists(db3), 'scan with a bad rule: the store is not created')
p = run('rules', 'check', bad_rules)
t.ok(p.returncode == 2 and 'TeamViewer' in p.stdout and 'bad.yaml' in p.stderr,
     'rules check: the good rule still loads, the bad one is named, exit 2', p.stdout + p.stderr)
p = run('scan', '--db', db3, os.path.join(tmp, 'no-such-dir'))
t.ok(p.returncode == 2 and 'no-such-dir' in p.stderr, 'scan of a missing path: exit 2', p.stderr)
p = run('rules', 'list', PACK)
t.ok(p.returncode == 0 and p.stdout.count('predicate') >= 40, 'rules list: the whole pack loads')

# --- SIGKILL during a scan, several rounds: nothing lost, nothing twice -----
big = os.path.join(tmp, 'big')
names = ['mmsoft-sha256-ts.exe', 'contoso-sha256.exe', 'hello64.exe', 'notpe.txt', 'nested.exe']
for i in range(400):
    d = os.path.join(big, 'd%02d' % (i % 20))
    os.makedirs(d, exist_ok=True)
    for n in names:
        shutil.copy(os.path.join(FIX, n), os.path.join(d, '%d-%s' % (i, n)))
dbk = os.path.join(tmp, 'kill.db')
kills = 0
for delay in (0.15, 0.3, 0.5):
    proc = subprocess.Popen([SW, 'scan', '--db', dbk, '--ca-file', CA, big], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        kills += 1
    proc.wait()
t.comment('killed %d scans part-way' % kills)
p = run('scan', '--db', dbk, '--ca-file', CA, big)
t.eq(p.returncode, 0, 'after SIGKILLs: the store opens and the scan completes')
con = sqlite3.connect(dbk)
rows_ = con.execute('SELECT FolderPath, FileName, SignatureIndex, count(*) FROM records '
                    'GROUP BY FolderPath, FileName, SignatureIndex').fetchall()
dups = [r for r in rows_ if r[3] != 1]
files = {(r[0], r[1]) for r in rows_}
want_pe = 400 * 4  # every PE copy; the text files give no record
t.eq(len(files), want_pe, 'after SIGKILLs: every PE file recorded')
t.eq(dups, [], 'after SIGKILLs: no signature recorded twice')
mm = con.execute("SELECT count(*) FROM records WHERE Signer = 'MMSoft Design Ltd.'").fetchone()[0]
ids = con.execute('SELECT DeviceId, count(*), count(DISTINCT ReportId) FROM records GROUP BY DeviceId').fetchall()
con.close()
t.ok(all(r[1] == r[2] for r in ids), 'after SIGKILLs: ReportIds unique per device')
p, rows = summary(dbk)
t.eq(rows[0]['Count'] if rows else None, mm, 'after SIGKILLs: the summary counts every stored match')
t.eq(len(rows[0]['Report']) if rows else None, mm, 'after SIGKILLs: the summary has every ReportId')

shutil.rmtree(tmp, ignore_errors=True)
t.done()
