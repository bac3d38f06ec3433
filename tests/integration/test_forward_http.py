#!/usr/bin/env python3
"""Forwarding over HTTPS (logs_ingestion and https_json) against a real
HTTPS server (https_collector.py: Python's ssl module, a test CA and
server certificate made with the openssl command line), with faults.

usage: test_forward_http.py SIGNWATCH FIXTURES_DIR

Each scenario starts its own collector and agent (`signwatch run`, log
level debug, stderr into a file), drops signed fixtures into a watched
root and asserts on what the collector received. python3 stdlib; TAP.
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tap import Tap  # noqa: E402
import https_collector as hc  # noqa: E402

SW, FIX = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
CODE_CA = os.path.join(FIX, 'pki', 'roots.pem')
MMSOFT = open(os.path.join(FIX, 'mmsoft-sha256-ts.exe'), 'rb').read()  # matches the Pulseway rule
HELLO = open(os.path.join(FIX, 'hello64.exe'), 'rb').read()            # unsigned: matches nothing
SECRET = 'S3cr3t-value-that-must-not-be-logged'
TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47'
CLIENT = '11111111-2222-3333-4444-555555555555'
DCR = 'dcr-0123456789abcdef0123456789abcdef'
STREAM = 'Custom-SignwatchCertificateInfo_CL'
LI_PATH = '/dataCollectionRules/%s/streams/%s' % (DCR, STREAM)
TOKEN_PATH = '/%s/oauth2/v2.0/token' % TENANT
JSON_PATH = '/ingest/signwatch'
PULSEWAY_RULE = None  # learned from the first summary
DEFENDER_COLUMNS = ['Timestamp', 'DeviceId', 'DeviceName', 'SHA1', 'IsSigned', 'SignatureType', 'Signer',
                    'SignerHash', 'Issuer', 'IssuerHash', 'CertificateSerialNumber', 'CrlDistributionPointUrls',
                    'CertificateCreationTime', 'CertificateExpirationTime', 'CertificateCountersignatureTime',
                    'IsTrusted', 'IsRootSignerMicrosoft', 'ReportId']

t = Tap()
TMP = tempfile.mkdtemp(prefix='sw-fwd-', dir='/tmp')
CA, CERT, KEY = hc.make_pki(os.path.join(TMP, 'pki'), 'good')
WRONG_CA, _, _ = hc.make_pki(os.path.join(TMP, 'pki-wrong'), 'wrong')


def wait_for(fn, timeout, step=0.05):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() >= end:
            return v
        time.sleep(step)


def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + '.part'
    with open(tmp, 'wb') as f:
        f.write(data)
    os.rename(tmp, path)


def li_default(c, rec):
    """The Logs Ingestion endpoint: 204 for a valid token, else 401."""
    auth = rec['headers'].get('authorization', '')
    tok = auth[7:] if auth.startswith('Bearer ') else None
    with c.lock:
        ok = tok in c.valid_tokens
    return (204, {}, b'') if ok else (401, {'WWW-Authenticate': 'Bearer'}, b'')


def new_collector(port=None, start=True):
    c = hc.Collector(CERT, KEY, port)
    c.default(LI_PATH, li_default)
    return c.start() if start else c


class Agent:
    def __init__(self, name, outputs, env=None):
        self.dir = os.path.join(TMP, name)
        self.root = os.path.join(self.dir, 'root')
        os.makedirs(self.root)
        self.store = os.path.join(self.dir, 'state', 'sw.db')
        self.logpath = os.path.join(self.dir, 'agent.log')
        self.config = os.path.join(self.dir, 'signwatch.yaml')
        self.env = dict(os.environ, SW_TEST_SECRET=SECRET)
        self.env.update(env or {})
        self.proc = None
        lines = ['roots: ["%s"]' % self.root, 'store: "%s"' % self.store, 'rules: []',
                 'ca_file: "%s"' % CODE_CA, 'log_level: debug', 'settle_ms: 300', 'threads: 2',
                 'cpu_budget_percent: 100', 'outputs:']
        for o in outputs:
            first = True
            for k, v in o.items():
                lines.append(('  - ' if first else '    ') + '%s: %s' % (k, v))
                first = False
        with open(self.config, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        os.chmod(self.config, 0o600)

    def start(self):
        self.logf = open(self.logpath, 'ab')
        self.proc = subprocess.Popen([SW, 'run', '--config', self.config], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf, env=self.env)
        ok = wait_for(lambda: ('walked %s:' % self.root) in self.log() or self.proc.poll() is not None, 20)
        if not ok or self.proc.poll() is not None:
            raise RuntimeError('agent did not start: rc %r\n%s' % (self.proc.poll(), self.log()[-3000:]))
        return self

    def log(self):
        try:
            with open(self.logpath, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def stop(self, sig=signal.SIGTERM):
        if not self.proc:
            return None
        p, self.proc = self.proc, None
        if p.poll() is None:
            p.send_signal(sig)
        try:
            rc = p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = 'timeout'
        self.logf.close()
        return rc

    def nrecords(self):
        try:
            con = sqlite3.connect('file:%s?mode=ro' % self.store, uri=True, timeout=5)
            try:
                return con.execute('SELECT count(*) FROM records').fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error:
            return 0


def li_output(c, **kw):
    o = {'type': 'logs_ingestion', 'endpoint': c.base, 'dcr_id': DCR, 'stream': STREAM, 'tenant_id': TENANT,
         'client_id': CLIENT, 'client_secret_env': 'SW_TEST_SECRET', 'token_url': c.base + TOKEN_PATH,
         'ca_file': '"%s"' % CA, 'max_backoff_s': 2}
    o.update(kw)
    return o


def json_output(c, **kw):
    o = {'type': 'https_json', 'url': c.base + JSON_PATH, 'bearer_token_env': 'SW_TEST_SECRET',
         'ca_file': '"%s"' % CA, 'gzip': 'true', 'max_backoff_s': 2}
    o.update(kw)
    return o


def items_of(req):
    """The items of one request body (a JSON array or NDJSON)."""
    b = req['body'].decode('utf-8', 'replace').strip()
    if not b:
        return []
    if b.startswith('['):
        return json.loads(b)
    return [json.loads(line) for line in b.splitlines() if line.strip()]


def delivered(c, path, accepted_only=True):
    """Every item the collector received on path (accepted ones only by
    default: 2xx answers), in order."""
    out = []
    for r in c.got(path):
        if accepted_only and not (isinstance(r['status'], int) and 200 <= r['status'] < 300):
            continue
        try:
            out.extend(items_of(r))
        except ValueError:
            pass
    return out


def records(items):
    return [i for i in items if i.get('ItemType') == 'record']


def summaries(items):
    return [i for i in items if i.get('ItemType') == 'summary']


def drop(a, n, data=MMSOFT, prefix='f'):
    for i in range(n):
        put(os.path.join(a.root, '%s%03d.exe' % (prefix, i)), data)


def scenario(fn):
    t.comment('--- %s: %s' % (fn.__name__, (fn.__doc__ or '').strip().splitlines()[0]))
    t0 = time.monotonic()
    try:
        fn()
    except Exception as e:  # a crash is a failure, the next scenario still runs
        import traceback
        t.ok(False, '%s: ran without an exception' % fn.__name__, traceback.format_exc())
    t.comment('%s took %.1f s' % (fn.__name__, time.monotonic() - t0))


def stop_ok(a, name):
    rc = a.stop()
    t.eq(rc, 0, '%s: SIGTERM stops the agent with exit 0' % name)
    t.ok(SECRET not in a.log(), '%s: the secret never appears in the log' % name)


# ---- scenarios ---------------------------------------------------------------------------------

def logs_ingestion_shape():
    """logs_ingestion: token request, then gzip JSON arrays with Defender's columns; 204 accepted."""
    c = new_collector()
    a = Agent('li-shape', [li_output(c)], env={'SIGNWATCH_TEST_HEARTBEAT_MS': '2500'}).start()
    try:
        drop(a, 3)
        put(os.path.join(a.root, 'hello.exe'), HELLO)
        ok = wait_for(lambda: len(records(delivered(c, LI_PATH))) >= 3 and summaries(delivered(c, LI_PATH)), 20)
        t.ok(ok, 'li: the 3 matching records and a summary arrive', a.log()[-2000:])
        toks = c.got(TOKEN_PATH)
        t.ok(len(toks) >= 1, 'li: a token was requested')
        if toks:
            tr = toks[0]
            form = {k: v[0] for k, v in __import__('urllib.parse').parse.parse_qs(tr['body'].decode()).items()}
            t.eq(tr['method'], 'POST', 'li: token request is a POST')
            t.ok(tr['headers'].get('content-type', '').startswith('application/x-www-form-urlencoded'),
                 'li: token request is a form', tr['headers'])
            t.eq(form.get('grant_type'), 'client_credentials', 'li: grant_type=client_credentials')
            t.eq(form.get('client_id'), CLIENT, 'li: client_id')
            t.eq(form.get('client_secret'), SECRET, 'li: client_secret')
            t.eq(form.get('scope'), 'https://monitor.azure.com//.default', 'li: scope')
        posts = c.got(LI_PATH)
        t.ok(posts, 'li: the ingestion endpoint was called')
        if posts:
            p = posts[0]
            t.eq(p['method'], 'POST', 'li: POST')
            t.eq(p['query'].get('api-version'), ['2023-01-01'], 'li: api-version=2023-01-01')
            t.eq(p['headers'].get('content-encoding'), 'gzip', 'li: Content-Encoding: gzip')
            t.ok(p['headers'].get('content-type', '').startswith('application/json'), 'li: Content-Type json')
            t.eq(p['headers'].get('authorization'), 'Bearer tok-1', 'li: Authorization: Bearer <the token>')
            t.ok(p['raw_len'] <= 1000000 and len(p['body']) <= 1000000, 'li: at most 1 MB a call')
            body = json.loads(p['body'])
            t.ok(isinstance(body, list) and all(isinstance(x, dict) for x in body), 'li: body is a JSON array of objects')
        recs = records(delivered(c, LI_PATH))
        t.ok(recs and all(all(k in r for k in DEFENDER_COLUMNS) for r in recs),
             'li: every record has Defender\'s DeviceFileCertificateInfo columns', recs[:1])
        t.ok(all(r.get('TimeGenerated') == r.get('Timestamp') for r in recs), 'li: TimeGenerated = Timestamp')
        t.ok(all(r['IdempotencyKey'] == '%s:%d' % (r['DeviceId'], r['ReportId']) for r in recs),
             'li: record idempotency key is DeviceId:ReportId')
        t.ok(all('MMSoft Design' in (r.get('Signer') or '') for r in recs), 'li: only matching records (default)')
        t.ok(not any(r.get('FileName') == 'hello.exe' for r in recs), 'li: the unmatched record is not sent')
        sums = summaries(delivered(c, LI_PATH))
        last = sums[-1] if sums else {}
        t.ok(last.get('IdempotencyKey') == '%s:%s:%d' % (last.get('RuleId'), last.get('DeviceId'),
                                                         last.get('SummaryVersion', -1)),
             'li: summary idempotency key is RuleId:DeviceId:version', last)
        t.ok(wait_for(lambda: summaries(delivered(c, LI_PATH))[-1].get('Count') == 3, 5),
             'li: the last summary counts 3', summaries(delivered(c, LI_PATH))[-1:])
        t.ok(all(k in last for k in ('FirstSeen', 'LastSeen', 'Report', 'Count', 'RuleName')),
             'li: summary has the rule\'s summarize columns', last)
        hb = wait_for(lambda: [s for s in summaries(delivered(c, LI_PATH)) if s.get('Heartbeat')], 8)
        t.ok(hb and hb[-1]['IdempotencyKey'] == summaries(delivered(c, LI_PATH))[-1]['IdempotencyKey'],
             'li: the heartbeat re-sends the current summary with its key', hb[-1:])
        t.eq(len(c.got(TOKEN_PATH)), 1, 'li: the token is cached (one token request)')
        t.ok(c.max_active.get(LI_PATH, 0) <= 1, 'li: one request in flight at a time')
    finally:
        stop_ok(a, 'li')
        c.stop()


def https_json_shape():
    """https_json: NDJSON, gzip, bearer token; 2xx accepted."""
    c = new_collector()
    a = Agent('json-shape', [json_output(c, send_records='all')]).start()
    try:
        drop(a, 2)
        put(os.path.join(a.root, 'hello.exe'), HELLO)
        ok = wait_for(lambda: len(records(delivered(c, JSON_PATH))) >= 3, 20)
        t.ok(ok, 'json: 3 records arrive (send_records: all)', a.log()[-2000:])
        p = c.got(JSON_PATH)[0] if c.got(JSON_PATH) else {'headers': {}, 'body': b''}
        t.eq(p['headers'].get('content-type'), 'application/x-ndjson', 'json: Content-Type application/x-ndjson')
        t.eq(p['headers'].get('content-encoding'), 'gzip', 'json: gzip body')
        t.eq(p['headers'].get('authorization'), 'Bearer ' + SECRET, 'json: bearer token header')
        lines = p['body'].decode().strip().split('\n')
        t.ok(all(json.loads(x) for x in lines), 'json: one JSON object per line')
        t.ok(any(r.get('FileName') == 'hello.exe' for r in records(delivered(c, JSON_PATH))),
             'json: send_records all includes the unmatched record')
    finally:
        stop_ok(a, 'json')
        c.stop()


def token_refresh_401():
    """logs_ingestion: a 401 refreshes the token once, then the batch is accepted."""
    c = new_collector()
    a = Agent('li-401', [li_output(c)]).start()
    try:
        drop(a, 1)
        ok = wait_for(lambda: len(records(delivered(c, LI_PATH))) >= 1, 20)
        t.ok(ok, '401: first record delivered')
        c.invalidate_tokens()  # the next call is refused: 401
        drop(a, 2, prefix='g')
        ok = wait_for(lambda: len(records(delivered(c, LI_PATH))) >= 3, 20)
        t.ok(ok, '401: after the refused call the batch is delivered', a.log()[-2000:])
        statuses = [r['status'] for r in c.got(LI_PATH)]
        t.ok(401 in statuses, '401: the endpoint answered 401 once', statuses)
        t.eq(len(c.got(TOKEN_PATH)), 2, '401: exactly one token refresh')
        after = [r for r in c.got(LI_PATH) if r['status'] == 204][-1]
        t.eq(after['headers'].get('authorization'), 'Bearer tok-2', '401: the retry uses the new token')
    finally:
        stop_ok(a, '401')
        c.stop()


def retry_after_429():
    """429 with Retry-After: 1 is honoured."""
    c = new_collector()
    c.script(LI_PATH, [('retry_after', 429, 1)])
    a = Agent('li-429', [li_output(c)]).start()
    try:
        drop(a, 1)
        ok = wait_for(lambda: records(delivered(c, LI_PATH)), 20)
        t.ok(ok, '429: delivered after the 429', a.log()[-2000:])
        rq = c.got(LI_PATH)
        t.ok(len(rq) >= 2 and rq[0]['status'] == 429, '429: first answer was 429', [r['status'] for r in rq])
        if len(rq) >= 2:
            gap = rq[1]['t'] - rq[0]['t_answer']
            t.ok(0.95 <= gap <= 3.0, '429: the retry came after Retry-After (%.2f s)' % gap)
        t.ok('Retry-After' in a.log(), '429: the log says the wait is the collector\'s Retry-After')
    finally:
        stop_ok(a, '429')
        c.stop()


def retry_500():
    """500s are retried with backoff until accepted."""
    c = new_collector()
    c.script(JSON_PATH, [500, 500, 503])
    a = Agent('json-500', [json_output(c)]).start()
    try:
        drop(a, 2)
        ok = wait_for(lambda: len(records(delivered(c, JSON_PATH))) >= 2, 30)
        t.ok(ok, '500: delivered after three 5xx answers', a.log()[-2000:])
        rq = c.got(JSON_PATH)
        st = [r['status'] for r in rq]
        t.ok(st[:3] == [500, 500, 503], '500: the 5xx answers were seen first', st)
        gaps = [rq[i + 1]['t'] - rq[i]['t_answer'] for i in range(min(3, len(rq) - 1))]
        t.ok(all(0.04 <= g <= 4.5 for g in gaps), '500: retries back off (full jitter, capped at 2 s): %s' %
             ', '.join('%.2f' % g for g in gaps))
        keys = [r['IdempotencyKey'] for r in records(delivered(c, JSON_PATH))]
        t.eq(len(keys), len(set(keys)), '500: no duplicates among accepted items')
    finally:
        stop_ok(a, '500')
        c.stop()


def slow_answer():
    """A slow answer does not block the agent's loop."""
    c = new_collector()
    c.script(JSON_PATH, [('slow', 4.0, 200)])
    a = Agent('json-slow', [json_output(c)]).start()
    try:
        drop(a, 1)
        t.ok(wait_for(lambda: c.got(JSON_PATH), 15), 'slow: the request arrived')
        t0 = time.monotonic()
        put(os.path.join(a.root, 'during.exe'), MMSOFT)
        ok = wait_for(lambda: a.nrecords() >= 2, 3.5)
        t.ok(ok and time.monotonic() - t0 < 3.5, 'slow: a file dropped meanwhile is scanned and stored '
             'while the answer is pending (%.1f s)' % (time.monotonic() - t0))
        ok = wait_for(lambda: len(records(delivered(c, JSON_PATH))) >= 2, 20)
        t.ok(ok, 'slow: everything delivered after the slow answer', a.log()[-1500:])
    finally:
        stop_ok(a, 'slow')
        c.stop()


def dropped_connection():
    """A connection dropped without an answer is retried."""
    # https_json: the first call is on a fresh connection (libcurl itself
    # retries a request once when a reused keep-alive connection turns out
    # dead, which is what happens after the token request on Sentinel's
    # path); a fresh one dropped is the agent's to retry.
    c = new_collector()
    c.script(JSON_PATH, ['drop'])
    a = Agent('json-drop', [json_output(c)]).start()
    try:
        drop(a, 2)
        ok = wait_for(lambda: len(records(delivered(c, JSON_PATH))) >= 2, 20)
        t.ok(ok, 'drop: delivered after the dropped connection', a.log()[-2000:])
        t.eq(c.got(JSON_PATH)[0]['status'], 'dropped', 'drop: the first call was dropped')
        t.ok(wait_for(lambda: 'send failed' in a.log(), 5), 'drop: the failure is logged')
    finally:
        stop_ok(a, 'drop')
        c.stop()


def collector_down():
    """Collector down for a while, then up: everything delivered, one batch at a time."""
    c = new_collector(start=False)
    a = Agent('json-down', [json_output(c)]).start()
    try:
        drop(a, 6)
        t.ok(wait_for(lambda: a.nrecords() >= 6, 15), 'down: 6 records stored while the collector is down')
        t.ok(wait_for(lambda: 'send failed' in a.log(), 10), 'down: the failure is logged')
        time.sleep(3)
        c.start()
        ok = wait_for(lambda: len({r['IdempotencyKey'] for r in records(delivered(c, JSON_PATH))}) >= 6, 20)
        t.ok(ok, 'down: after the collector is back all 6 records arrive', a.log()[-2000:])
        t.ok(wait_for(lambda: summaries(delivered(c, JSON_PATH)) and
                      summaries(delivered(c, JSON_PATH))[-1].get('Count') == 6, 10),
             'down: the latest summary (Count 6) arrives')
        t.ok(c.max_active.get(JSON_PATH, 0) <= 1, 'down: one request in flight at a time (bounded drain)')
        t.ok(wait_for(lambda: 'delivering again' in a.log(), 10), 'down: recovery is logged')
    finally:
        stop_ok(a, 'down')
        c.stop()


def sigkill_mid_batch():
    """SIGKILL while a batch is in flight: after restart everything arrives; duplicates only of unacked items."""
    c = new_collector()
    c.script(JSON_PATH, [('slow', 3.0, 200)])
    a = Agent('json-kill', [json_output(c)]).start()
    try:
        drop(a, 4)
        t.ok(wait_for(lambda: a.nrecords() >= 4, 15), 'kill: 4 records stored')
        t.ok(wait_for(lambda: c.got(JSON_PATH), 15), 'kill: a batch is in flight')
        time.sleep(0.3)
        inflight = {i['IdempotencyKey'] for i in items_of(c.got(JSON_PATH)[0])}
        a.stop(signal.SIGKILL)
        a.start()
        ok = wait_for(lambda: len({r['IdempotencyKey'] for r in records(delivered(c, JSON_PATH, False))}) >= 4, 20)
        t.ok(ok, 'kill: after the restart all 4 records arrived', a.log()[-2000:])
        time.sleep(1)
        allitems = delivered(c, JSON_PATH, accepted_only=False)
        keys = [i['IdempotencyKey'] for i in allitems]
        dups = {k for k in keys if keys.count(k) > 1}
        t.ok(dups <= inflight, 'kill: duplicates only of items that were not acknowledged', (dups, inflight))
        t.ok(dups, 'kill: the unacknowledged batch was sent again', keys)
    finally:
        stop_ok(a, 'kill')
        c.stop()


def wrong_ca():
    """A server certificate that does not verify: nothing is sent, a clear log line."""
    c = new_collector()
    a = Agent('li-wrong-ca', [li_output(c, ca_file='"%s"' % WRONG_CA)]).start()
    try:
        drop(a, 1)
        ok = wait_for(lambda: 'did not verify' in a.log(), 15)
        lines = [l for l in a.log().splitlines() if 'did not verify' in l]
        t.ok(ok, 'wrong CA: the log says the server certificate did not verify', lines[:1])
        t.ok(lines and 'certificate' in lines[0].lower(), 'wrong CA: the line names the certificate problem', lines[:1])
        t.eq(len(c.got()), 0, 'wrong CA: no HTTP request reached the server (not even the token request)')
        t.ok(c.handshake_failures >= 1, 'wrong CA: the TLS handshake was refused by the agent')
    finally:
        stop_ok(a, 'wrong CA')
        c.stop()


def outbox_cap():
    """Outbox cap reached: the oldest records are dropped and counted; summaries all arrive."""
    N = 1000
    c = new_collector(start=False)
    a = Agent('json-cap', [json_output(c, outbox_mb=1)])
    for i in range(N):  # present before the start: the baseline walk records them
        with open(os.path.join(a.root, 'c%04d.exe' % i), 'wb') as f:
            f.write(MMSOFT)
    a.start()
    try:
        t.ok(wait_for(lambda: a.nrecords() >= N, 120), 'cap: %d records stored while the collector is down' % N)
        t.ok(wait_for(lambda: 'dropped the' in a.log(), 10), 'cap: the drop is logged',
             [l for l in a.log().splitlines() if 'outbox' in l][-3:])
        c.start()

        def quiet():
            n = len(c.got(JSON_PATH))
            time.sleep(1.5)
            return n and len(c.got(JSON_PATH)) == n
        t.ok(wait_for(quiet, 60), 'cap: the backlog drains')
        items = delivered(c, JSON_PATH)
        rids = sorted({r['ReportId'] for r in records(items)})
        sums = summaries(items)
        dropped = max([s.get('DroppedRecords', 0) for s in sums] or [0])
        t.ok(0 < dropped < N, 'cap: some records were dropped and counted (%d)' % dropped)
        t.eq(len(rids) + dropped, N, 'cap: delivered + dropped = every record')
        t.ok(rids and rids[0] == dropped + 1 and rids[-1] == N, 'cap: the oldest were dropped (delivered %s..%s)'
             % (rids[:1], rids[-1:]))
        last = sums[-1] if sums else {}
        t.eq(last.get('Count'), N, 'cap: the latest summary arrived and counts every match, dropped ones too')
        t.eq(last.get('DroppedRecords'), dropped, 'cap: the latest summary carries DroppedRecords')
        vers = [s['SummaryVersion'] for s in sums]
        t.ok(vers == sorted(vers), 'cap: summary versions arrive in order', vers[:10])
    finally:
        stop_ok(a, 'cap')
        c.stop()


for s in (logs_ingestion_shape, https_json_shape, token_refresh_401, retry_after_429, retry_500, slow_answer,
          dropped_connection, collector_down, sigkill_mid_batch, wrong_ca, outbox_cap):
    scenario(s)
if not t.failed:
    shutil.rmtree(TMP, ignore_errors=True)
else:
    t.comment('files kept in %s' % TMP)
t.done()
