"""A recording HTTPS server for the forwarding tests (python3 stdlib only).

It stands in for the Entra ID token endpoint, the Azure Monitor Logs
Ingestion endpoint and an NDJSON collector, on 127.0.0.1, with a server
certificate from a test CA made with the `openssl` command line
(make_pki). Every request is recorded (method, path, query, headers, body
decoded from gzip) when it arrives and updated with the answer given;
answers are scriptable per path:

    c.script('/x', [500, ('retry_after', 429, 1), 'drop', ('slow', 3.0, 204), 401])

consumes one action per request, then falls back to the path's default
(set with c.default(path, fn) or the built-in ones: token paths answer a
fresh token, everything else 204). An action is a status code; 'drop'
(read the request, close the connection without an answer);
('slow', seconds, status); ('retry_after', status, seconds).

The server can be stopped and started again on the same port (collector
down for a while), and counts handshakes that failed (a client that does
not trust the certificate, or, with client_ca, a client that has no
certificate signed by it: mutual TLS). With client_ca every request
record carries the client certificate's subject ('peer').
"""
import gzip
import http.server
import json
import os
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse


def run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_pki(d, name='test'):
    """A CA and a server certificate for 127.0.0.1/localhost in d; returns
    (ca.pem, server.pem, server.key)."""
    os.makedirs(d, exist_ok=True)
    ca_key, ca = os.path.join(d, name + '-ca.key'), os.path.join(d, name + '-ca.pem')
    key, csr, crt = (os.path.join(d, name + '-server' + s) for s in ('.key', '.csr', '.pem'))
    ext = os.path.join(d, name + '-ext.cnf')
    with open(ext, 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n'
                'keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n')
    run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', ca_key, '-out', ca,
         '-days', '2', '-subj', '/CN=signwatch %s CA' % name,
         '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], d)
    run(['openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr,
         '-subj', '/CN=127.0.0.1'], d)
    run(['openssl', 'x509', '-req', '-in', csr, '-CA', ca, '-CAkey', ca_key, '-CAcreateserial',
         '-out', crt, '-days', '2', '-extfile', ext], d)
    return ca, crt, key


def make_client_cert(d, ca_name='test', name='client', cn='signwatch agent', self_signed=False):
    """A client certificate (extendedKeyUsage clientAuth) and its RSA key in
    d, signed by the CA make_pki(d, ca_name) made, or self-signed; returns
    (cert.pem, key.pem)."""
    os.makedirs(d, exist_ok=True)
    key, csr, crt = (os.path.join(d, name + s) for s in ('.key', '.csr', '.pem'))
    if self_signed:
        run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt,
             '-days', '2', '-subj', '/CN=' + cn], d)
        return crt, key
    ca_key, ca = os.path.join(d, ca_name + '-ca.key'), os.path.join(d, ca_name + '-ca.pem')
    ext = os.path.join(d, name + '-ext.cnf')
    with open(ext, 'w') as f:
        f.write('basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n')
    run(['openssl', 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=' + cn], d)
    run(['openssl', 'x509', '-req', '-in', csr, '-CA', ca, '-CAkey', ca_key, '-CAcreateserial',
         '-out', crt, '-days', '2', '-extfile', ext], d)
    return crt, key


def spki_pin(cert):
    """base64 SHA-256 of cert's SubjectPublicKeyInfo (pin_sha256), as
    docs/CONFIG.md says to make it."""
    pub = subprocess.run(['openssl', 'x509', '-in', cert, '-pubkey', '-noout'], check=True,
                         capture_output=True).stdout
    der = subprocess.run(['openssl', 'pkey', '-pubin', '-outform', 'der'], input=pub, check=True,
                         capture_output=True).stdout
    import base64
    import hashlib
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Collector:
    def __init__(self, cert, key, port=None, client_ca=None):
        self.cert, self.key = cert, key
        self.client_ca = client_ca
        self.port = port or free_port()
        self.lock = threading.Lock()
        self.requests = []
        self.scripts = {}
        self.defaults = {}
        self.tokens = []          # tokens handed out, in order
        self.valid_tokens = set()
        self.handshake_failures = 0
        self.handshake_errors = []  # why each failed handshake failed (ssl's text)
        self.active = 0
        self.max_active = {}      # path -> most requests in flight at once
        self.httpd = None
        self.thread = None

    @property
    def base(self):
        return 'https://127.0.0.1:%d' % self.port

    # ---- scripting ----
    def script(self, path, actions):
        with self.lock:
            self.scripts.setdefault(path, []).extend(actions)

    def default(self, path, fn):
        """fn(collector, request_record) -> (status, headers, body bytes)"""
        self.defaults[path] = fn

    def invalidate_tokens(self):
        with self.lock:
            self.valid_tokens.clear()

    def next_action(self, path):
        with self.lock:
            q = self.scripts.get(path)
            return q.pop(0) if q else None

    # ---- records ----
    def got(self, path=None, status=None):
        with self.lock:
            return [r for r in self.requests
                    if (path is None or r['path'] == path) and (status is None or r.get('status') == status)]

    # ---- life cycle ----
    def start(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        if self.client_ca:  # mutual TLS: a client certificate signed by client_ca is required
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.client_ca)
        collector = self

        class Server(http.server.ThreadingHTTPServer):
            allow_reuse_address = True
            daemon_threads = True

            def finish_request(self, request, client_address):
                # the handshake in the request's thread, not in accept()
                try:
                    tls = ctx.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as e:
                    with collector.lock:
                        collector.handshake_failures += 1
                        collector.handshake_errors.append(str(e))
                    return
                self.RequestHandlerClass(tls, client_address, self)

        self.httpd = Server(('127.0.0.1', self.port), make_handler(self))
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={'poll_interval': 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None


def token_answer(c, rec):
    with c.lock:
        tok = 'tok-%d' % (len(c.tokens) + 1)
        c.tokens.append(tok)
        c.valid_tokens.add(tok)
    return 200, {'Content-Type': 'application/json'}, json.dumps(
        {'token_type': 'Bearer', 'expires_in': 3599, 'ext_expires_in': 3599, 'access_token': tok}).encode()


def make_handler(c):
    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'

        def log_message(self, *a):
            pass

        def answer(self, status, headers=None, body=b''):
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def handle_any(self):
            u = urllib.parse.urlsplit(self.path)
            n = int(self.headers.get('Content-Length') or 0)
            raw = self.rfile.read(n) if n else b''
            body = raw
            if (self.headers.get('Content-Encoding') or '').lower() == 'gzip':
                try:
                    body = gzip.decompress(raw)
                except OSError:
                    body = b'<bad gzip>'
            rec = {'method': self.command, 'path': u.path, 'query': urllib.parse.parse_qs(u.query),
                   'rawquery': u.query, 'headers': {k.lower(): v for k, v in self.headers.items()},
                   'raw_len': len(raw), 'body': body, 't': time.monotonic(), 'status': None}
            if c.client_ca:
                pc = self.connection.getpeercert() or {}
                rec['peer'] = dict(x[0] for x in pc.get('subject', ()))
            with c.lock:
                c.requests.append(rec)
                c.active += 1
                c.max_active[u.path] = max(c.max_active.get(u.path, 0), c.active)
            try:
                act = c.next_action(u.path)
                if act == 'drop':
                    rec['status'] = 'dropped'
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                ra = None
                if isinstance(act, tuple) and act[0] == 'slow':
                    time.sleep(act[1])
                    act = act[2]
                if isinstance(act, tuple) and act[0] == 'retry_after':
                    ra = act[2]
                    act = act[1]
                if isinstance(act, int):
                    status, headers, out = act, {}, b''
                    if ra is not None:
                        headers['Retry-After'] = str(ra)
                    if status == 401:
                        headers['WWW-Authenticate'] = 'Bearer'
                elif u.path in c.defaults:
                    status, headers, out = c.defaults[u.path](c, rec)
                elif u.path.endswith('/oauth2/v2.0/token'):
                    status, headers, out = token_answer(c, rec)
                else:
                    status, headers, out = 204, {}, b''
                rec['status'] = status
                rec['t_answer'] = time.monotonic()
                try:
                    self.answer(status, headers, out)
                except OSError:
                    rec['status'] = 'client gone'
            finally:
                with c.lock:
                    c.active -= 1

        do_POST = handle_any
        do_GET = handle_any
        do_PUT = handle_any

    return H
