#!/usr/bin/env python3
"""signwatch run (the agent) against the real binary on temporary folders.

usage: test_agent.py SIGNWATCH FIXTURES_DIR

Every scenario starts its own agent (log level debug, logs on stderr into a
file) on folders made with tempfile under /tmp, waits for the state it
expects by polling the SQLite store (or the output file / the log) until a
deadline, and stops the agent with SIGTERM, whose exit status must be 0.
python3 standard library only; TAP on stdout.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import Tap  # noqa: E402

SW, FIX = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
CA = os.path.join(FIX, 'pki', 'roots.pem')
MMSOFT = open(os.path.join(FIX, 'mmsoft-sha256-ts.exe'), 'rb').read()   # signed, Pulseway rule
HELLO = open(os.path.join(FIX, 'hello64.exe'), 'rb').read()             # unsigned PE32+
NOTPE = open(os.path.join(FIX, 'notpe.txt'), 'rb').read()
PULSEWAY_YARA = 'Pulseway_Signed_Binary'
SETTLE_MS = 300  # the default, written into every config explicitly
QUIET = 1.0      # a store unchanged this long (> settle + walk) is at rest

t = Tap()
TMP = tempfile.mkdtemp(prefix='sw-agent-', dir='/tmp')
T0 = time.monotonic()


def sha256(b):
    return hashlib.sha256(b).hexdigest()


def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


def wait_for(fn, timeout, step=0.05):
    """Poll fn() until it returns something truthy or the deadline passes;
    returns the last value."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def yaml_list(v):
    return '[' + ', '.join(json.dumps(x) for x in v) + ']'


class Agent:
    """One agent: its folder, config, store, output file and log."""

    def __init__(self, name, roots=None, store=None, output=None, **extra):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir)
        self.roots = roots or [os.path.join(self.dir, 'root')]
        for r in self.roots:
            os.makedirs(r, exist_ok=True)
        self.root = self.roots[0]
        self.store = store or os.path.join(self.dir, 'state', 'sw.db')
        self.output = output or os.path.join(self.dir, 'out', 'records.jsonl')
        self.config = os.path.join(self.dir, 'signwatch.yaml')
        self.logpath = os.path.join(self.dir, 'agent.log')
        self.extra = extra
        self.proc = None
        self.write_config()

    def write_config(self, roots=None, **extra):
        kv = dict(self.extra)
        kv.update(extra)
        lines = ['roots: ' + yaml_list(roots or self.roots),
                 'store: ' + json.dumps(self.store),
                 'rules: []',
                 'ca_file: ' + json.dumps(CA),
                 'log_level: debug',
                 'settle_ms: %d' % SETTLE_MS,
                 'threads: 2',
                 'cpu_budget_percent: 100']
        for k, v in kv.items():
            lines = [l for l in lines if not l.startswith(k + ':')]
            lines.append('%s: %s' % (k, yaml_list(v) if isinstance(v, list) else v))
        lines += ['outputs:', '  - type: file', '    path: ' + json.dumps(self.output),
                  '    send_records: all']
        tmp = self.config + '.new'
        with open(tmp, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        os.chmod(tmp, 0o600)
        os.rename(tmp, self.config)

    def start(self, env=None, ready=True):
        e = dict(os.environ)
        e.update(env or {})
        self.logpos = self.log_size()
        self.logf = open(self.logpath, 'ab')
        self.proc = subprocess.Popen([SW, 'run', '--config', self.config], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf, env=e)
        if ready:
            # the watches are in place once "watching" is logged; the
            # baseline walk of each root is done at "walked ROOT:"
            ok = wait_for(lambda: all(('walked %s:' % r) in self.log_since() for r in self.roots)
                          or self.proc.poll() is not None, 20)
            if self.proc.poll() is not None or not ok:
                raise RuntimeError('agent did not start: rc %r\n%s' % (self.proc.poll(), self.log_since()))
        return self

    def log_size(self):
        try:
            return os.path.getsize(self.logpath)
        except OSError:
            return 0

    def log(self):
        try:
            with open(self.logpath, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def log_since(self):
        """The log of the current run only."""
        try:
            with open(self.logpath, 'rb') as f:
                f.seek(self.logpos)
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if not self.proc:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(sig)
        try:
            rc = p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = 'timeout (killed)'
        self.logf.close()
        return rc

    def kill(self):
        return self.stop(signal.SIGKILL)

    # ---- the store ----
    def q(self, sql, args=()):
        if not os.path.exists(self.store):
            return []
        try:
            con = sqlite3.connect('file:%s?mode=ro' % self.store, uri=True, timeout=5)
            try:
                return con.execute(sql, args).fetchall()
            finally:
                con.close()
        except sqlite3.Error:
            return []

    def nrecords(self):
        r = self.q('SELECT count(*) FROM records')
        return r[0][0] if r else 0

    def per_path(self, under=None):
        """{path: [(SignatureIndex, SHA256, YaraMatches), ...]} of the records."""
        out = {}
        for folder, name, idx, sha, yara in self.q(
                'SELECT FolderPath, FileName, SignatureIndex, SHA256, YaraMatches FROM records ORDER BY id'):
            p = os.path.join(folder, name)
            if under is None or p.startswith(under.rstrip('/') + '/'):
                out.setdefault(p, []).append((idx, sha, yara))
        return out

    def quiesce(self, quiet=QUIET, timeout=60):
        """Wait until the number of records stayed the same for quiet
        seconds (the agent has nothing left that would record)."""
        end = time.monotonic() + timeout
        last, since = self.nrecords(), time.monotonic()
        while time.monotonic() < end:
            time.sleep(0.1)
            n = self.nrecords()
            if n != last:
                last, since = n, time.monotonic()
            elif time.monotonic() - since >= quiet:
                return True
        return False

    def output_lines(self):
        try:
            with open(self.output) as f:
                return [json.loads(l) for l in f if l.strip()]
        except (OSError, ValueError):
            return []


def recorded(a, paths):
    """A predicate: every path has at least one record."""
    def f():
        have = a.per_path()
        return all(p in have for p in paths)
    return f


def once_each(a, paths, name):
    have = a.per_path()
    missing = [p for p in paths if p not in have]
    dups = {p: len(have[p]) for p in paths if len(have.get(p, [])) > 1}
    t.ok(not missing, name + ': every file recorded',
         'missing %d: %s' % (len(missing), missing[:5]))
    t.ok(not dups, name + ': none recorded twice',
         '%d paths with more than one record, e.g. %s' % (len(dups), list(dups.items())[:5]))


def stop_ok(a, name):
    rc = a.stop()
    t.eq(rc, 0, name + ': SIGTERM stops the agent with exit 0')


SCENARIOS = []


def scenario(fn):
    SCENARIOS.append(fn)
    return fn


# ---------------------------------------------------------------------------
@scenario
def nested_folders():
    """Files dropped into nested folders created after start; PE by content
    whatever the extension; YaraMatches of the MMSoft fixture."""
    a = Agent('nested').start()
    try:
        r = a.root
        files = {
            r + '/a/one.exe': MMSOFT,
            r + '/a/b/two.exe': HELLO,
            r + '/a/b/c/three.exe': MMSOFT,
            r + '/a/b/c/d/e/f/four.dll': HELLO,
            r + '/x/readme.txt': HELLO,  # a PE with a text extension
        }
        for p, data in files.items():
            put(p, data)  # makedirs then write at once: files land before the watch
        time.sleep(0.2)
        later = r + '/a/b/c/later.exe'  # a folder already watched
        put(later, MMSOFT)
        files[later] = MMSOFT
        put(r + '/a/b/notpe.exe', NOTPE)  # not PE: no record
        ok = wait_for(recorded(a, files), 20)
        t.ok(ok, 'nested: files in folders created after start are recorded', sorted(a.per_path()))
        a.quiesce()
        once_each(a, files, 'nested')
        have = a.per_path()
        t.ok(r + '/a/b/notpe.exe' not in have, 'nested: a non-PE .exe gives no record')
        t.ok(all(have.get(p, [(0, None, None)])[0][1] == sha256(d) for p, d in files.items()),
             'nested: SHA256 of each record is the file\'s')
        y = have.get(r + '/a/one.exe', [(0, 0, None)])[0][2]
        t.ok(y is not None and PULSEWAY_YARA in json.loads(y),
             'yara: the MMSoft fixture\'s record has YaraMatches %s' % PULSEWAY_YARA, 'YaraMatches %r' % y)
        y = have.get(r + '/a/b/two.exe', [(0, 0, None)])[0][2]
        t.ok(y is None or PULSEWAY_YARA not in json.loads(y), 'yara: the unsigned fixture has no Pulseway match',
             'YaraMatches %r' % y)
        out = [o for o in a.output_lines() if o.get('FileName') == 'one.exe']
        t.ok(out and PULSEWAY_YARA in (out[0].get('YaraMatches') or []),
             'yara: the output file\'s record carries YaraMatches too', out[:1])
    finally:
        stop_ok(a, 'nested')


@scenario
def slow_write():
    """A file written slowly over 2 s: one record, after it completes."""
    a = Agent('slow').start()
    try:
        p = a.root + '/slow.exe'
        chunks = 20
        step = -(-len(MMSOFT) // chunks)
        early = []
        with open(p, 'wb') as f:
            for i in range(chunks):
                f.write(MMSOFT[i * step:(i + 1) * step])
                f.flush()
                time.sleep(0.1)  # 2 s in all; each pause below settle_ms
                if a.per_path().get(p):
                    early.append(i)
        closed = time.time()
        t.ok(not early, 'slow write: no record while the file is still being written',
             'records seen after chunks %s' % early)
        ok = wait_for(lambda: a.per_path().get(p), 10)
        t.ok(ok, 'slow write: recorded after close')
        a.quiesce()
        recs = a.per_path().get(p, [])
        t.eq(len(recs), 1, 'slow write: exactly one record')
        t.eq(recs[0][1] if recs else None, sha256(MMSOFT), 'slow write: its SHA256 is the complete file\'s')
        ts = a.q('SELECT Timestamp FROM records WHERE FileName = ?', ('slow.exe',))
        t.ok(ts and all(x[0] / 1000.0 >= closed - 0.05 for x in ts), 'slow write: recorded after close()',
             'record Timestamps %s, close at %.3f' % (ts, closed))
    finally:
        stop_ok(a, 'slow write')


@scenario
def rename_into_place():
    """Write to a temporary name then rename into place."""
    a = Agent('rename').start()
    try:
        names = []
        for i in range(5):
            tmp = a.root + '/dl/setup%d.exe.tmp' % i
            final = a.root + '/dl/setup%d.exe' % i
            put(tmp, MMSOFT)
            os.rename(tmp, final)  # before it could settle
            names.append((tmp, final))
        ok = wait_for(recorded(a, [f for _, f in names]), 15)
        t.ok(ok, 'rename: the final names are recorded')
        a.quiesce()
        have = a.per_path()
        once_each(a, [f for _, f in names], 'rename')
        t.ok(not any(tmp in have for tmp, _ in names), 'rename: the temporary names give no record',
             sorted(have))
        # a rename within the root of a file already recorded is a new path
        os.rename(names[0][1], a.root + '/dl/renamed.exe')
        ok = wait_for(lambda: a.per_path().get(a.root + '/dl/renamed.exe'), 10)
        t.ok(ok, 'rename: a recorded file renamed within the root is recorded under its new name')
    finally:
        stop_ok(a, 'rename')


@scenario
def folder_moved_in():
    """A whole folder (files and subfolders) moved into a root from outside."""
    a = Agent('movein').start()
    try:
        stage = os.path.join(a.dir, 'outside', 'pkg')
        rel = []
        for i in range(30):
            sub = ['', 'bin', 'bin/x64', 'lib/deep/er'][i % 4]
            rel.append(os.path.join(sub, 'f%02d.exe' % i))
            put(os.path.join(stage, rel[-1]), MMSOFT if i % 3 == 0 else HELLO)
        put(os.path.join(stage, 'lib/readme.txt'), NOTPE)
        dest = a.root + '/pkg'
        os.rename(stage, dest)
        paths = [os.path.join(dest, p) for p in rel]
        ok = wait_for(recorded(a, paths), 20)
        t.ok(ok, 'move in: every file of the moved folder is recorded',
             'missing %s' % [p for p in paths if p not in a.per_path()][:5])
        # the moved folders are watched: a file dropped into one is seen
        late = dest + '/lib/deep/er/late.exe'
        put(late, HELLO)
        ok = wait_for(lambda: a.per_path().get(late), 10)
        t.ok(ok, 'move in: a file dropped later into a moved-in subfolder is recorded')
        a.quiesce()
        once_each(a, paths + [late], 'move in')
    finally:
        stop_ok(a, 'move in')


@scenario
def hard_links():
    """A hard link counts as a new file, recorded under its path."""
    a = Agent('hardlink').start()
    try:
        outside = os.path.join(a.dir, 'outside', 'h.exe')
        put(outside, MMSOFT)
        inroot = a.root + '/in/h.exe'
        os.makedirs(os.path.dirname(inroot))
        os.link(outside, inroot)
        ok = wait_for(lambda: a.per_path().get(inroot), 10)
        t.ok(ok, 'hard link: a link into the root from outside is recorded under its path')
        orig = a.root + '/orig.exe'
        put(orig, HELLO)
        wait_for(lambda: a.per_path().get(orig), 10)
        a.quiesce()
        link = a.root + '/sub/link.exe'
        os.makedirs(os.path.dirname(link))
        time.sleep(0.1)
        os.link(orig, link)
        ok = wait_for(lambda: a.per_path().get(link), 10)
        t.ok(ok, 'hard link: a second link to a recorded file is recorded under its own path')
        a.quiesce()
        have = a.per_path()
        t.eq(len(have.get(orig, [])), 1,
             'hard link: linking does not record the unchanged original again (same content)')
        t.eq([r[1] for r in have.get(link, [])], [sha256(HELLO)], 'hard link: the link\'s record')
    finally:
        stop_ok(a, 'hard link')


def make_files(folder, n, data, per_dir=1000):
    paths = []
    for i in range(n):
        p = os.path.join(folder, 'd%02d' % (i // per_dir), 'f%05d.exe' % i) if per_dir else \
            os.path.join(folder, 'f%05d.exe' % i)
        if per_dir and i % per_dir == 0:
            os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, 'wb') as f:
            f.write(data)
        paths.append(p)
    return paths


def burst_check(a, paths, name, timeout):
    start = time.monotonic()
    want = set(paths)

    def done():
        return len(want & set(a.per_path())) == len(want)
    ok = wait_for(done, timeout, 0.5)
    t.comment('%s: %d files recorded in %.1f s' % (name, len(want & set(a.per_path())),
                                                    time.monotonic() - start))
    t.ok(ok, '%s: every one of %d files recorded within %d s' % (name, len(paths), timeout))
    a.quiesce()
    rows = a.q('SELECT FolderPath, FileName, count(*) FROM records GROUP BY FolderPath, FileName')
    mine = [(os.path.join(f, n), c) for f, n, c in rows if os.path.join(f, n) in want]
    t.eq(len(mine), len(paths), '%s: distinct (FolderPath, FileName) == %d' % (name, len(paths)))
    dups = [(p, c) for p, c in mine if c > 1]
    t.ok(not dups, '%s: no file recorded twice' % name, '%d duplicated, e.g. %s' % (len(dups), dups[:5]))


@scenario
def burst_10000():
    """10,000 PE files in one burst: staged outside and moved in, then
    written directly into the root."""
    N = 10000
    a = Agent('burst').start()
    try:
        stage = os.path.join(a.dir, 'stage', 'many')
        paths = make_files(stage, N, HELLO)
        os.rename(stage, a.root + '/many')
        paths = [p.replace(stage, a.root + '/many', 1) for p in paths]
        burst_check(a, paths, 'burst moved in', 120)
        paths = make_files(a.root, N, HELLO, per_dir=0)
        burst_check(a, paths, 'burst written in the root', 120)
        m = re.findall(r'inotify queue overflow \((\d+)\)', a.log())
        t.comment('burst: overflow lines in the log: %d' % len(m))
    finally:
        stop_ok(a, 'burst')


@scenario
def overflow():
    """An inotify overflow forced with the test-only pause: every file still
    recorded, the overflow logged once with a count."""
    # Files straight in the root (its watch exists; a new subfolder's would
    # not, while paused): CREATE + MODIFY + CLOSE_WRITE each, 3 events a file.
    try:
        maxq = int(open('/proc/sys/fs/inotify/max_queued_events').read())
    except OSError:
        maxq = 16384
    N = maxq // 3 + 700
    pause_ms = 8000
    a = Agent('overflow').start(env={'SIGNWATCH_TEST_WATCH_PAUSE_MS': str(pause_ms)})
    try:
        t0 = time.monotonic()
        paths = make_files(a.root, N, HELLO, per_dir=0)
        paths += make_files(a.root + '/sub', 300, HELLO)  # a folder created during the pause
        made = time.monotonic() - t0
        t.comment('overflow: %d files (%d events in the root) made in %.1f s while the watcher was paused'
                  % (len(paths), 3 * N, made))
        if made > pause_ms / 1000.0 - 0.5:
            t.comment('overflow: making the files took longer than the pause; the overflow may not happen')
        burst_check(a, paths, 'overflow', 90)
        m = re.findall(r'rescanning (\S+): inotify queue overflow \((\d+)\)', a.log_since())
        t.eq(len(m), 1, 'overflow: logged once', )
        t.ok(m and int(m[0][1]) >= 1 and m[0][0] == a.root, 'overflow: the log line names the root and a count',
             m)
    finally:
        stop_ok(a, 'overflow')


@scenario
def stopped_then_started():
    """Agent stopped, files added and changed, agent started: found; a
    changed file gets a new record, an unchanged one none."""
    a = Agent('restart').start()
    try:
        same, changed = a.root + '/same.exe', a.root + '/changed.exe'
        put(same, HELLO)
        put(changed, MMSOFT)
        wait_for(recorded(a, [same, changed]), 10)
        a.quiesce()
        stop_ok(a, 'restart (first run)')
        added, deep = a.root + '/added.exe', a.root + '/new/dir/deep.exe'
        put(added, MMSOFT)
        put(deep, HELLO)
        with open(changed, 'ab') as f:
            f.write(b'appended while the agent was stopped')
        newsha = sha256(open(changed, 'rb').read())
        a.start()
        ok = wait_for(lambda: recorded(a, [added, deep])() and
                      any(r[1] == newsha for r in a.per_path().get(changed, [])), 20)
        t.ok(ok, 'restart: files added and changed while stopped are found at start')
        a.quiesce()
        have = a.per_path()
        t.eq(len(have.get(added, [])), 1, 'restart: the added file, one record')
        t.eq(len(have.get(deep, [])), 1, 'restart: the added file in a new folder, one record')
        t.eq(sorted(r[1] for r in have.get(changed, [])), sorted([sha256(MMSOFT), newsha]),
             'restart: the changed file has a new record (old and new content)')
        t.eq(len(have.get(same, [])), 1, 'restart: the unchanged file is not recorded again')
        t.ok(re.search(r'walked %s: \d+ files, 3 to scan' % re.escape(a.root), a.log_since()),
             'restart: the warm walk scans only the 3 new or changed files',
             re.findall(r'walked .*', a.log_since()))
    finally:
        stop_ok(a, 'restart')


@scenario
def sigkill_rounds():
    """SIGKILL during a burst, 3 rounds; after a final restart every file
    recorded with its current content, none twice per content version."""
    a = Agent('sigkill')
    versions = {}  # path -> [sha256 of every version written]
    current = {}
    rounds = 3
    try:
        for rnd in range(rounds):
            a.start()
            before = a.nrecords()
            older = sorted(current)[:300]

            def writer():
                for i in range(1500):
                    p = a.root + '/r%d/d%d/f%04d.exe' % (rnd, i // 500, i)
                    data = HELLO + b'round %d file %d' % (rnd, i)
                    put(p, data)
                    versions.setdefault(p, []).append(sha256(data))
                    current[p] = data
                for p in older:  # change files of earlier rounds
                    data = current[p] + b'+changed in round %d' % rnd
                    with open(p, 'wb') as f:
                        f.write(data)
                    versions[p].append(sha256(data))
                    current[p] = data
            th = threading.Thread(target=writer)
            th.start()
            wait_for(lambda: a.nrecords() - before >= 400, 30)
            rc = a.kill()  # mid-burst
            th.join()
            t.eq(rc, -signal.SIGKILL, 'sigkill round %d: killed mid-burst (%d records so far)' %
                 (rnd + 1, a.nrecords()))
        a.start()
        want = {p: sha256(d) for p, d in current.items()}

        def all_current():
            have = a.per_path()
            return all(any(r[1] == s for r in have.get(p, [])) for p, s in want.items())
        ok = wait_for(all_current, 90, 0.5)
        have = a.per_path()
        t.ok(ok, 'sigkill: after the final restart every file is recorded with its current content',
             'missing %d' % sum(1 for p, s in want.items() if not any(r[1] == s for r in have.get(p, []))))
        a.quiesce()
        rows = a.q('SELECT FolderPath, FileName, SignatureIndex, SHA256, count(*) FROM records '
                   'GROUP BY FolderPath, FileName, SignatureIndex, SHA256')
        dups = [r for r in rows if r[4] > 1]
        t.ok(not dups, 'sigkill: at most one record per (path, SignatureIndex, content version)',
             '%d duplicated, e.g. %s' % (len(dups), dups[:3]))
        stray = [r for r in rows if os.path.join(r[0], r[1]) not in versions or
                 r[3] not in versions[os.path.join(r[0], r[1])]]
        t.ok(not stray, 'sigkill: every record is of a complete version that was written', stray[:3])
        con = a.q('PRAGMA integrity_check')
        t.eq(con, [('ok',)], 'sigkill: the store passes integrity_check')
    finally:
        stop_ok(a, 'sigkill (final run)')


@scenario
def config_errors():
    """Each config error: a message naming the key and the file, exit 2."""
    d = os.path.join(TMP, 'config')
    os.makedirs(d)
    root = os.path.join(d, 'root')
    os.makedirs(root)
    afile = os.path.join(d, 'afile')
    put(afile, b'x')
    base = ['store: "%s/sw.db"' % d, 'rules: []',
            'outputs: [{type: file, path: "%s/r.jsonl"}]' % d]
    good_roots = 'roots: ["%s"]' % root
    bad_yar = os.path.join(d, 'bad.yar')
    with open(bad_yar, 'w') as f:
        f.write('rule fine { condition: true }\n\nrule broken {\n  condition:\n    and true\n}\n')
    cases = [
        ('unknown key', [good_roots, 'rootz: ["/tmp"]'] + base, 0o600, ['rootz', "did you mean 'roots'"]),
        ('wrong type', [good_roots, 'settle_ms: "300"'] + base, 0o600, ['settle_ms']),
        ('wrong type (bool)', [good_roots, 'cross_filesystems: yes'] + base, 0o600, ['cross_filesystems']),
        ('relative path', [good_roots, 'store: relative/sw.db', 'rules: []',
                           'outputs: [{type: file, path: "%s/r.jsonl"}]' % d], 0o600, ['store', 'relative/sw.db']),
        ('missing root', ['roots: ["%s/missing"]' % d] + base, 0o600, ['roots[0]', '%s/missing' % d]),
        ('root is a file', ['roots: ["%s", "%s"]' % (root, afile)] + base, 0o600, ['roots[1]', afile]),
        ('world-readable config with a secret',
         [good_roots, 'store: "%s/sw.db"' % d, 'rules: []',
          'outputs:', '  - type: https_json', '    url: https://collector.example.com/x',
          '    bearer_token: s3cr3t-value'], 0o644, ['bearer_token', 'chmod 600']),
        ('yara rule that does not compile', [good_roots, 'yara_rules: ["%s"]' % bad_yar] + base, 0o600,
         [bad_yar + ':5']),
    ]
    for name, lines, mode, needles in cases:
        cfg = os.path.join(d, re.sub(r'\W+', '-', name) + '.yaml')
        with open(cfg, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        os.chmod(cfg, mode)
        for args in (['--check-config'], []):
            what = 'config error, %s (%s)' % (name, 'run --check-config' if args else 'run')
            try:
                p = subprocess.run([SW, 'run', '--config', cfg] + args, capture_output=True, text=True,
                                   timeout=15)
                rc, err = p.returncode, p.stderr
            except subprocess.TimeoutExpired as e:
                rc, err = 'still running after 15 s', (e.stderr or b'').decode('utf-8', 'replace')
            t.ok(rc == 2 and cfg in err and all(n in err for n in needles), what + ': exit 2, names file and key',
                 'rc %r, want 2; want %r and %r in stderr:\n%s' % (rc, cfg, needles, err))
            if 'secret' in name:
                t.ok('s3cr3t-value' not in err, what + ': the secret is not echoed')
    p = subprocess.run([SW, 'run', '--config', os.path.join(d, 'unknown-key.yaml')], capture_output=True,
                       text=True, timeout=15)
    t.ok(p.stderr.endswith('\n'), 'config error: the message ends with a newline', repr(p.stderr[-80:]))
    # `rules` absent: the default rule folder may be missing (CONFIG.md);
    # --check-config must agree with run about that
    cfg = os.path.join(d, 'no-rules-key.yaml')
    with open(cfg, 'w') as f:
        f.write('\n'.join([good_roots, 'store: "%s/sw.db"' % d,
                           'outputs: [{type: file, path: "%s/r.jsonl"}]' % d]) + '\n')
    os.chmod(cfg, 0o600)
    if os.path.isdir('/usr/share/signwatch/rules'):
        t.skip('the default rule folder exists here')
    else:
        p = subprocess.run([SW, 'run', '--config', cfg, '--check-config'], capture_output=True, text=True,
                           timeout=15)
        t.ok(p.returncode == 0, 'check-config: no `rules` key and no default rule folder is valid (as for run)',
             'rc %d\n%s' % (p.returncode, p.stderr))
    if os.geteuid() == 0:
        t.skip('unreadable root: running as root, every folder is readable')
    else:
        locked = os.path.join(d, 'locked')
        os.makedirs(locked)
        os.chmod(locked, 0)
        cfg = os.path.join(d, 'locked.yaml')
        with open(cfg, 'w') as f:
            f.write('\n'.join(['roots: ["%s"]' % locked] + base) + '\n')
        os.chmod(cfg, 0o600)
        p = subprocess.run([SW, 'run', '--config', cfg, '--check-config'], capture_output=True, text=True)
        t.ok(p.returncode == 2 and 'roots[0]' in p.stderr and cfg in p.stderr,
             'config error, unreadable root: exit 2, names file and key', p.stderr)
        os.chmod(locked, 0o700)


@scenario
def sighup_reload():
    """SIGHUP reloads: a second root is watched; queued work is not lost;
    a broken config keeps the running one."""
    a = Agent('sighup', roots=None)
    second = os.path.join(a.dir, 'root2')
    os.makedirs(second)
    a.start()
    try:
        paths = make_files(a.root + '/q', 3000, HELLO)  # work queued when the signal comes
        wait_for(lambda: a.nrecords() >= 100, 20)
        a.write_config(roots=[a.root, second])
        hup = time.monotonic()
        a.proc.send_signal(signal.SIGHUP)
        t.ok(wait_for(lambda: 'reloading %s' % a.config in a.log_since(), 5), 'sighup: reload logged')
        wait_for(lambda: 'scanning every root (configuration reloaded)' in a.log_since(), 60)
        t.comment('sighup: the reload took effect %.1f s after the signal (%d records then)' %
                  (time.monotonic() - hup, a.nrecords()))
        late = second + '/in-new-root.exe'
        put(late, MMSOFT)
        ok = wait_for(lambda: a.per_path().get(late), 60)
        t.ok(ok, 'sighup: a file dropped in the root added by the reload is recorded')
        burst_check(a, paths, 'sighup (work queued at the reload)', 60)
        # after the reload the new root is watched by events too
        late2 = second + '/sub/later.exe'
        put(late2, HELLO)
        t.ok(wait_for(lambda: a.per_path().get(late2), 10), 'sighup: the new root is watched after the reload')
        # a broken config: logged, the running configuration stays
        with open(a.config, 'w') as f:
            f.write('rootz: []\n')
        pos = len(a.log_since())
        a.proc.send_signal(signal.SIGHUP)
        t.ok(wait_for(lambda: 'reload failed' in a.log_since()[pos:], 5),
             'sighup: a broken config is refused and logged', a.log_since()[pos:])
        t.ok(a.proc.poll() is None, 'sighup: the agent keeps running after a failed reload')
        late3 = second + '/after-failed-reload.exe'
        put(late3, HELLO)
        t.ok(wait_for(lambda: a.per_path().get(late3), 10), 'sighup: still recording after a failed reload')
    finally:
        stop_ok(a, 'sighup')


@scenario
def own_files_not_scanned():
    """The agent's own store and output file inside a watched root are not
    scanned; a file merely named like them is."""
    d = os.path.join(TMP, 'own')
    root = os.path.join(d, 'root')
    a = Agent('own', roots=[root], store=root + '/state/sw.db', output=root + '/out/records.jsonl')
    put(root + '/before.exe', HELLO)
    a.start()
    try:
        x = root + '/x.exe'
        put(x, MMSOFT)
        lookalike = root + '/out/records.jsonl.setup.exe'  # not the agent's: a PE beside it
        put(lookalike, HELLO)
        wait_for(recorded(a, [x, root + '/before.exe']), 10)
        wait_for(lambda: a.per_path().get(lookalike), 5)
        a.quiesce()
        own = [a.store, a.store + '-wal', a.store + '-shm', a.output]
        have = a.per_path()
        t.ok(not any(p.startswith(root + '/state/') or p == a.output for p in have),
             'own files: no records for the store or the output file', sorted(have))
        ids = set(a.q('SELECT device, file_id FROM file_state'))
        scanned = [p for p in own if os.path.exists(p) and (os.stat(p).st_dev, os.stat(p).st_ino) in ids]
        t.ok(not scanned, 'own files: the store, its -wal/-shm and the output file were never scanned',
             'in file_state: %s' % scanned)
        t.ok(lookalike in have, 'own files: a PE named like the output file plus a suffix is still recorded',
             sorted(have))
    finally:
        rc = a.stop()
        t.eq(rc, 0, 'own files: SIGTERM stops the agent with exit 0')
    m = re.search(r'stopped: (\d+) files scanned', a.log())
    t.eq(int(m.group(1)) if m else None, 3, 'own files: the agent scanned only the 3 files dropped in the root')


# ---------------------------------------------------------------------------
only = os.environ.get('TEST_AGENT_ONLY')
for fn in SCENARIOS:
    if only and fn.__name__ not in only.split(','):
        continue
    s = time.monotonic()
    t.comment('--- %s: %s' % (fn.__name__, fn.__doc__.strip().splitlines()[0]))
    try:
        fn()
    except Exception as e:  # a broken scenario fails, the others still run
        import traceback
        t.ok(False, '%s: ran to the end' % fn.__name__, traceback.format_exc())
    t.comment('%s took %.1f s' % (fn.__name__, time.monotonic() - s))
t.comment('total %.1f s' % (time.monotonic() - T0))
if os.environ.get('TEST_AGENT_KEEP'):
    t.comment('kept ' + TMP)
else:
    shutil.rmtree(TMP, ignore_errors=True)
t.done()
