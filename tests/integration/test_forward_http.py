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
WRONG_CA, WRONG_CERT, _ = hc.make_pki(os.path.join(TMP, 'pki-wrong'), 'wrong')
# mutual TLS: a client certificate signed by the test CA, and one signed by the other CA
CLIENT_CERT, CLIENT_KEY = hc.make_client_cert(os.path.join(TMP, 'pki'), 'good', 'agent', 'signwatch agent')
ROGUE_CERT, ROGUE_KEY = hc.make_client_cert(os.path.join(TMP, 'pki-wrong'), 'wrong', 'rogue', 'rogue agent')
# the Logs Ingestion certificate credential (Entra ID takes any RSA certificate: self-signed)
APP_CERT, APP_KEY = hc.make_client_cert(os.path.join(TMP, 'pki-app'), name='app', cn='signwatch-ingest',
                                        self_signed=True)


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

    def noutbox(self, kind=None):
        """Rows in the outbox (kind 0: records, 1: summaries; None: all)."""
        try:
            con = sqlite3.connect('file:%s?mode=ro' % self.store, uri=True, timeout=5)
            try:
                if kind is None:
                    return con.execute('SELECT count(*) FROM outbox').fetchone()[0]
                return con.execute('SELECT count(*) FROM outbox WHERE kind = ?', (kind,)).fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error:
            return -1

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


def log_lines(a, *words):
    return [ln for ln in a.log().splitlines() if all(w in ln for w in words)]


def permanent_400():
    """A permanent 4xx (400 for one item): that item is dropped with an error line naming its key, the others delivered."""
    BAD = 'f003.exe'

    def refuse_bad(c, rec):
        try:
            its = items_of(rec)
        except ValueError:
            its = []
        if any(i.get('FileName') == BAD for i in its):
            return 400, {'Content-Type': 'application/json'}, b'{"error":"field SHA1 is invalid"}'
        return 200, {}, b''
    c = new_collector()
    c.default(JSON_PATH, refuse_bad)
    a = Agent('json-400', [json_output(c, send_records='all')])
    for i in range(7):  # present before the start: one first batch holds all of them
        put(os.path.join(a.root, 'f%03d.exe' % i), MMSOFT)
    a.start()
    try:
        def good_keys():
            return {r['IdempotencyKey'] for r in records(delivered(c, JSON_PATH)) if r.get('FileName') != BAD}
        ok = wait_for(lambda: len(good_keys()) >= 6 and log_lines(a, 'refused permanently'), 30)
        t.ok(ok, '400: the 6 good records arrive and a permanent refusal is logged', a.log()[-2500:])
        refused = [r for r in c.got(JSON_PATH) if r['status'] == 400]
        bad_keys = {i['IdempotencyKey'] for r in refused for i in items_of(r) if i.get('FileName') == BAD}
        t.eq(len(bad_keys), 1, '400: the collector refused requests holding the one bad item')
        key = next(iter(bad_keys), '?')
        lines = log_lines(a, 'refused permanently')
        t.ok(len(lines) == 1 and ('item %s refused permanently' % key) in lines[0] and 'dropped' in lines[0],
             '400: one error line names the dropped item\'s idempotency key (%s)' % key, lines)
        t.ok(lines and 'ERROR' in lines[0].upper() and 'HTTP 400' in lines[0], '400: it is an error and says HTTP 400',
             lines[:1])
        t.ok(refused and len(items_of(refused[-1])) == 1, '400: the batch was split until the bad item was alone',
             [len(items_of(r)) for r in c.got(JSON_PATH)])
        acc = delivered(c, JSON_PATH)
        t.ok(not any(i.get('FileName') == BAD for i in acc), '400: the bad item was never accepted')
        t.ok(len(good_keys()) == 6 and all(r['ReportId'] for r in records(acc)),
             '400: every other record was delivered (%d)' % len(good_keys()))
        t.ok(wait_for(lambda: summaries(delivered(c, JSON_PATH)), 5), '400: the summary was delivered')
        n_bad = len(refused)
        time.sleep(1.0)
        t.eq(len([r for r in c.got(JSON_PATH) if r['status'] == 400]), n_bad,
             '400: the dropped item is not sent again')
        t.ok(wait_for(lambda: a.noutbox() == 0, 5), '400: the outbox is empty (nothing stuck behind it)',
             a.noutbox())
    finally:
        stop_ok(a, '400')
        c.stop()


def pin_mismatch():
    """pin_sha256 that does not match the server's key: nothing sent, a clear log line."""
    c = new_collector()
    a = Agent('json-pin-bad', [json_output(c, pin_sha256='"%s"' % hc.spki_pin(WRONG_CERT))]).start()
    try:
        drop(a, 2)
        t.ok(wait_for(lambda: a.nrecords() >= 2, 15), 'pin mismatch: 2 records stored')
        ok = wait_for(lambda: log_lines(a, 'send failed'), 15)
        lines = log_lines(a, 'send failed')
        t.ok(ok, 'pin mismatch: the failure is logged', a.log()[-1500:])
        t.ok(lines and 'pinned public key' in lines[0] and 'TLS' in lines[0],
             'pin mismatch: the line says the public key does not match the pin', lines[:1])
        time.sleep(2.5)  # a few retries (max_backoff_s 2)
        t.eq(len(c.got()), 0, 'pin mismatch: no HTTP request reached the server')
        t.ok(a.noutbox(0) >= 2, 'pin mismatch: the records are kept in the outbox', a.noutbox(0))
        t.ok(len(log_lines(a, 'send failed')) == 1, 'pin mismatch: logged once per outage, not per attempt',
             log_lines(a, 'send failed'))
    finally:
        stop_ok(a, 'pin mismatch')
        c.stop()


def pin_match():
    """pin_sha256 matching the server's key (bare and sha256// forms): delivered."""
    c = new_collector()
    pin = hc.spki_pin(CERT)
    a = Agent('json-pin-ok', [json_output(c, pin_sha256='"%s"' % pin, send_records='all'),
                              json_output(c, url=c.base + JSON_PATH + '2', pin_sha256='"sha256//%s"' % pin,
                                          send_records='all')]).start()
    try:
        drop(a, 2)
        ok = wait_for(lambda: len(records(delivered(c, JSON_PATH))) >= 2 and
                      len(records(delivered(c, JSON_PATH + '2'))) >= 2, 20)
        t.ok(ok, 'pin match: both outputs delivered the 2 records', a.log()[-1500:])
        t.ok(not log_lines(a, 'send failed'), 'pin match: no send failure', log_lines(a, 'send failed'))
    finally:
        stop_ok(a, 'pin match')
        c.stop()


def mutual_tls():
    """https_json with mutual TLS: the right client certificate is accepted; none, or a foreign one, is not."""
    cs = {k: hc.Collector(CERT, KEY, client_ca=CA).start() for k in ('good', 'none', 'rogue')}
    cfg = {'good': {'client_certificate': '"%s"' % CLIENT_CERT, 'client_key': '"%s"' % CLIENT_KEY},
           'none': {},
           'rogue': {'client_certificate': '"%s"' % ROGUE_CERT, 'client_key': '"%s"' % ROGUE_KEY}}
    ag = {}
    try:
        for k, c in cs.items():  # three agents at once: the scenario takes as long as one
            o = json_output(c, **cfg[k])
            del o['bearer_token_env']
            ag[k] = Agent('json-mtls-' + k, [o]).start()
            drop(ag[k], 2)
        good, none, rogue = cs['good'], cs['none'], cs['rogue']
        ok = wait_for(lambda: len(records(delivered(good, JSON_PATH))) >= 2, 20)
        t.ok(ok, 'mTLS: with the client certificate signed by the test CA, the records arrive',
             ag['good'].log()[-1500:])
        peers = {r.get('peer', {}).get('commonName') for r in good.got(JSON_PATH)}
        t.eq(peers, {'signwatch agent'}, 'mTLS: the server saw the agent\'s client certificate')
        t.eq(good.handshake_failures, 0, 'mTLS: no failed handshake with the right certificate')
        for k in ('none', 'rogue'):
            c, a = cs[k], ag[k]
            what = 'without a client certificate' if k == 'none' else 'with a certificate of another CA'
            t.ok(wait_for(lambda: a.nrecords() >= 2 and log_lines(a, 'send failed'), 15),
                 'mTLS %s: the failure is logged' % what, a.log()[-1500:])
            time.sleep(0.5)
            t.eq(delivered(c, JSON_PATH), [], 'mTLS %s: nothing accepted' % what)
            t.ok(c.handshake_failures >= 1, 'mTLS %s: the server refused the handshake' % what,
                 c.handshake_errors[:2])
            # every failed attempt (the warn line and the debug ones after it): libcurl's own text
            # varies with timing (the TLS 1.3 alert, or a broken pipe, getpeername, poll)
            lines = log_lines(a, 'send failed') + log_lines(a, 'attempt', 'failed')
            t.ok(lines and all('certificate' in ln.lower() for ln in lines),
                 'mTLS %s: every failure line says it is about the client certificate' % what,
                 [ln for ln in lines if 'certificate' not in ln.lower()][:3])
            t.ok(a.noutbox(0) >= 2, 'mTLS %s: the records are kept in the outbox' % what, a.noutbox(0))
    finally:
        for k, a in ag.items():
            stop_ok(a, 'mTLS ' + k)
        for c in cs.values():
            c.stop()


def b64url_decode(s):
    import base64
    return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))


def openssl_verify(pub, data, sig, d):
    with open(os.path.join(d, 'data.txt'), 'wb') as f:
        f.write(data)
    with open(os.path.join(d, 'sig.bin'), 'wb') as f:
        f.write(sig)
    r = subprocess.run(['openssl', 'dgst', '-sha256', '-verify', pub, '-signature', os.path.join(d, 'sig.bin'),
                        os.path.join(d, 'data.txt')], capture_output=True, text=True)
    return r.returncode == 0 and 'Verified OK' in r.stdout, (r.stdout + r.stderr).strip()


def li_certificate():
    """logs_ingestion with a certificate credential: an RS256 client assertion (x5t, aud, iss, sub, exp) that verifies."""
    import base64
    import hashlib
    import urllib.parse
    import uuid
    d = os.path.join(TMP, 'jwt')
    os.makedirs(d, exist_ok=True)
    pub = os.path.join(d, 'pub.pem')
    with open(pub, 'wb') as f:
        f.write(subprocess.run(['openssl', 'x509', '-in', APP_CERT, '-pubkey', '-noout'], check=True,
                               capture_output=True).stdout)
    der = subprocess.run(['openssl', 'x509', '-in', APP_CERT, '-outform', 'der'], check=True,
                         capture_output=True).stdout
    want_x5t = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b'=').decode()
    access_tokens = []

    def token(c, rec):
        tok = 'AT-%s' % uuid.uuid4().hex
        with c.lock:
            access_tokens.append(tok)
            c.valid_tokens.add(tok)
        return 200, {'Content-Type': 'application/json'}, json.dumps(
            {'token_type': 'Bearer', 'expires_in': 3599, 'access_token': tok}).encode()
    c = new_collector()
    c.default(TOKEN_PATH, token)
    o = li_output(c, client_certificate='"%s"' % APP_CERT, client_key='"%s"' % APP_KEY)
    del o['client_secret_env']
    a = Agent('li-cert', [o]).start()
    try:
        drop(a, 2)
        ok = wait_for(lambda: len(records(delivered(c, LI_PATH))) >= 2, 20)
        t.ok(ok, 'li cert: the records arrive with a certificate credential', a.log()[-2000:])
        toks = c.got(TOKEN_PATH)
        t.ok(toks, 'li cert: a token was requested')
        form = {k: v[0] for k, v in urllib.parse.parse_qs(toks[0]['body'].decode()).items()} if toks else {}
        t.eq(form.get('grant_type'), 'client_credentials', 'li cert: grant_type=client_credentials')
        t.eq(form.get('client_id'), CLIENT, 'li cert: client_id')
        t.eq(form.get('scope'), 'https://monitor.azure.com//.default', 'li cert: scope')
        t.eq(form.get('client_assertion_type'), 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
             'li cert: client_assertion_type is jwt-bearer')
        t.ok('client_secret' not in form, 'li cert: no client_secret in the request', sorted(form))
        jwt = form.get('client_assertion', '')
        parts = jwt.split('.')
        t.eq(len(parts), 3, 'li cert: client_assertion is a JWS compact serialisation (3 parts)')

        def check_jwt(parts, tag):
            hdr = json.loads(b64url_decode(parts[0]))
            pl = json.loads(b64url_decode(parts[1]))
            now = time.time()
            t.eq(hdr.get('alg'), 'RS256', '%s: header alg RS256' % tag)
            t.eq(hdr.get('x5t'), want_x5t, '%s: header x5t = base64url(SHA-1 of the certificate DER)' % tag)
            t.ok(all('=' not in p and '+' not in p and '/' not in p for p in parts),
                 '%s: base64url without padding' % tag, parts)
            t.eq(pl.get('aud'), c.base + TOKEN_PATH, '%s: aud = the token URL' % tag)
            t.ok(pl.get('iss') == CLIENT and pl.get('sub') == CLIENT, '%s: iss = sub = client_id' % tag, pl)
            t.ok(isinstance(pl.get('exp'), int) and isinstance(pl.get('nbf'), int) and pl['exp'] > pl['nbf'],
                 '%s: exp > nbf' % tag, pl)
            t.ok(pl.get('nbf', 1e12) <= now + 5 and pl.get('exp', 0) > now and pl['exp'] - now <= 3600,
                 '%s: valid now, for at most an hour (nbf %s exp %s now %d)' % (tag, pl.get('nbf'),
                                                                                  pl.get('exp'), now))
            t.ok(pl.get('jti'), '%s: a jti' % tag, pl)
            sig = b64url_decode(parts[2])
            t.eq(len(sig), 256, '%s: the signature is one RSA-2048 block' % tag)
            good, out = openssl_verify(pub, ('%s.%s' % (parts[0], parts[1])).encode(), sig, d)
            t.ok(good, '%s: the RS256 signature verifies with the certificate\'s public key (openssl dgst)' % tag,
                 out)
            bad, _ = openssl_verify(pub, ('%s.%sx' % (parts[0], parts[1])).encode(), sig, d)
            t.ok(not bad, '%s: (control) a changed payload does not verify' % tag)
            return pl
        pl1 = check_jwt(parts, 'li cert') if len(parts) == 3 else {}
        posts = [r for r in c.got(LI_PATH) if r['status'] == 204]
        t.ok(posts and posts[0]['headers'].get('authorization') == 'Bearer ' + access_tokens[0],
             'li cert: the ingestion call carries the token got with the assertion')
        # a 401 makes the agent ask again: a fresh assertion (new jti), still valid
        c.invalidate_tokens()
        drop(a, 1, prefix='g')
        ok = wait_for(lambda: len(records(delivered(c, LI_PATH))) >= 3 and len(c.got(TOKEN_PATH)) >= 2, 20)
        t.ok(ok, 'li cert: after a 401 a new token is got and the record delivered', a.log()[-1500:])
        if len(c.got(TOKEN_PATH)) >= 2:
            f2 = {k: v[0] for k, v in urllib.parse.parse_qs(c.got(TOKEN_PATH)[1]['body'].decode()).items()}
            p2 = f2.get('client_assertion', '').split('.')
            pl2 = check_jwt(p2, 'li cert refresh') if len(p2) == 3 else {}
            t.ok(pl2.get('jti') and pl2.get('jti') != pl1.get('jti'), 'li cert: the new assertion has a new jti')
        log = a.log()
        key_body = [ln for ln in open(APP_KEY).read().splitlines() if ln and not ln.startswith('-----')]
        t.ok(not any(tok in log for tok in access_tokens), 'li cert: the access token never appears in the log')
        t.ok(parts[-1] not in log and parts[0] + '.' not in log, 'li cert: the assertion never appears in the log')
        t.ok(not any(ln in log for ln in key_body), 'li cert: no line of the private key appears in the log')
    finally:
        stop_ok(a, 'li cert')
        c.stop()


for s in (logs_ingestion_shape, https_json_shape, token_refresh_401, retry_after_429, retry_500, slow_answer,
          dropped_connection, collector_down, sigkill_mid_batch, wrong_ca, outbox_cap, permanent_400,
          pin_mismatch, pin_match, mutual_tls, li_certificate):
    # SW_ONLY=name,name runs a subset (while working on a scenario)
    if os.environ.get('SW_ONLY') and s.__name__ not in os.environ['SW_ONLY'].split(','):
        continue
    scenario(s)
if not t.failed:
    shutil.rmtree(TMP, ignore_errors=True)
else:
    t.comment('files kept in %s' % TMP)
t.done()
