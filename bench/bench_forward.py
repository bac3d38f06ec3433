#!/usr/bin/env python3
"""Forwarding throughput, CPU and backlog memory (python3 stdlib; prints
figures, asserts nothing).

usage: bench_forward.py SIGNWATCH FIXTURES_DIR

1. Records: N (BENCH_FWD_N, default 5000) copies of a signed fixture are
   put in a root before the agent starts; its baseline walk records them
   with `send_records: all` into the outbox of an https_json output whose
   collector is down (connection refused). The store is then kept as a
   template.
2. Per output type (file, https_json, logs_ingestion, syslog_tls when
   rsyslogd with the gtls driver is installed): a copy of the template
   whose outbox rows are re-labelled for that output (the payload an
   output is given does not depend on its type: forward.c stores the same
   JSON for every output), the agent started on it with only that output
   and an empty root, the collector up. Measured from the first to the
   last item seen at the collector: items/s; the agent's CPU (utime +
   stime from /proc/PID/stat) per 1,000 items; the collector's own CPU
   over the same span (the Python HTTPS collector runs in this process:
   /proc/self/stat; rsyslogd: its /proc/PID/stat), which shows which side
   limits; the agent's VmHWM.
3. Backlog: the template's records copied to 100,000 outbox items
   (BENCH_FWD_BACKLOG) for https_json, the agent started with the
   collector refusing; after a few failed attempts VmHWM / VmRSS and the
   outbox row count (sqlite3). Then the collector comes up and the drain
   of the whole backlog is timed (bounded by BENCH_FWD_DRAIN_S, 150 s).

The backlog is made by copying rows, not by a 100,000-file baseline walk:
the scanner does 200-350 files/s on the 2 vCPU CI VM (bench_agent.py), so
a walk would take 5-8 minutes by itself; the agent's memory while holding
a backlog depends on the outbox rows, not on how they got there.
"""
import gzip  # noqa: F401  (the collector decodes bodies)
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'integration'))
import https_collector as hc  # noqa: E402

SW, FIX = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
N = int(os.environ.get('BENCH_FWD_N', '5000'))
BACKLOG = int(os.environ.get('BENCH_FWD_BACKLOG', '100000'))
DRAIN_S = float(os.environ.get('BENCH_FWD_DRAIN_S', '150'))
CODE_CA = os.path.join(FIX, 'pki', 'roots.pem')
MMSOFT = open(os.path.join(FIX, 'mmsoft-sha256-ts.exe'), 'rb').read()
HZ = os.sysconf('SC_CLK_TCK')
TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47'
CLIENT = '11111111-2222-3333-4444-555555555555'
DCR = 'dcr-0123456789abcdef0123456789abcdef'
STREAM = 'Custom-SignwatchCertificateInfo_CL'
LI_PATH = '/dataCollectionRules/%s/streams/%s' % (DCR, STREAM)
TOKEN_PATH = '/%s/oauth2/v2.0/token' % TENANT
JSON_PATH = '/ingest/signwatch'
RSYSLOGD = shutil.which('rsyslogd') or ('/usr/sbin/rsyslogd' if os.path.exists('/usr/sbin/rsyslogd') else None)
GTLS = any(os.path.exists(os.path.join(d, 'lmnsd_gtls.so'))
           for d in ('/usr/lib/x86_64-linux-gnu/rsyslog', '/usr/lib/aarch64-linux-gnu/rsyslog',
                     '/usr/lib/rsyslog', '/usr/lib64/rsyslog'))

TMP = tempfile.mkdtemp(prefix='sw-bench-fwd-', dir='/tmp')
T0 = time.monotonic()


def say(s=''):
    print(s, flush=True)


def wait_for(fn, timeout, step=0.05):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def ticks(pid='self'):
    with open('/proc/%s/stat' % pid) as f:
        s = f.read()
    fields = s[s.rindex(')') + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def status_kb(pid, key):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return 0


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


CA, CERT, KEY = hc.make_pki(os.path.join(TMP, 'pki'), 'bench')
EMPTY_ROOT = os.path.join(TMP, 'empty-root')
os.makedirs(EMPTY_ROOT)


class Agent:
    def __init__(self, name, root, outputs, store=None, log_level='info'):
        self.dir = os.path.join(TMP, name)
        os.makedirs(self.dir, exist_ok=True)
        self.root = root
        self.store = store or os.path.join(self.dir, 'state', 'sw.db')
        self.logpath = os.path.join(self.dir, 'agent.log')
        self.config = os.path.join(self.dir, 'signwatch.yaml')
        lines = ['roots: ["%s"]' % root, 'store: "%s"' % self.store, 'rules: []', 'ca_file: "%s"' % CODE_CA,
                 'log_level: %s' % log_level, 'settle_ms: 300', 'threads: 2', 'cpu_budget_percent: 100', 'outputs:']
        for o in outputs:
            for i, (k, v) in enumerate(o.items()):
                lines.append(('  - ' if i == 0 else '    ') + '%s: %s' % (k, v))
        with open(self.config, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        os.chmod(self.config, 0o600)
        self.proc = None

    def start(self):
        self.logf = open(self.logpath, 'ab')
        self.proc = subprocess.Popen([SW, 'run', '--config', self.config], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf,
                                     env=dict(os.environ, SW_BENCH_SECRET='bench-secret-value'))
        return self

    def log(self):
        with open(self.logpath, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        self.proc = None

    def q(self, sql):
        con = sqlite3.connect('file:%s?mode=ro' % self.store, uri=True, timeout=10)
        try:
            return con.execute(sql).fetchone()[0]
        finally:
            con.close()


def li_default(c, rec):
    auth = rec['headers'].get('authorization', '')
    with c.lock:
        ok = auth[7:] in c.valid_tokens
    return (204, {}, b'') if ok else (401, {'WWW-Authenticate': 'Bearer'}, b'')


# ---- 1. the records -------------------------------------------------------------------------

say('# bench_forward: %s, %d CPUs, load %s' % (SW, os.cpu_count(), ' '.join(open('/proc/loadavg').read().split()[:3])))
root = os.path.join(TMP, 'root')
os.makedirs(root)
for i in range(N):
    with open(os.path.join(root, 'f%05d.exe' % i), 'wb') as f:
        f.write(MMSOFT)
dead_port = free_port()  # nothing listens: connection refused
TEMPLATE_ID = 'https_json:https://127.0.0.1:%d%s' % (dead_port, JSON_PATH)
prep = Agent('prep', root, [{'type': 'https_json', 'url': 'https://127.0.0.1:%d%s' % (dead_port, JSON_PATH),
                             'ca_file': '"%s"' % CA, 'send_records': 'all', 'max_backoff_s': 300}])
t = time.monotonic()
prep.start()


def nrec():
    try:
        return prep.q('SELECT count(*) FROM records')
    except sqlite3.Error:
        return 0


ok = wait_for(lambda: nrec() >= N, 300, 0.5)
scan_s = time.monotonic() - t
prep.stop()
TEMPLATE = os.path.join(TMP, 'template.db')
src = sqlite3.connect(prep.store)
dst = sqlite3.connect(TEMPLATE)
src.backup(dst)
src.close()
n_items = dst.execute('SELECT count(*) FROM outbox').fetchone()[0]
n_recs = dst.execute('SELECT count(*) FROM outbox WHERE kind = 0').fetchone()[0]
avg_bytes = dst.execute('SELECT avg(bytes) FROM outbox WHERE kind = 0').fetchone()[0] or 0
dst.close()
say('# prepared: %d records scanned in %.1f s (%.0f files/s%s); outbox %d items (%d records, %.0f bytes each)'
    % (N, scan_s, N / scan_s, '' if ok else ', TIMED OUT', n_items, n_recs, avg_bytes))


def store_for(name, output_id, copies=1):
    """A store from the template with its outbox re-labelled for output_id
    (and the records repeated `copies` times, keys made unique)."""
    d = os.path.join(TMP, name, 'state')
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, 'sw.db')
    shutil.copy(TEMPLATE, path)
    con = sqlite3.connect(path)
    with con:
        con.execute('UPDATE outbox SET output_id = ?', (output_id,))
        if copies > 1:
            con.execute('CREATE TEMP TABLE k(i INTEGER)')
            con.executemany('INSERT INTO k VALUES(?)', [(i,) for i in range(1, copies)])
            con.execute("INSERT INTO outbox(output_id, kind, idem_key, payload, bytes, created_ms) "
                        "SELECT o.output_id, o.kind, o.idem_key || '-' || k.i, o.payload, o.bytes, o.created_ms "
                        "FROM outbox o, k WHERE o.kind = 0 ORDER BY k.i, o.seq")
        con.execute('DELETE FROM outbox_state')
        con.execute('INSERT INTO outbox_state(output_id, items, bytes, dropped) '
                    'SELECT output_id, count(*), sum(bytes), 0 FROM outbox GROUP BY output_id')
    total = con.execute('SELECT count(*) FROM outbox').fetchone()[0]
    con.close()
    return path, total


# ---- 2. throughput per output ------------------------------------------------------------------

results = []


def measure(kind, a, count_fn, total, collector_pid, timeout=180):
    """Poll the collector's item count; (items/s, agent CPU s per 1,000,
    collector CPU s per 1,000, span s, agent VmHWM kB, items seen)."""
    pid = a.proc.pid
    prev_a, prev_c = ticks(pid), ticks(collector_pid)
    first = None
    end = time.monotonic() + timeout
    n = 0
    while time.monotonic() < end:
        n = count_fn()
        now = time.monotonic()
        if first is None and n > 0:
            first = (now, prev_a, prev_c, n)
        if n >= total:
            break
        prev_a, prev_c = ticks(pid), ticks(collector_pid)
        time.sleep(0.02)
    last = (time.monotonic(), ticks(pid), ticks(collector_pid))
    hwm = status_kb(pid, 'VmHWM')
    if first is None:
        return None
    t_first = getattr(count_fn, 't_first', None)
    if t_first is not None:  # HTTP: from the first request's arrival, every item counts
        span, got = max(last[0] - t_first, 1e-3), n
    else:  # file, syslog: from the first item seen; the items seen then do not count
        span = max(last[0] - first[0], 1e-3)
        got = n - first[3] if n > first[3] else n
    cpu_a = (last[1] - first[1]) / HZ
    cpu_c = (last[2] - first[2]) / HZ
    return dict(kind=kind, rate=got / span, cpu_a=cpu_a * 1000 / max(got, 1), cpu_c=cpu_c * 1000 / max(got, 1),
                span=span, hwm=hwm, seen=n, total=total, share_a=cpu_a / span, share_c=cpu_c / span)


def report(r):
    if not r:
        say('  nothing delivered')
        return
    results.append(r)
    coll = ('collector %.3f CPU-s per 1,000 (%.0f%% of a core)' % (r['cpu_c'], 100 * r['share_c'])
            if r['kind'] != 'file' else 'no collector process')
    say('  %-15s %7.0f items/s over %5.1f s (%d/%d items); agent %.3f CPU-s per 1,000 (%.0f%% of a core), '
        '%s; agent VmHWM %.1f MiB'
        % (r['kind'], r['rate'], r['span'], r['seen'], r['total'], r['cpu_a'], 100 * r['share_a'], coll,
           r['hwm'] / 1024))


class Counter:
    """Items accepted on path so far (every item carries one
    IdempotencyKey), counted incrementally: the collector's requests are
    appended in order and a request's status is set once it is answered."""

    def __init__(self, c, path):
        self.c, self.path, self.i, self.n = c, path, 0, 0
        self.t_first = None  # when the first accepted request arrived (before its upload was read)

    def __call__(self):
        with self.c.lock:
            reqs = self.c.requests
            while self.i < len(reqs) and reqs[self.i]['status'] is not None:
                r = reqs[self.i]
                if r['path'] == self.path and isinstance(r['status'], int) and 200 <= r['status'] < 300:
                    self.n += r['body'].count(b'"IdempotencyKey"')
                    if self.t_first is None:
                        self.t_first = r['t']
                self.i += 1
        return self.n


def count_items(c, path):
    return Counter(c, path)


say('# throughput, backlog of %d items per output, collector up from the start' % n_items)

# file
out = os.path.join(TMP, 'out', 'records.jsonl')
os.makedirs(os.path.dirname(out))
store, total = store_for('file', 'file:' + out)
a = Agent('file', EMPTY_ROOT, [{'type': 'file', 'path': '"%s"' % out, 'max_mb': 1024, 'send_records': 'all'}],
          store=store).start()


def file_lines():
    try:
        with open(out, 'rb') as f:
            return f.read().count(b'\n')
    except OSError:
        return 0


report(measure('file', a, file_lines, total, 'self'))
a.stop()

# https_json
c = hc.Collector(CERT, KEY).start()
url = c.base + JSON_PATH
store, total = store_for('json', 'https_json:' + url)
a = Agent('json', EMPTY_ROOT, [{'type': 'https_json', 'url': url, 'ca_file': '"%s"' % CA, 'send_records': 'all',
                                'bearer_token_env': 'SW_BENCH_SECRET'}], store=store).start()
report(measure('https_json', a, count_items(c, JSON_PATH), total, 'self'))
say('    %d requests (%.0f items each)' % (len(c.got(JSON_PATH)), total / max(len(c.got(JSON_PATH)), 1)))
a.stop()
c.stop()

# https_json without gzip
c = hc.Collector(CERT, KEY).start()
url = c.base + JSON_PATH
store, total = store_for('json-nogz', 'https_json:' + url)
a = Agent('json-nogz', EMPTY_ROOT, [{'type': 'https_json', 'url': url, 'ca_file': '"%s"' % CA, 'gzip': 'false',
                                     'send_records': 'all'}], store=store).start()
r = measure('https_json/nogz', a, count_items(c, JSON_PATH), total, 'self')
report(r)
a.stop()
c.stop()

# logs_ingestion
c = hc.Collector(CERT, KEY).start()
c.default(LI_PATH, li_default)
store, total = store_for('li', 'logs_ingestion:%s/%s/%s' % (c.base, DCR, STREAM))
a = Agent('li', EMPTY_ROOT, [{'type': 'logs_ingestion', 'endpoint': c.base, 'dcr_id': DCR, 'stream': STREAM,
                              'tenant_id': TENANT, 'client_id': CLIENT, 'client_secret_env': 'SW_BENCH_SECRET',
                              'token_url': c.base + TOKEN_PATH, 'ca_file': '"%s"' % CA,
                              'send_records': 'all'}], store=store).start()
report(measure('logs_ingestion', a, count_items(c, LI_PATH), total, 'self'))
posts = c.got(LI_PATH)
say('    %d calls (%.0f items, %.0f kB gzipped / %.0f kB JSON each)'
    % (len(posts), total / max(len(posts), 1), sum(p['raw_len'] for p in posts) / max(len(posts), 1) / 1024,
       sum(len(p['body']) for p in posts) / max(len(posts), 1) / 1024))
a.stop()
c.stop()

# syslog_tls
if RSYSLOGD and GTLS:
    d = os.path.join(TMP, 'rsyslog')
    os.makedirs(os.path.join(d, 'work'))
    port = free_port()
    msgs = os.path.join(d, 'messages.log')
    conf = os.path.join(d, 'rsyslog.conf')
    with open(conf, 'w') as f:
        f.write('''global(workDirectory="%(d)s/work" maxMessageSize="64k" defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="%(ca)s" defaultNetstreamDriverCertFile="%(cert)s"
  defaultNetstreamDriverKeyFile="%(key)s")
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")
input(type="imtcp" port="%(port)d" address="127.0.0.1")
action(type="omfile" file="%(msgs)s" template="RSYSLOG_SyslogProtocol23Format")
''' % dict(d=d, ca=CA, cert=CERT, key=KEY, port=port, msgs=msgs))
    rlog = open(os.path.join(d, 'rsyslogd.out'), 'ab')
    rs = subprocess.Popen([RSYSLOGD, '-n', '-f', conf, '-i', os.path.join(d, 'rsyslogd.pid')], stdout=rlog,
                          stderr=subprocess.STDOUT)

    def listening():
        try:
            socket.create_connection(('127.0.0.1', port), timeout=0.2).close()
            return True
        except OSError:
            return False
    if wait_for(listening, 15):
        store, total = store_for('syslog', 'syslog_tls:127.0.0.1:%d' % port)
        a = Agent('syslog', EMPTY_ROOT, [{'type': 'syslog_tls', 'host': '127.0.0.1', 'port': port,
                                          'ca_file': '"%s"' % CA, 'send_records': 'all'}], store=store).start()

        def syslog_lines():
            try:
                with open(msgs, 'rb') as f:
                    return f.read().count(b'\n')
            except OSError:
                return 0
        report(measure('syslog_tls', a, syslog_lines, total, rs.pid))
        a.stop()
    else:
        say('  syslog_tls: rsyslogd did not listen')
    rs.terminate()
    rs.wait(10)
else:
    say('  syslog_tls: skipped (rsyslogd with the gtls driver not installed)')

# ---- 3. a 100,000-item backlog -------------------------------------------------------------------

say('# backlog: %d items for https_json, collector refusing connections' % BACKLOG)
port = free_port()
c = hc.Collector(CERT, KEY, port)
url = c.base + JSON_PATH
copies = max(1, -(-BACKLOG // max(n_recs, 1)))
store, total = store_for('backlog', 'https_json:' + url, copies)
a = Agent('backlog', EMPTY_ROOT, [{'type': 'https_json', 'url': url, 'ca_file': '"%s"' % CA, 'send_records': 'all',
                                   'max_backoff_s': 2, 'outbox_mb': 4096}], store=store, log_level='debug')
dbsize = os.path.getsize(store)
t = time.monotonic()
a.start()
wait_for(lambda: a.log().count('send failed') >= 1, 30)
time.sleep(8)  # several attempts: each reads a batch from the outbox and fails
rows = subprocess.run(['sqlite3', store, 'SELECT count(*) FROM outbox'], capture_output=True, text=True).stdout.strip()
hwm, rss = status_kb(a.proc.pid, 'VmHWM'), status_kb(a.proc.pid, 'VmRSS')
attempts = a.log().count('send failed') + a.log().count('attempt ')
say('  holding %s outbox rows (sqlite3; store %.0f MiB): VmHWM %.1f MiB, VmRSS %.1f MiB, after %.1f s and >= %d failed '
    'attempts; agent CPU so far %.2f s' % (rows, dbsize / 1048576, hwm / 1024, rss / 1024, time.monotonic() - t,
                                          attempts, ticks(a.proc.pid) / HZ))
c.start()
r = measure('https_json/100k', a, count_items(c, JSON_PATH), total, 'self', timeout=DRAIN_S)
report(r)
hwm2 = status_kb(a.proc.pid, 'VmHWM')
say('  VmHWM after draining: %.1f MiB' % (hwm2 / 1024))
a.stop()
c.stop()

say('# total %.0f s' % (time.monotonic() - T0))
shutil.rmtree(TMP, ignore_errors=True)
