#!/usr/bin/env python3
"""The stored summary equals an independent computation.

For randomized record sets (timestamps over 10 days, three devices, many
signers: real-looking names for every needle of the rule pack and
near-misses of each), records go through the real pipeline into a real
SQLite store (tests/tools/sw_feed), then `signwatch summary` at a chosen
time (SIGNWATCH_TEST_NOW, the documented test clock) is compared, rule by
rule, with kqlref.py's computation from KQL's definitions.

usage: test_summary_reference.py SIGNWATCH SW_FEED RULES_DIR
"""
import datetime
import json
import os
import random
import re
import subprocess
import sys
import tempfile

import kqlref
from tap import Tap

SW, FEED, PACK = sys.argv[1:4]
t = Tap()


def load_pack():
    """(rule id, name, needles) from the pack's queries, read as text."""
    rules = []
    for f in sorted(os.listdir(PACK)):
        if not f.endswith('.yaml'):
            continue
        text = open(os.path.join(PACK, f), encoding='utf-8').read()
        rid = re.search(r'^id:\s*(\S+)', text, re.M).group(1)
        name = re.search(r'^name:\s*(.+)$', text, re.M).group(1).strip()
        m = re.search(r"Signer has_any \(([^)]*)\)", text)
        if m:
            needles = re.findall(r"'([^']*)'", m.group(1))
        else:
            needles = [re.search(r"Signer has '([^']*)'", text).group(1)]
        rules.append((rid, name, needles))
    return rules


def near_misses(n):
    out = ['X' + n, n + 's', n.replace(' ', ''), n.replace(' ', '-', 1) if ' ' in n else n + '0',
           n[:-1] if len(n) > 3 else n + 'z']
    return [o for o in out if o != n]


def real_looking(n, rng):
    forms = [n, n + ' Ltd.', n + ', Inc.', 'The ' + n + ' Company', n.upper(), n.lower(), n + ' (Europe)']
    return rng.choice(forms)


def iso(ms):
    d = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    s = d.strftime('%Y-%m-%dT%H:%M:%S')
    return s + ('.%03dZ' % (ms % 1000) if ms % 1000 else 'Z')


rules = load_pack()
t.ok(len(rules) >= 40, 'rule pack has a rule per RMM tool (%d)' % len(rules))
NOW = 1796212800000  # 2026-12-01T12:00:00Z
devices = [('a' * 40, 'ws1.corp.example'), ('b' * 40, 'ws2.corp.example'), ('c' * 40, 'laptop7')]

for seed in range(5):
    rng = random.Random(seed)
    signers = []
    for _, _, needles in rules:
        for n in needles:
            signers.append(real_looking(n, rng))
            signers.extend(near_misses(n))
    signers += ['Microsoft Corporation', 'Google LLC', 'Mozilla Corporation', '', 'MMSoft Design Ltd.']
    recs = []
    for k in range(1500):
        dev = rng.choice(devices)
        ts = NOW - rng.randrange(10 * 86400000)
        if k % 97 == 0:  # exactly on the window's edges
            ts = NOW - 5 * 86400000 if k % 2 else NOW
        recs.append({'Timestamp': ts, 'DeviceId': dev[0], 'DeviceName': dev[1], 'IsSigned': True,
                     'Signer': rng.choice(signers), 'FileName': 'f%d.exe' % k, 'FolderPath': '/x'})
    recs.sort(key=lambda r: r['Timestamp'])
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, 'sw.db')
        feed_in = ''.join(json.dumps(dict(r, Timestamp=iso(r['Timestamp']))) + '\n' for r in recs)
        p = subprocess.run([FEED, db, PACK], input=feed_in, capture_output=True, text=True)
        if not t.ok(p.returncode == 0, 'seed %d: %d records fed through the pipeline' % (seed, len(recs)),
                    p.stderr):
            continue
        ids = [int(x) for x in p.stdout.split()]
        per_dev = {}
        for r, i in zip(recs, ids):
            per_dev.setdefault(r['DeviceId'], []).append(i)
        t.ok(len(ids) == len(recs) and all(v == list(range(1, len(v) + 1)) for v in per_dev.values()),
             'seed %d: ReportIds count 1, 2, ... per device, never reused' % seed)
        for r, i in zip(recs, ids):
            r['ReportId'] = i
        env = dict(os.environ, SIGNWATCH_TEST_NOW=iso(NOW))
        p = subprocess.run([SW, 'summary', '--db', db, '--rules', PACK, '--json'], capture_output=True,
                           text=True, env=env)
        if not t.ok(p.returncode == 0, 'seed %d: signwatch summary runs' % seed, p.stderr):
            continue
        got = {}
        for line in p.stdout.splitlines():
            o = json.loads(line)
            got.setdefault(o['RuleId'], {})[(o['DeviceId'], o['DeviceName'])] = o
        mismatches = []
        for rid, name, needles in rules:
            # The rule's own where: Timestamp between (now(-5d)..now()) as
            # seen when the record was observed (always true then), and the
            # signer predicate; the summary's window is applied at NOW.
            matches = [r for r in recs if kqlref.has_any(r['Signer'], needles)]
            want = kqlref.summarize(matches, NOW)
            have = got.get(rid, {})
            if set(want) != set(have):
                mismatches.append('%s: devices %s != %s' % (name, sorted(want), sorted(have)))
                continue
            for key, w in want.items():
                h = have[key]
                exp = {'FirstSeen': iso(w['FirstSeen']), 'LastSeen': iso(w['LastSeen']), 'Report': w['Report'],
                       'Count': w['Count']}
                act = {'FirstSeen': h['FirstSeen'], 'LastSeen': h['LastSeen'], 'Report': sorted(h['Report']),
                       'Count': h['Count']}
                if exp != act:
                    mismatches.append('%s %s:\n  want %s\n  got  %s' % (name, key, exp, act))
        t.ok(not mismatches, 'seed %d: every rule\'s summary equals the reference (%d rules, %d rows)'
             % (seed, len(rules), sum(len(v) for v in got.values())), '\n'.join(mismatches[:5]))
        total = sum(len(v) for v in got.values())
        t.ok(total > 0, 'seed %d: some summaries are non-empty' % seed)
t.done()
