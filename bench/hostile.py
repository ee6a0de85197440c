#!/usr/bin/env python3
"""Issue 11's attacks against a release build, with figures: status counts, time, memory.

    bench/hostile.py --bin target/release/tienda [--postgres postgres://postgres@127.0.0.1:5432]
                     [--catalogue-sqlite FILE] [--catalogue-postgres DBNAME] [--only NAME,...]

Each scenario starts the binary on a free port with a fresh database (a copy of the seeded
catalogue for the search scenario: see `bench/run.sh --seed-only --rows 200000`), attacks it
as the issue describes, prints one line of figures, and stops it. Run it with the binary of
the previous release and with this one to compare; results in docs/PERFORMANCE.md.
"""

import argparse
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

SECRET = "tienda-bench-secret-not-for-production-0123456789"
ADMIN = ("admin@bench.test", "admin-password-1")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The binary serving on a free port; `pid` for /proc, `log` for its JSON lines."""

    def __init__(self, binary, database_url, env=None, ulimit=None):
        self.dir = tempfile.mkdtemp(prefix="tienda-hostile-")
        self.port = free_port()
        self.log = os.path.join(self.dir, "server.log")
        environment = {
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": database_url,
            "TIENDA_ADDR": f"127.0.0.1:{self.port}",
            "TIENDA_JWT_SECRET": SECRET,
            "TIENDA_ADMIN_EMAIL": ADMIN[0],
            "TIENDA_ADMIN_PASSWORD": ADMIN[1],
            "TIENDA_LOG_FORMAT": "json",
            "RUST_LOG": "warn,tienda=info",
        }
        environment.update(env or {})
        command = [binary, "serve"]
        if ulimit:
            command = ["sh", "-c", f"ulimit -n {ulimit} && exec {binary} serve"]
        self.process = subprocess.Popen(
            command, cwd=self.dir, env=environment,
            stdout=open(self.log, "w"), stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if '"serving"' in open(self.log).read():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("server did not start:\n" + open(self.log).read()[-2000:])

    @property
    def pid(self):
        return self.process.pid

    def memory_mib(self):
        """(resident, peak resident) in MiB."""
        fields = {}
        for line in open(f"/proc/{self.pid}/status"):
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = int(rest.split()[0]) // 1024
        return fields["VmRSS"], fields["VmHWM"]

    def request(self, method, path, body=None, token=None, timeout=120):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        connection.request(method, path, body=data, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        connection.close()
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload.decode(errors="replace")
        return response.status, parsed

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.stop()

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def counts(statuses):
    out = {}
    for status in statuses:
        out[status] = out.get(status, 0) + 1
    return " ".join(f"{k}x{v}" for k, v in sorted(out.items()))


def at_once(n, work):
    """Runs work(i) for i in 0..n in n threads released together; returns results in order."""
    barrier = threading.Barrier(n)

    def run(i):
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


class Databases:
    """A fresh database per scenario: a temporary SQLite file or a PostgreSQL database."""

    def __init__(self, postgres):
        self.postgres = postgres
        self.made = []

    def psql(self, sql):
        subprocess.run(["psql", self.admin_url(), "-Xqc", sql], check=True, stdout=subprocess.DEVNULL,
                       env=dict(os.environ, PGOPTIONS="-c client_min_messages=warning"))

    def admin_url(self):
        parts = urllib.parse.urlsplit(self.postgres)
        return urllib.parse.urlunsplit(parts._replace(path="/postgres"))

    def url_for(self, name):
        parts = urllib.parse.urlsplit(self.postgres)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))

    def fresh(self, engine, template=None):
        if engine == "sqlite":
            directory = tempfile.mkdtemp(prefix="tienda-hostile-db-")
            self.made.append(("dir", directory))
            path = os.path.join(directory, "tienda.db")
            if template:
                shutil.copy(template, path)
            return f"sqlite://{path}"
        name = f"tienda_hostile_{os.getpid()}_{len(self.made)}"
        self.psql(f"DROP DATABASE IF EXISTS {name}")
        self.psql(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
        self.made.append(("pg", name))
        return self.url_for(name)

    def cleanup(self):
        for kind, what in self.made:
            if kind == "dir":
                shutil.rmtree(what, ignore_errors=True)
            else:
                self.psql(f"DROP DATABASE IF EXISTS {what} WITH (FORCE)")


def report(item, engine, text):
    print(f"item {item:<2} {engine:<8} {text}", flush=True)


# ------------------------------------------------------------------ scenarios

def concurrent_guesses(args, dbs, engine):
    with Server(args.bin, dbs.fresh(engine)) as server:
        server.request("POST", "/api/v1/auth/register",
                       {"email": "victim@example.com", "password": "the-right-one"})
        started = time.time()
        statuses = at_once(40, lambda i: server.request(
            "POST", "/api/v1/auth/login",
            {"email": "victim@example.com",
             "password": "the-right-one" if i == 30 else f"wrong-{i}"})[0])
        report(2, engine, f"40 simultaneous logins (right one at 30): {counts(statuses)} "
               f"in {time.time() - started:.2f} s")


def registrations(args, dbs, engine, n):
    # The registration limit (100 per client per hour) would stop a burst of 128 from one
    # address before hashing; lifted here to measure the hashing itself.
    with Server(args.bin, dbs.fresh(engine), env={"TIENDA_REGISTER_LIMIT_PER_HOUR": "1000"}) as server:
        idle, _ = server.memory_mib()
        listing = []

        def register(i):
            return server.request("POST", "/api/v1/auth/register",
                                  {"email": f"burst{i}@example.com", "password": "long-enough-1"})[0]

        def list_meanwhile():
            time.sleep(0.2)
            t = time.time()
            server.request("GET", "/api/v1/products?per_page=20")
            listing.append(time.time() - t)

        watcher = threading.Thread(target=list_meanwhile)
        watcher.start()
        started = time.time()
        statuses = at_once(n, register)
        elapsed = time.time() - started
        watcher.join()
        _, peak = server.memory_mib()
        time.sleep(2)
        after, _ = server.memory_mib()
        report(3, engine, f"{n} simultaneous registrations: {counts(statuses)} in {elapsed:.2f} s; "
               f"RSS {idle} MiB idle, peak {peak} MiB, {after} MiB 2 s later; "
               f"a listing meanwhile {listing[0]:.2f} s")


def emails(args, dbs, engine):
    with Server(args.bin, dbs.fresh(engine)) as server:
        server.request("POST", "/api/v1/auth/register",
                       {"email": "victim@example.com", "password": "the-right-one"})
        results = []
        for label, email in [("v\\u0130ctim (İ)", "v\u0130ctim@example.com"),
                             ("victim\\u0000 (NUL)", "victim\u0000@example.com")]:
            status, _ = server.request("POST", "/api/v1/auth/login",
                                       {"email": email, "password": "the-right-one"})
            results.append(f"{label} {status}")
        before, _ = server.memory_mib()
        huge = "a" * 900_000 + "@example.com"
        started = time.time()
        statuses = [server.request("POST", "/api/v1/auth/login",
                                   {"email": huge + str(i), "password": "x"})[0] for i in range(20)]
        elapsed = time.time() - started
        after, _ = server.memory_mib()
        report(4, engine, f"login with the right password as {', '.join(results)}; "
               f"20 logins with 900 KB emails: {counts(statuses)} in {elapsed:.2f} s, "
               f"RSS {before} -> {after} MiB")


def kelvin_case(args, dbs, engine):
    """The Kelvin sign needs a victim whose email has a k."""
    with Server(args.bin, dbs.fresh(engine)) as server:
        server.request("POST", "/api/v1/auth/register",
                       {"email": "vick@example.com", "password": "the-right-one"})
        status, _ = server.request("POST", "/api/v1/auth/login",
                                   {"email": "vic\u212a@example.com", "password": "the-right-one"})
        report(4, engine, f"login as vic\\u212a@example.com (Kelvin sign) with vick's password: {status}")


def stolen_refresh(args, dbs, engine):
    with Server(args.bin, dbs.fresh(engine)) as server:
        _, tokens = server.request("POST", "/api/v1/auth/login",
                                   {"email": ADMIN[0], "password": ADMIN[1]})
        rt1 = tokens["refresh_token"]
        s1, pair = server.request("POST", "/api/v1/auth/refresh", {"refresh_token": rt1})
        rt2 = pair["refresh_token"]
        s2, _ = server.request("POST", "/api/v1/auth/logout", {"refresh_token": rt1})
        s3, _ = server.request("POST", "/api/v1/auth/refresh", {"refresh_token": rt2})
        report(5, engine, f"login -> rt1; thief refreshes rt1: {s1}; victim logs out with rt1: {s2}; "
               f"thief refreshes rt2: {s3}")


def slow_connections(args, dbs, engine):
    with Server(args.bin, dbs.fresh(engine)) as server:
        def open_for(sock, drip, cap=30.0):
            sock.settimeout(0.5)
            started = time.time()
            n = 0
            while time.time() - started < cap:
                if drip and time.time() - started >= 4 * n:
                    try:
                        sock.sendall(f"X-Drip-{n}: 1\r\n".encode())
                    except OSError:
                        return time.time() - started
                    n += 1
                try:
                    if sock.recv(1024) == b"":
                        return time.time() - started
                except socket.timeout:
                    pass
                except OSError:
                    return time.time() - started
            return None

        silent = socket.create_connection(("127.0.0.1", server.port))
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n")
        results = {}
        threads = [threading.Thread(target=lambda: results.__setitem__("silent", open_for(silent, False))),
                   threading.Thread(target=lambda: results.__setitem__("slow", open_for(slow, True)))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        fmt = lambda t: "still open after 30 s" if t is None else f"closed after {t:.1f} s"
        report(6, engine, f"silent connection {fmt(results['silent'])}; "
               f"one header line every 4 s {fmt(results['slow'])}")


def descriptor_exhaustion(args, dbs, engine):
    server = Server(args.bin, dbs.fresh(engine), ulimit=256)
    sockets = []
    try:
        for _ in range(260):
            sockets.append(socket.create_connection(("127.0.0.1", server.port)))
        time.sleep(0.5)
        started = time.time()
        try:
            status, _ = server.request("GET", "/health/live", timeout=90)
        except OSError as error:
            status = f"error {error}"
        elapsed = time.time() - started
        text = open(server.log).read()
        report(6, engine, f"ulimit -n 256, 260 idle sockets: a new /health/live -> {status} after "
               f"{elapsed:.1f} s; {text.count('accept error')} 'accept error' log lines")
    finally:
        for s in sockets:
            s.close()
        server.stop()


def search(args, dbs, engine):
    template = args.catalogue_sqlite if engine == "sqlite" else args.catalogue_postgres
    if not template:
        report(7, engine, "skipped: no seeded catalogue given")
        return
    with Server(args.bin, dbs.fresh(engine, template)) as server:
        many = urllib.parse.quote(" ".join(["a"] * 100))

        def timed(path):
            started = time.time()
            status, _ = server.request("GET", path)
            return status, time.time() - started

        timed("/api/v1/products?q=red")  # warm
        red = timed("/api/v1/products?q=red")
        repeated = timed(f"/api/v1/products?q={many}")
        nine = timed("/api/v1/products?q=" + urllib.parse.quote(
            "one two three four five six seven eight nine"))
        hyphens = timed("/api/v1/products?q=" + "-".join(["a"] * 100))
        # The costliest searches still allowed: five words every product holds, and a phrase
        # of 16 such terms.
        common = timed("/api/v1/products?q=" + urllib.parse.quote("a in from the collection"))
        phrase = timed("/api/v1/products?q=" + "-".join((["a", "in", "from", "the"] * 4)))
        normal = []

        def heavy(_):
            return timed(f"/api/v1/products?q={many}")

        def light():
            time.sleep(0.5)
            normal.append(timed("/api/v1/products?q=red"))

        watcher = threading.Thread(target=light)
        watcher.start()
        heavies = at_once(3, heavy)
        watcher.join()
        report(7, engine, f"200k products: q=red {red[0]} {red[1]:.2f} s; q='a'x100 {repeated[0]} "
               f"{repeated[1]:.2f} s; 9 distinct words {nine[0]}; 'a-a-...-a' (100) {hyphens[0]} "
               f"{hyphens[1]:.2f} s; 'a in from the collection' {common[0]} {common[1]:.2f} s; "
               f"'a-in-from-the' x4 {phrase[0]} {phrase[1]:.2f} s; three 'a'x100 at once: "
               f"{', '.join(f'{s} {t:.2f} s' for s, t in heavies)}; q=red meanwhile "
               f"{normal[0][0]} {normal[0][1]:.2f} s")


def admin_token(server):
    status, body = server.request("POST", "/api/v1/auth/login", {"email": ADMIN[0], "password": ADMIN[1]})
    assert status == 200, (status, body)
    return body["access_token"]


def raw_post(server, path, data, token=None, timeout=120):
    """(status, seconds, answer bytes) of one POST of raw bytes."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    started = time.time()
    connection.request("POST", path, body=data, headers=headers)
    response = connection.getresponse()
    payload = response.read()
    elapsed = time.time() - started
    connection.close()
    return response.status, elapsed, payload


def many_keys(n):
    return ("{" + ",".join(f'"k{i}":0' for i in range(n)) + "}").encode()


def bodies(args, dbs, engine):
    with Server(args.bin, dbs.fresh(engine)) as server:
        token = admin_token(server)
        for n in (4000, 16000, 32000, 95000):
            data = many_keys(n)
            for path, auth in (("/api/v1/auth/login", None), ("/api/v1/products", token)):
                status, elapsed, payload = raw_post(server, path, data, auth)
                report(1, engine, f"{n} distinct unknown keys ({len(data) // 1024} KiB) to {path}: "
                       f"{status} in {elapsed:.3f} s, answer {len(payload)} bytes")
        # Two of the largest at once while a liveness probe waits behind them.
        data = many_keys(95000)
        probe = []

        def live():
            time.sleep(0.05)
            started = time.time()
            status, _ = server.request("GET", "/health/live", timeout=10)
            probe.append((status, time.time() - started))

        started = time.time()
        thread = threading.Thread(target=live)
        thread.start()
        results = at_once(2, lambda i: raw_post(server, "/api/v1/auth/login", data)[0])
        thread.join()
        report(1, engine, f"two bodies of 95000 keys (1 MiB) at once: {counts(results)} in "
               f"{time.time() - started:.2f} s; /health/live meanwhile {probe[0][0]} in {probe[0][1]:.3f} s")


def integers(args, dbs, engine):
    with Server(args.bin, dbs.fresh(engine)) as server:
        token = admin_token(server)
        for stock in ("1e9223372036854775807", "-1e9223372036854775807", "1.5e-9223372036854775808"):
            data = ('{"name":"x","price":"1","stock":%s}' % stock).encode()
            status, elapsed, payload = raw_post(server, "/api/v1/products", data, token)
            answer = json.loads(payload)
            detail = answer.get("stock") if status < 300 else [e.get("code") for e in answer.get("errors", [])]
            report(8, engine, f"stock {stock}: {status} {detail}")


def smaller(args, dbs, engine):
    with Server(args.bin, dbs.fresh(engine)) as server:
        token = admin_token(server)
        status, _ = server.request("POST", "/api/v1/auth/register",
                                   {"email": "shopper@example.com", "password": "shopper-password"})
        status, body = server.request("POST", "/api/v1/auth/login",
                                      {"email": "shopper@example.com", "password": "shopper-password"})
        customer = body["access_token"]

        def post_with_key(bearer):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            connection.request("POST", "/api/v1/products", body=b'{"name":"kept","price":"1.00","stock":1}',
                               headers={"content-type": "application/json", "authorization": f"Bearer {bearer}",
                                        "idempotency-key": "same-key-1"})
            response = connection.getresponse()
            response.read()
            connection.close()
            return response.status

        first = post_with_key(customer)
        users = server.request("GET", "/api/v1/users", token=token)[1]
        assert users, users
        user_id = next((u["id"] for u in (users or {}).get("items", []) if u.get("email") == "shopper@example.com"), None)
        if user_id is not None:
            patched = server.request("PATCH", f"/api/v1/users/{user_id}", {"role": "staff"}, token=token)
            assert patched[0] == 200, patched
            customer = server.request("POST", "/api/v1/auth/login",
                                      {"email": "shopper@example.com", "password": "shopper-password"})[1]["access_token"]
        second = post_with_key(customer)
        report(9, engine, f"customer POST with Idempotency-Key -> {first}; promoted to staff, same key -> {second}")
        status, body = server.request("POST", "/api/v1/products",
                                      {"name": "\u200b\u202e", "price": "1.00", "stock": 1}, token=token)
        report(9, engine, f"product name U+200B U+202E -> {status}")
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.request("GET", "/docs")
        response = connection.getresponse()
        response.read()
        report(9, engine, "GET /docs headers: " + ", ".join(
            f"{h}: {response.getheader(h)}" for h in ("x-content-type-options", "x-frame-options")))


def production_metrics(args, dbs, engine):
    with Server(args.bin, dbs.fresh(engine), env={"TIENDA_ENV": "production"}) as server:
        status, _ = server.request("GET", "/metrics")
        report(9, engine, f"production, no TIENDA_METRICS_ADDR: GET /metrics on the public port -> {status}")


SCENARIOS = {
    "bodies": (bodies, True),
    "integers": (integers, True),
    "smaller": (smaller, True),
    "guesses": (concurrent_guesses, True),
    "registrations": (lambda a, d, e: [registrations(a, d, e, 64), registrations(a, d, e, 128)], False),
    "emails": (lambda a, d, e: [emails(a, d, e), kelvin_case(a, d, e)], True),
    "refresh": (stolen_refresh, True),
    "connections": (lambda a, d, e: [slow_connections(a, d, e), descriptor_exhaustion(a, d, e)], False),
    "search": (search, True),
    "metrics": (production_metrics, False),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bin", required=True)
    parser.add_argument("--postgres", help="URL of a server where the user may create databases")
    parser.add_argument("--catalogue-sqlite", help="a seeded SQLite file, copied for the search scenario")
    parser.add_argument("--catalogue-postgres", help="a seeded database, used as a template")
    parser.add_argument("--only", help="comma-separated scenarios: " + ",".join(SCENARIOS))
    args = parser.parse_args()
    wanted = args.only.split(",") if args.only else list(SCENARIOS)
    dbs = Databases(args.postgres)
    try:
        for name in wanted:
            run, on_both = SCENARIOS[name]
            run(args, dbs, "sqlite")
            if on_both and args.postgres:
                run(args, dbs, "postgres")
    finally:
        dbs.cleanup()


if __name__ == "__main__":
    sys.exit(main())
