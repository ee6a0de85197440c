#!/usr/bin/env python3
"""Failure drills for tienda behind a real nginx, with real kills and real outages.

Starts, all on loopback, on free ports, with data in one temporary folder that is deleted at the
end (even on failure or Ctrl-C): a PostgreSQL cluster of its own (initdb), a Redis of its own,
three tienda instances and nginx with deploy/nginx/tienda.conf (only the upstream addresses and
the listen port changed). A load generator (threads, keep-alive connections) then runs:

  1 steady      mixed load through nginx: zero failures
  2 sigkill     one instance SIGKILLed mid-load: failures only in flight on it, counted;
                retried keyed writes leave no duplicate
  3 rolling     SIGTERM, exit, start, ready, 1 s, next: zero failures, zero 5xx
  4 postgres    PostgreSQL stopped mid-load then started: 503 + Retry-After meanwhile, never
                slower than the request timeout, readiness false, recovery without restarts
  5 redis       Redis stopped mid-load: every request succeeds, readiness "degraded", then back
  6 kill9       kill -9 of tienda under write load, SQLite and PostgreSQL: every acknowledged
                write present, stock equals its ledger for every product
  7 fresh       a write through nginx, then 100 ms after its answer reads through nginx (other
                instances, their caches primed; TIENDA_CACHE=redis): zero stale, steady and
                across the Redis stop of drill 5
  jobs          an import of 10,000 rows through nginx (5 batches of PostgreSQL's default 2,000),
                its `tienda worker` SIGKILLed mid-job: another worker takes it over after the
                lease; every sku once, stock = ledger
  webhooks      a receiver of the drill's own subscribed to product events: every committed
                product version's event arrived, every signature (Standard Webhooks) valid

Usage: deploy/drill/run.py [--bin target/debug/tienda]   (python3 stdlib only)
Exit status 0 when every drill holds; a summary table of the figures is printed either way.
"""

import argparse
import base64
from collections import Counter
from decimal import Decimal
import hashlib
import hmac
import http.server
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ADMIN = ("drill@tienda.test", "drill-password-1")
SECRET = "drill-secret-0123456789abcdef0123456789abcdef"
REQUEST_TIMEOUT = 5  # TIENDA_REQUEST_TIMEOUT_SECS for the drill
DRAIN = 5  # TIENDA_SHUTDOWN_DRAIN_SECS, as in the deployment files
HOT = 12  # products the stock adjustments go to
DEADLINE = time.monotonic() + 500  # the whole drill, set-up included (.ci/run: timeout 600)
LEASE = 3  # TIENDA_JOB_LEASE_SECS: a killed worker's job is taken over after this
# --baseline: the set-up the issue started from (nginx defaults max_fails=1 fail_timeout=10s,
# retries on 503, no drain period in tienda), for the rolling restart only: the comparison.
BASELINE = False


def log(*args):
    print(f"[drill {time.strftime('%H:%M:%S')}]", *args, flush=True)


_TAKEN = set()


def free_port():
    """A free port below the kernel's ephemeral range: a port the kernel hands out (bind to 0)
    can be taken meanwhile as the source port of an outgoing connection, before our server binds
    it (seen once: `Address already in use`)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    while True:
        port = random.randrange(max(1024, low - 12000), low)
        if port in _TAKEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _TAKEN.add(port)
        return port


def is_root():
    return os.geteuid() == 0


def as_postgres(argv):
    return ["runuser", "-u", "postgres", "--", *argv] if is_root() else argv


def check_budget():
    if time.monotonic() > DEADLINE:
        raise SystemExit("drill: over its time budget")


# ---------------------------------------------------------------- HTTP -----------------------

class Client:
    """One keep-alive connection (reopened after an error), JSON in and out."""

    def __init__(self, port, token=None):
        self.port, self.token, self.conn = port, token, None

    def request(self, method, path, body=None, headers=None, timeout=REQUEST_TIMEOUT + 10):
        """(status, headers dict, parsed body or None); status 0 on a transport error."""
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self.conn.request(method, path, body=data, headers=h)
                r = self.conn.getresponse()
                raw = r.read()
                headers_out = {k.lower(): v for k, v in r.getheaders()}
                if headers_out.get("connection", "").lower() == "close":
                    self.close()
                try:
                    parsed = json.loads(raw) if raw else None
                except ValueError:
                    parsed = None
                return r.status, headers_out, parsed
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as e:
                # A kept-alive connection nginx closed while idle: the request never left.
                self.close()
                if attempt == 0 and isinstance(e, (http.client.RemoteDisconnected, BrokenPipeError)):
                    continue
                return 0, {"error": repr(e)}, None
            except (OSError, http.client.HTTPException) as e:
                self.close()
                return 0, {"error": repr(e)}, None
        return 0, {"error": "unreachable"}, None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def wait_until(what, predicate, timeout=30, every=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")


# ---------------------------------------------------------------- processes ------------------

class Stack:
    def __init__(self, binary, base):
        self.binary, self.base = binary, base
        self.procs = []  # everything we started, stopped in reverse at the end
        self.pg_bin = self.find_pg_bin()
        self.pg_port, self.redis_port, self.nginx_port = free_port(), free_port(), free_port()
        self.ports = [free_port() for _ in range(3)]
        self.instances = [None, None, None]
        self.redis = None
        self.nginx = None
        self.worker = None

    @staticmethod
    def find_pg_bin():
        versions = sorted(
            os.path.join("/usr/lib/postgresql", v, "bin")
            for v in os.listdir("/usr/lib/postgresql")
            if os.path.exists(os.path.join("/usr/lib/postgresql", v, "bin", "initdb"))
        )
        if not versions:
            raise SystemExit("drill: no initdb under /usr/lib/postgresql/*/bin")
        return versions[-1]

    # PostgreSQL, our own cluster
    def pg_ctl(self, *args):
        argv = as_postgres([os.path.join(self.pg_bin, "pg_ctl"), "-D", f"{self.base}/pg", *args])
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)

    def pg_start(self):
        opts = (f"-p {self.pg_port} -k {self.base} -c listen_addresses=127.0.0.1 -c fsync=off "
                f"-c shared_buffers=16MB -c max_connections=60")
        self.pg_ctl("-w", "-t", "30", "-o", opts, "-l", f"{self.base}/pg.log", "start")

    def pg_stop(self, mode="fast"):
        self.pg_ctl("-w", "-t", "30", "-m", mode, "stop")

    def start_postgres(self):
        if is_root():
            shutil.chown(self.base, "postgres", "postgres")
        subprocess.run(as_postgres([os.path.join(self.pg_bin, "initdb"), "-D", f"{self.base}/pg",
                                    "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"]),
                       check=True, stdout=subprocess.DEVNULL)
        self.pg_start()
        subprocess.run(as_postgres([os.path.join(self.pg_bin, "createdb"), "-h", "127.0.0.1",
                                    "-p", str(self.pg_port), "-U", "postgres", "drill"]), check=True)
        self.database_url = f"postgres://postgres@127.0.0.1:{self.pg_port}/drill"

    def psql(self, sql, database="drill"):
        subprocess.run(as_postgres([os.path.join(self.pg_bin, "psql"), "-h", "127.0.0.1", "-p",
                                    str(self.pg_port), "-U", "postgres", "-d", database, "-Xqc", sql]),
                       check=True, stdout=subprocess.DEVNULL)

    def start_redis(self):
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.base],
            stdout=open(f"{self.base}/redis.log", "ab"), stderr=subprocess.STDOUT)
        self.procs.append(self.redis)
        wait_until("redis", lambda: self.port_open(self.redis_port))

    def stop_redis(self):
        self.redis.terminate()
        self.redis.wait(10)

    @staticmethod
    def port_open(port):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            return False

    def tienda_env(self, port, database_url, redis=True):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": database_url,
            "TIENDA_ADDR": f"127.0.0.1:{port}",
            "TIENDA_JWT_SECRET": SECRET,
            "TIENDA_ADMIN_EMAIL": ADMIN[0],
            "TIENDA_ADMIN_PASSWORD": ADMIN[1],
            "TIENDA_TRUSTED_PROXIES": "127.0.0.1",
            "TIENDA_LOG_FORMAT": "json",
            "RUST_LOG": "warn,tienda=info",
            "TIENDA_SHUTDOWN_DRAIN_SECS": str(DRAIN),
            "TIENDA_SHUTDOWN_GRACE_SECS": "10",
            "TIENDA_REQUEST_TIMEOUT_SECS": str(REQUEST_TIMEOUT),
            "TIENDA_DB_TIMEOUT_SECS": "2",
            "TIENDA_DB_MAX_CONNECTIONS": "10",
            "TIENDA_JOB_LEASE_SECS": str(LEASE),
            "TIENDA_WEBHOOK_ALLOW_PRIVATE": "true",
            "TIENDA_WEBHOOK_RETRY_BASE_MS": "200",
        }
        if redis:
            env["REDIS_URL"] = f"redis://127.0.0.1:{self.redis_port}"
            # Said, not left to `auto`: several instances share the cache's invalidations.
            env["TIENDA_CACHE"] = "redis"
        return env

    def start_worker(self):
        """`tienda worker`: the jobs and webhook deliveries; the instances run none of either
        (TIENDA_WORKERS=0), as deploy/README.md advises with separate workers."""
        env = self.tienda_env(free_port(), self.database_url)
        env["TIENDA_WORKERS"] = "1"
        out = open(f"{self.base}/worker.log", "ab")
        self.worker = subprocess.Popen([self.binary, "worker"], env=env, cwd=self.base, stdout=out,
                                       stderr=subprocess.STDOUT)
        self.procs.append(self.worker)
        time.sleep(0.3)
        if self.worker.poll() is not None:
            raise RuntimeError(f"tienda worker exited: see {self.base}/worker.log")

    def psql_rows(self, sql, database="drill"):
        out = subprocess.run(as_postgres([os.path.join(self.pg_bin, "psql"), "-h", "127.0.0.1", "-p",
                                          str(self.pg_port), "-U", "postgres", "-d", database, "-XAtF,",
                                          "-c", sql]), check=True, stdout=subprocess.PIPE, text=True)
        return [line.split(",") for line in out.stdout.splitlines() if line]

    def spawn_tienda(self, port, database_url, redis=True, name=None, workers=None):
        out = open(f"{self.base}/{name or port}.log", "ab")
        env = self.tienda_env(port, database_url, redis)
        if workers is not None:
            env["TIENDA_WORKERS"] = str(workers)
        proc = subprocess.Popen([self.binary, "serve"], env=env,
                                cwd=self.base, stdout=out, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        wait_until(f"tienda on {port} ready", lambda: self.ready(port) or proc.poll() is not None, 30)
        if proc.poll() is not None:
            raise RuntimeError(f"tienda on {port} exited: see {self.base}/{name or port}.log")
        return proc

    def start_instance(self, i):
        self.instances[i] = self.spawn_tienda(self.ports[i], self.database_url, workers=0)

    @staticmethod
    def ready(port):
        status, _, body = Client(port).request("GET", "/health/ready", timeout=3)
        return status == 200 and body and body.get("status") == "ready"

    def start_nginx(self):
        conf_dir = f"{self.base}/nginx"
        os.makedirs(conf_dir)
        with open(os.path.join(ROOT, "deploy/nginx/tienda.conf")) as f:
            site = f.read()
        lines = []
        for line in site.splitlines():
            stripped = line.strip()
            if stripped.startswith("server 127.0.0.1:808"):
                if stripped.startswith("server 127.0.0.1:8081"):
                    for port in self.ports:
                        server = line.replace("127.0.0.1:8081", f"127.0.0.1:{port}")
                        if BASELINE:
                            server = f"    server 127.0.0.1:{port};"
                        lines.append(server)
                continue
            if BASELINE and stripped in ("keepalive_timeout 4s;", "proxy_next_upstream_timeout 10s;"):
                continue
            if BASELINE and stripped == "proxy_next_upstream error timeout http_502;":
                lines.append("    proxy_next_upstream error timeout http_502 http_503;")
                continue
            if stripped == "listen 80;":
                lines.append(line.replace("listen 80;", f"listen 127.0.0.1:{self.nginx_port};"))
                continue
            if stripped == "listen [::]:80;":
                continue
            lines.append(line)
        with open(f"{conf_dir}/tienda.conf", "w") as f:
            f.write("\n".join(lines) + "\n")
        user = "user root;\n" if is_root() else ""
        with open(f"{conf_dir}/nginx.conf", "w") as f:
            f.write(f"""{user}worker_processes 2;
daemon off;
pid {conf_dir}/nginx.pid;
error_log {conf_dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    log_format drill '$status $request_method $upstream_addr $upstream_status $request_time';
    access_log {conf_dir}/access.log drill;
    client_body_temp_path {conf_dir}/body;
    proxy_temp_path {conf_dir}/proxy;
    fastcgi_temp_path {conf_dir}/fastcgi;
    uwsgi_temp_path {conf_dir}/uwsgi;
    scgi_temp_path {conf_dir}/scgi;
    include {conf_dir}/tienda.conf;
}}
""")
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        subprocess.run([nginx, "-t", "-q", "-p", conf_dir, "-c", f"{conf_dir}/nginx.conf"], check=True)
        self.nginx = subprocess.Popen([nginx, "-p", conf_dir, "-c", f"{conf_dir}/nginx.conf"],
                                      stdout=subprocess.DEVNULL, stderr=open(f"{conf_dir}/stderr.log", "ab"))
        self.procs.append(self.nginx)
        wait_until("nginx", lambda: self.port_open(self.nginx_port))

    def teardown(self):
        # SIGTERM first: nginx's master stops its workers on SIGTERM, while a SIGKILLed master
        # leaves them running.
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for proc in reversed(self.procs):
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        try:
            subprocess.run(as_postgres([os.path.join(self.pg_bin, "pg_ctl"), "-D", f"{self.base}/pg",
                                        "-m", "immediate", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        except (OSError, subprocess.SubprocessError):
            pass


# ---------------------------------------------------------------- load -----------------------

class Load:
    """Worker threads sending a mix of reads and keyed writes through nginx, recording each
    answer. Keyed writes that fail are retried with the same key (a client's duty)."""

    def __init__(self, port, token, hot, threads=6, mix=None):
        self.port, self.token, self.hot, self.threads = port, token, hot, threads
        # PATCH carries no key: nginx never passes it to a second instance once sent, so it
        # shows whether a restart loses requests on connections being closed.
        self.mix = mix or {"get": 5, "list": 2, "create": 1, "adjust": 2, "patch": 1}
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.results = []  # (t, op, status, seconds, retry_after, content_type)
        self.acked_adjustments = {}  # key -> (product id, delta)
        self.acked_products = {}  # key -> id
        self.unresolved = set()  # keyed writes whose outcome stayed unknown after retries
        self.workers = []

    def start(self):
        for n in range(self.threads):
            t = threading.Thread(target=self.run, args=(n,), daemon=True)
            t.start()
            self.workers.append(t)
        return self

    def stop(self):
        self.stop_flag.set()
        for t in self.workers:
            t.join(REQUEST_TIMEOUT + 30)
        return self

    def record(self, op, status, took, headers):
        with self.lock:
            self.results.append((time.monotonic(), op, status, took,
                                 headers.get("retry-after"), headers.get("content-type", "")))

    def run(self, n):
        rng = random.Random(n)
        client = Client(self.port, self.token)
        ops = [op for op, w in self.mix.items() for _ in range(w)]
        while not self.stop_flag.is_set():
            op = rng.choice(ops)
            if op == "login" and n != 0:
                op = "get"  # one thread logs in: concurrent logins of one email are throttled
            if op == "get":
                self.timed(client, op, "GET", f"/api/v1/products/{rng.choice(self.hot)}")
            elif op == "list":
                self.timed(client, op, "GET", f"/api/v1/products?per_page=10&page={rng.randint(1, 3)}")
            elif op == "patch":
                self.timed(client, op, "PATCH", f"/api/v1/products/{rng.choice(self.hot)}",
                           {"description": f"patched by {n}"})
            elif op == "login":
                # Paced: a password hash costs tens of milliseconds; the throttle is the point.
                self.timed(Client(self.port), op, "POST", "/api/v1/auth/login",
                           {"email": ADMIN[0], "password": ADMIN[1]})
                time.sleep(0.2)
            elif op == "create":
                key = f"c-{uuid.uuid4().hex}"
                body = {"name": f"drill {key}", "price": "9.99", "stock": 5, "sku": key[:40]}
                status, body_out = self.keyed(client, op, "/api/v1/products", body, key)
                if status == 201:
                    with self.lock:
                        self.acked_products[key] = body_out["id"]
            else:
                key = f"a-{uuid.uuid4().hex}"
                pid = rng.choice(self.hot)
                delta = rng.choice([1, 2, -1])
                status, _ = self.keyed(client, op, f"/api/v1/products/{pid}/stock-adjustments",
                                       {"delta": delta, "reason": key}, key)
                if status == 201:
                    with self.lock:
                        self.acked_adjustments[key] = (pid, delta)

    def timed(self, client, op, method, path, body=None, headers=None):
        started = time.monotonic()
        status, h, parsed = client.request(method, path, body, headers)
        self.record(op, status, time.monotonic() - started, h)
        return status, parsed

    def keyed(self, client, op, path, body, key):
        """A POST with an Idempotency-Key, retried with the same key while its outcome is
        unknown (transport error, 5xx, or 409 while the first attempt is still 'in flight')."""
        for attempt in range(4):
            status, parsed = self.timed(client, op if attempt == 0 else op + "-retry", "POST", path,
                                        body, {"Idempotency-Key": key})
            if status in (200, 201) or (400 <= status < 500 and status != 409):
                return status, parsed
            if status == 409 and parsed and parsed.get("type") != "/problems/idempotency-key-in-use":
                return status, parsed
            time.sleep(0.2 * (attempt + 1))
        with self.lock:
            self.unresolved.add(key)
        return status, parsed

    def window(self, since=0.0, until=float("inf")):
        with self.lock:
            return [r for r in self.results if since <= r[0] < until]

    @staticmethod
    def counts(rows):
        first = [r for r in rows if not r[1].endswith("-retry")]
        return {
            "requests": len(rows),
            "failures": sum(1 for r in rows if r[2] == 0 or r[2] >= 500),
            "5xx": sum(1 for r in rows if r[2] >= 500),
            "transport": sum(1 for r in rows if r[2] == 0),
            "first_try_failures": sum(1 for r in first if r[2] == 0 or r[2] >= 500),
            "other_non_2xx": sum(1 for r in rows if 300 <= r[2] < 500 and r[2] != 304),
            "statuses": dict(sorted(Counter(r[2] for r in rows).items())),
            "failed_ops": dict(Counter(r[1] for r in rows if r[2] == 0 or r[2] >= 500)),
            "max_latency": max((r[3] for r in rows), default=0.0),
        }


# ---------------------------------------------------------------- checks ---------------------

def ledger(client, pid):
    entries, page = [], 1
    while True:
        status, _, body = client.request("GET", f"/api/v1/products/{pid}/stock-adjustments?per_page=100&page={page}")
        if status != 200:
            raise RuntimeError(f"ledger of {pid}: {status}")
        entries.extend(body["items"])
        if page >= body.get("total_pages", 1):
            return entries
        page += 1


def verify_writes(port, token, hot, load):
    """Lost acknowledged writes, duplicate keys, and products whose stock is not the ledger's
    sum, read straight from one instance."""
    client = Client(port, token)
    lost = duplicates = mismatched = 0
    reasons = {}
    for pid in hot:
        entries = ledger(client, pid)
        status, _, product = client.request("GET", f"/api/v1/products/{pid}")
        if status != 200:
            raise RuntimeError(f"product {pid}: {status}")
        if sum(e["delta"] for e in entries) != product["stock"]:
            mismatched += 1
        for e in entries:
            reasons[e["reason"]] = reasons.get(e["reason"], 0) + 1
    # The load's reasons are its Idempotency-Keys ("a-..."): one ledger entry each at most.
    duplicates = sum(1 for reason, n in reasons.items() if reason.startswith("a-") and n > 1)
    with load.lock:
        adjustments = dict(load.acked_adjustments)
        products = dict(load.acked_products)
    lost += sum(1 for key in adjustments if reasons.get(key, 0) == 0)
    for key, pid in products.items():
        if client.request("GET", f"/api/v1/products/{pid}")[0] != 200:
            lost += 1
    client.close()
    return {"acked": len(adjustments) + len(products), "lost": lost, "duplicates": duplicates,
            "ledger_mismatch": mismatched, "unresolved": len(load.unresolved)}


# ---------------------------------------------------------------- webhooks -------------------

class Receiver:
    """A webhook endpoint on loopback: records every delivery and checks its Standard Webhooks
    signature (v1, HMAC-SHA256 of "id.timestamp.body" with the secret's base64 key)."""

    def __init__(self):
        self.port = free_port()
        self.secret = None  # set once the subscription answered
        self.lock = threading.Lock()
        self.deliveries = 0
        self.bad_signatures = 0
        self.events = {}  # webhook-id -> (type, product id, version)
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            # Keep-alive: the worker reuses its connections instead of opening one per delivery.
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.receive(self.headers, body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *_):
                pass

        class Server(http.server.ThreadingHTTPServer):
            # The default listen backlog (5) refused connections when the worker's 64 delivery
            # slots opened at once: failed attempts, backed off for minutes, read as lost events.
            request_queue_size = 256

        self.server = Server(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def valid(self, headers, body):
        wid, ts = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
        if not self.secret or not wid or not ts:
            return False
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        mac = hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()
        expected = "v1," + base64.b64encode(mac).decode()
        return any(hmac.compare_digest(sig, expected) for sig in headers.get("webhook-signature", "").split())

    def receive(self, headers, body):
        ok = self.valid(headers, body)
        try:
            event = json.loads(body)
            data = event["data"]
            pid = data["product_id"] if event["type"] == "stock.adjusted" else data["id"]
            entry = (event["type"], pid, data.get("version"))
        except (ValueError, KeyError, TypeError):
            entry = None
        with self.lock:
            self.deliveries += 1
            self.bad_signatures += not ok
            if entry is not None and event.get("type", "").startswith(("product.", "stock.")):
                self.events[headers.get("webhook-id")] = entry

    def versions(self):
        with self.lock:
            return {(pid, version) for _, pid, version in self.events.values()}

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------- drills ---------------------

class Drills:
    def __init__(self, stack):
        self.stack = stack
        self.summary = []  # (name, ok, figures)
        self.redis_down = threading.Event()  # set while drill 5 has Redis stopped
        self.failed = False

    def nginx_log(self):
        """Lines of nginx's access log so far: `status method upstream_addr upstream_status time`."""
        try:
            with open(f"{self.stack.base}/nginx/access.log") as f:
                return f.readlines()
        except OSError:
            return []

    def report(self, name, ok, figures, log_from=None):
        if log_from is not None:
            # Requests nginx passed to a second instance after the first failed (its
            # $upstream_addr lists both): failures the client never saw.
            lines = self.nginx_log()[log_from:]
            figures["nginx_retried"] = sum(1 for line in lines if ", " in line.split(" ", 2)[2])
        self.summary.append((name, ok, figures))
        self.failed |= not ok
        log(f"{name}: {'OK' if ok else 'FAILED'} {json.dumps(figures)}")

    def setup(self):
        s = self.stack
        s.start_postgres()
        s.start_redis()
        for i in range(3):
            s.start_instance(i)
        s.start_worker()
        s.start_nginx()
        status, _, body = Client(s.nginx_port).request("POST", "/api/v1/auth/login",
                                                       {"email": ADMIN[0], "password": ADMIN[1]})
        if status != 200:
            raise RuntimeError(f"login through nginx: {status} {body}")
        self.token = body["access_token"]
        admin = Client(s.nginx_port, self.token)
        self.hot = []
        for n in range(HOT):
            status, _, body = admin.request("POST", "/api/v1/products",
                                            {"name": f"hot {n}", "price": "1.00", "stock": 1000, "sku": f"HOT-{n}"})
            if status != 201:
                raise RuntimeError(f"seed product: {status} {body}")
            self.hot.append(body["id"])
        # Products only the staleness checks write (one writer each), so versions are theirs.
        self.fresh_ids = []
        for n in range(6):
            status, _, body = admin.request("POST", "/api/v1/products",
                                            {"name": f"fresh {n}", "price": "1.00", "stock": 1, "sku": f"FRESH-{n}"})
            if status != 201:
                raise RuntimeError(f"seed product: {status} {body}")
            self.fresh_ids.append(body["id"])
        # Subscribed before any load: every product version from here on has its event.
        self.receiver = Receiver()
        status, _, body = admin.request("POST", "/api/v1/webhooks", {
            "url": f"http://127.0.0.1:{self.receiver.port}/hook", "description": "drill",
            "events": ["product.created", "product.updated", "product.deleted", "stock.adjusted"]})
        if status != 201:
            raise RuntimeError(f"webhook subscription: {status} {body}")
        self.receiver.secret = body["secret"]
        self.subscribed_after = {int(pid): int(v) for pid, v in s.psql_rows("SELECT id, version FROM products")}

    def load(self, **kw):
        return Load(self.stack.nginx_port, self.token, self.hot, **kw).start()

    def steady(self):
        load = self.load()
        time.sleep(12)
        load.stop()
        c = Load.counts(load.results)
        w = verify_writes(self.stack.ports[0], self.token, self.hot, load)
        ok = c["failures"] == 0 and w["lost"] == 0 and w["duplicates"] == 0 and w["ledger_mismatch"] == 0
        self.report("1 steady load", ok, {**c, **w})

    def sigkill(self):
        s = self.stack
        log_from = len(self.nginx_log())
        load = self.load()
        time.sleep(3)
        victim = s.instances[1]
        killed_at = time.monotonic()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        time.sleep(3)
        s.start_instance(1)
        time.sleep(3)
        load.stop()
        c = Load.counts(load.results)
        w = verify_writes(s.ports[0], self.token, self.hot, load)
        # In flight on the victim: at most one request per load thread was on it when it died.
        in_flight_bound = load.threads
        ok = (c["first_try_failures"] <= in_flight_bound and w["duplicates"] == 0 and w["lost"] == 0
              and w["ledger_mismatch"] == 0)
        late = [r for r in load.window(since=killed_at + 1.0) if r[2] == 0 or r[2] >= 500]
        ok &= not late
        self.report("2 sigkill one instance", ok,
                    {**c, **w, "failures_after_1s": len(late), "in_flight_bound": in_flight_bound},
                    log_from)

    def rolling(self):
        s = self.stack
        log_from = len(self.nginx_log())
        load = self.load()
        time.sleep(2)
        started = time.monotonic()
        for i in range(3):
            proc = s.instances[i]
            proc.send_signal(signal.SIGTERM)
            proc.wait(DRAIN + 20)
            s.start_instance(i)
            time.sleep(1)
        took = time.monotonic() - started
        time.sleep(1)
        load.stop()
        c = Load.counts(load.results)
        w = verify_writes(s.ports[0], self.token, self.hot, load)
        ok = c["failures"] == 0 and c["5xx"] == 0 and w["lost"] == 0 and w["duplicates"] == 0
        self.report("3 rolling restart", ok, {**c, **w, "restart_seconds": round(took, 1)}, log_from)

    def postgres(self):
        s = self.stack
        load = self.load(mix={"get": 5, "list": 2, "adjust": 2})
        readiness = {"down_seen": 0}
        stop_probe = threading.Event()

        def probe():
            while not stop_probe.is_set():
                for port in s.ports:
                    status, _, _ = Client(port).request("GET", "/health/ready", timeout=3)
                    if status == 503:
                        readiness["down_seen"] += 1
                time.sleep(0.3)

        prober = threading.Thread(target=probe, daemon=True)
        time.sleep(2)
        prober.start()
        down_at = time.monotonic()
        s.pg_stop("fast")
        time.sleep(3)
        s.pg_start()
        up_at = time.monotonic()
        # Recovery: the first answer that is 2xx again for every kind of request after the start.
        wait_until("recovery", lambda: any(r[2] in (200, 201) and r[0] > up_at for r in load.window(up_at)), 30)
        time.sleep(3)
        stop_probe.set()
        prober.join()
        load.stop()
        during = load.window(down_at, up_at)
        after = load.window(up_at)
        ok_after = [r for r in after if 200 <= r[2] < 300]
        recovered = min((r[0] for r in ok_after), default=up_at + 99) - up_at
        # After recovery, nothing fails any more.
        settled = [r for r in after if r[0] > up_at + recovered + 2 and (r[2] == 0 or r[2] >= 500)]
        bad = [r for r in during + after if r[2] == 0 or (r[2] >= 500 and r[2] != 503)]
        no_retry_after = [r for r in during + after if r[2] == 503 and not r[4]]
        not_problem = [r for r in during + after if r[2] == 503 and "problem+json" not in r[5]]
        c = Load.counts(during)
        slowest = max((r[3] for r in during + after), default=0)
        w = verify_writes(s.ports[0], self.token, self.hot, load)
        ok = (not bad and not no_retry_after and not not_problem and readiness["down_seen"] > 0
              and not settled and slowest < REQUEST_TIMEOUT + 1 and w["lost"] == 0 and w["ledger_mismatch"] == 0)
        self.report("4 postgres stopped 3 s", ok, {
            "requests": len(during) + len(after), "503_during": sum(1 for r in during if r[2] == 503),
            "other_5xx_or_errors": len(bad), "503_without_retry_after": len(no_retry_after),
            "503_not_problem_json": len(not_problem), "readiness_503_seen": readiness["down_seen"],
            "slowest_s": round(slowest, 2), "recovery_s": round(recovered, 2),
            "failures_after_recovery": len(settled), **w, "during": c})

    def redis(self):
        s = self.stack
        load = self.load(mix={"get": 5, "list": 2, "adjust": 2, "create": 1, "login": 1})
        stale_stop = threading.Event()
        stale_threads, stale = self.staleness(until=stale_stop)
        time.sleep(2)
        s.stop_redis()
        self.redis_down.set()
        stopped_at = time.monotonic()
        time.sleep(1)
        degraded = [Client(p).request("GET", "/health/ready", timeout=3) for p in s.ports]
        degraded_ok = all(st == 200 and b and b.get("status") == "degraded" and b["checks"].get("redis") == "down"
                          for st, _, b in degraded)
        time.sleep(3)
        s.redis = subprocess.Popen(
            ["redis-server", "--port", str(s.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", s.base],
            stdout=open(f"{s.base}/redis.log", "ab"), stderr=subprocess.STDOUT)
        s.procs.append(s.redis)
        self.redis_down.clear()
        back_at = time.monotonic()
        wait_until("readiness ready after redis", lambda: all(s.ready(p) for p in s.ports), 30, 0.2)
        resumed = time.monotonic() - back_at
        time.sleep(1)
        stale_stop.set()
        for t in stale_threads:
            t.join(30)
        load.stop()
        rows = load.window(stopped_at)
        c = Load.counts(rows)
        w = verify_writes(s.ports[0], self.token, self.hot, load)
        ok = c["failures"] == 0 and degraded_ok and w["lost"] == 0
        self.report("5 redis stopped 4 s", ok, {**c, "readiness_degraded": degraded_ok,
                                                "ready_again_s": round(resumed, 2), **w})
        self.report("7 write then read elsewhere, across the Redis stop", stale["stale"] == 0
                    and stale["read_failures"] == 0 and stale["write_failures"] == 0
                    and stale["writes_while_redis_down"] > 0,
                    dict(stale))

    def kill9(self, backend):
        s = self.stack
        port = free_port()
        if backend == "sqlite":
            url = f"sqlite://{s.base}/kill9.db"
        else:
            # A database of its own, like the SQLite file: the earlier drills' writes (and their
            # idempotency keys, at most 10,000 live per caller) stay out of this one.
            subprocess.run(as_postgres([os.path.join(s.pg_bin, "createdb"), "-h", "127.0.0.1",
                                        "-p", str(s.pg_port), "-U", "postgres", "kill9"]), check=True)
            url = s.database_url.rsplit("/", 1)[0] + "/kill9"
        proc = s.spawn_tienda(port, url, redis=False, name=f"kill9-{backend}")
        status, _, body = Client(port).request("POST", "/api/v1/auth/login", {"email": ADMIN[0], "password": ADMIN[1]})
        token = body["access_token"]
        admin = Client(port, token)
        hot = []
        for n in range(4):
            status, _, body = admin.request("POST", "/api/v1/products",
                                            {"name": f"k {n}", "price": "1.00", "stock": 100000, "sku": f"K9-{uuid.uuid4().hex[:12]}"})
            hot.append(body["id"])
        load = Load(port, token, hot, threads=6, mix={"adjust": 4, "create": 1}).start()
        time.sleep(3)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        load.stop()
        proc = s.spawn_tienda(port, url, redis=False, name=f"kill9-{backend}")
        w = verify_writes(port, token, hot, load)
        proc.send_signal(signal.SIGTERM)
        proc.wait(DRAIN + 20)
        ok = w["lost"] == 0 and w["ledger_mismatch"] == 0 and w["duplicates"] == 0 and w["acked"] > 0
        self.report(f"6 kill -9 under writes ({backend})", ok, {"requests": len(load.results), **w})

    def stale_pairs(self, pid, stop, out, seed):
        """Until `stop`: a PATCH of the price through nginx; 100 ms after its answer, two reads
        through nginx on new connections (round robin: other instances), each instance's cache
        primed with the old version first. A read older than the write is stale."""
        s = self.stack
        writer = Client(s.nginx_port, self.token)
        rng = random.Random(seed)
        while not stop.is_set():
            for port in s.ports:  # prime: every instance caches the current version
                primer = Client(port, self.token)
                status, headers, _ = primer.request("GET", f"/api/v1/products/{pid}", timeout=3)
                primer.close()
                out["primer_hits"] += "hit" in headers.get("cache-status", "")
            price = Decimal(rng.randrange(100, 100000)) / 100
            status, _, body = writer.request("PATCH", f"/api/v1/products/{pid}", {"price": str(price)})
            if status != 200:
                out["write_failures"] += 1
                continue
            out["writes"] += 1
            down = self.redis_down.is_set()
            out["writes_while_redis_down"] += down
            time.sleep(0.1)
            for _ in range(2):
                reader = Client(s.nginx_port, self.token)
                status, headers, product = reader.request("GET", f"/api/v1/products/{pid}")
                reader.close()
                out["reads"] += 1
                out["reads_while_redis_down"] += down and self.redis_down.is_set()
                if status != 200:
                    out["read_failures"] += 1
                elif product["version"] != body["version"] or Decimal(product["price"]) != price:
                    out["stale"] += 1
                out["cache_hits"] += "hit" in headers.get("cache-status", "")

    def staleness(self, until=None, pairs=None):
        """Runs stale_pairs on three threads until `until` is set, or `pairs` writes are done."""
        out = Counter(writes=0, reads=0, stale=0, read_failures=0, write_failures=0, cache_hits=0, primer_hits=0,
                      writes_while_redis_down=0, reads_while_redis_down=0)
        stop = until or threading.Event()
        threads = [threading.Thread(target=self.stale_pairs, args=(pid, stop, out, n), daemon=True)
                   for n, pid in enumerate(self.fresh_ids[:3] if until is None else self.fresh_ids[3:])]
        for t in threads:
            t.start()
        if until is None:
            wait_until("staleness pairs", lambda: out["writes"] >= pairs, 120, 0.2)
            stop.set()
        return threads, out

    def fresh(self):
        threads, out = self.staleness(pairs=300)
        for t in threads:
            t.join(30)
        ok = out["stale"] == 0 and out["read_failures"] == 0 and out["write_failures"] == 0 and out["writes"] >= 300
        self.report("7 write then read elsewhere (100 ms)", ok, dict(out))

    def webhooks(self):
        """Every product version committed since the subscription (the load phases, the outages,
        the import whose worker was killed) has its event at the receiver, every delivery signed
        correctly."""
        s = self.stack
        expected = set()
        for pid, version in s.psql_rows("SELECT id, version FROM products"):
            pid, version = int(pid), int(version)
            expected |= {(pid, v) for v in range(self.subscribed_after.get(pid, 0) + 1, version + 1)}
        started = time.monotonic()
        missing = expected
        # One worker process delivers every event (the instances run none): on a debug build
        # and a busy machine that is a few hundred a second, so allow for the backlog as long as
        # it shrinks (a faster machine writes more in the same drills), within the drill's bound.
        progressed, last = started, len(expected) + 1
        while time.monotonic() < started + 360 and time.monotonic() < progressed + 60:
            missing = expected - self.receiver.versions()
            if not missing:
                break
            if len(missing) < last:
                progressed, last = time.monotonic(), len(missing)
            time.sleep(0.5)
        waited = time.monotonic() - started
        r = self.receiver
        with r.lock:
            distinct, deliveries, bad = len(r.events), r.deliveries, r.bad_signatures
        ok = not missing and bad == 0 and deliveries > 0
        self.report("webhooks: every product write's event", ok, {
            "product_versions": len(expected), "missing": len(missing), "distinct_events": distinct,
            "deliveries": deliveries, "redelivered": deliveries - distinct, "bad_signatures": bad,
            "caught_up_s": round(waited, 1), "missing_sample": sorted(missing)[:5]})

    def jobs(self, rows=10_000):
        """An import through nginx; its worker SIGKILLed mid-job; another worker takes it over
        after the lease."""
        s = self.stack
        csv = "sku,name,price,stock\n" + "".join(f"JOB-{n},imported {n},{n % 90 + 1}.50,{n % 50}\n"
                                                  for n in range(rows))
        conn = http.client.HTTPConnection("127.0.0.1", s.nginx_port, timeout=30)
        conn.request("POST", "/api/v1/imports?format=csv&mode=upsert", body=csv.encode(),
                     headers={"Authorization": f"Bearer {self.token}", "Content-Type": "text/csv"})
        answer = conn.getresponse()
        job = json.loads(answer.read() or b"null")
        conn.close()
        if answer.status != 202:
            raise RuntimeError(f"import: {answer.status} {job}")
        client = Client(s.nginx_port, self.token)
        path = f"/api/v1/jobs/{job['id']}"
        # Kill once the job has written something, not before.
        killed_at_done = None
        end = time.monotonic() + 60
        while time.monotonic() < end:
            status, _, job = client.request("GET", path)
            if status == 200 and job["status"] == "running" and job["progress"]["done"] > 0:
                killed_at_done = job["progress"]["done"]
                break
            if status == 200 and job["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.02)
        killed = time.monotonic()
        if killed_at_done is not None:
            s.worker.send_signal(signal.SIGKILL)
            s.worker.wait()
            s.start_worker()
        end = time.monotonic() + 90
        taken_over = None
        while time.monotonic() < end:
            status, _, job = client.request("GET", path)
            if taken_over is None and status == 200 and job["attempts"] >= 2:
                taken_over = time.monotonic() - killed
            if status == 200 and job["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.2)
        took = time.monotonic() - killed
        (total, distinct), = s.psql_rows("SELECT count(*), count(DISTINCT lower(sku)) FROM products WHERE sku LIKE 'JOB-%'")
        (mismatch,), = s.psql_rows("SELECT count(*) FROM products p WHERE stock <> "
                                   "(SELECT coalesce(sum(delta), 0) FROM stock_ledger l WHERE l.product_id = p.id)")
        ok = (killed_at_done is not None and job["status"] == "succeeded" and int(total) == rows
              and int(distinct) == rows and int(mismatch) == 0)
        self.report("jobs: import, its worker SIGKILLed", ok, {
            "rows": rows, "killed_at_row": killed_at_done, "status": job["status"], "attempts": job["attempts"],
            "taken_over_after_s": taken_over and round(taken_over, 1), "done_after_kill_s": round(took, 1), "lease_s": LEASE, "skus": int(total), "distinct_skus": int(distinct),
            "ledger_mismatch_catalogue": int(mismatch), "result": job.get("result") and
            {k: job["result"].get(k) for k in ("rows", "created", "updated", "unchanged", "invalid")}})


def main():
    global BASELINE, DRAIN
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", default=os.path.join(ROOT, "target/debug/tienda"))
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    parser.add_argument("--baseline", action="store_true",
                        help="rolling restart only, with nginx's defaults and no drain period (expected to fail)")
    parser.add_argument("--drain", type=int, default=None,
                        help=f"TIENDA_SHUTDOWN_DRAIN_SECS of the instances (default {DRAIN}; 0 with --baseline)")
    parser.add_argument("--only", help="run one drill: steady, sigkill, rolling, postgres, redis, kill9, fresh, webhooks, jobs")
    args = parser.parse_args()
    BASELINE = args.baseline
    DRAIN = args.drain if args.drain is not None else 0 if BASELINE else DRAIN
    binary = os.path.abspath(args.bin)
    if not os.access(binary, os.X_OK):
        raise SystemExit(f"drill: no tienda binary at {binary} (cargo build first)")
    base = tempfile.mkdtemp(prefix="tienda-drill-", dir="/tmp")
    os.chmod(base, 0o755)
    stack = Stack(binary, base)
    drills = Drills(stack)
    # Cleanup on SIGTERM/SIGINT too: turn them into SystemExit so `finally` runs.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(130))
    started = time.monotonic()
    error = None
    try:
        log(f"binary {binary}, data in {base}")
        drills.setup()
        everything = (drills.steady, drills.fresh, drills.sigkill, drills.rolling, drills.postgres, drills.redis,
                      lambda: drills.kill9("sqlite"), lambda: drills.kill9("postgres"), drills.jobs,
                      drills.webhooks)
        named = {"steady": [drills.steady], "sigkill": [drills.sigkill], "rolling": [drills.rolling],
                 "postgres": [drills.postgres], "redis": [drills.redis], "fresh": [drills.fresh],
                 "webhooks": [drills.steady, drills.webhooks], "jobs": [drills.jobs],
                 "kill9": [lambda: drills.kill9("sqlite"), lambda: drills.kill9("postgres")]}
        chosen = named[args.only] if args.only else everything
        for drill in (drills.rolling,) if BASELINE else chosen:
            check_budget()
            # Every drill writes with Idempotency-Keys as one admin; the per-caller cap of 10,000
            # live keys (tested in tests/api) would otherwise turn a later drill's writes into 429s.
            stack.psql("DELETE FROM idempotency_keys")
            drill()
    except Exception as e:  # noqa: BLE001 - reported, then the exit status says it
        error = e
        import traceback
        traceback.print_exc()
    finally:
        if getattr(drills, "receiver", None):
            drills.receiver.stop()
        stack.teardown()
        if drills.failed or error:
            # What the processes said, before their folder goes.
            names = sorted(n for n in os.listdir(base) if n.endswith(".log")) + ["nginx/error.log"]
            for name in names:
                path = os.path.join(base, name)
                if os.path.exists(path):
                    log(f"--- {name} (tail)")
                    with open(path, errors="replace") as f:
                        print("".join(f.readlines()[-15:]))
        if args.keep or (drills.failed or error) and os.environ.get("DRILL_KEEP_ON_FAILURE"):
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    print("\n=== drill summary ({:.0f} s)".format(time.monotonic() - started))
    for name, ok, figures in drills.summary:
        print(f"{'PASS' if ok else 'FAIL'}  {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()))
    if error:
        print(f"FAIL  drill aborted: {error!r}")
    return 1 if drills.failed or error else 0


if __name__ == "__main__":
    sys.exit(main())
