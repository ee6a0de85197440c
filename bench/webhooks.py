#!/usr/bin/env python3
"""Webhook delivery figures (issue 17), against a release build and a local receiver.

    cargo build --release --bin tienda --example webhook_receiver
    bench/webhooks.py [--postgres postgres://postgres@127.0.0.1:5432/test] [--events 20000]
                      [--rate 500] [--duration 20]

Per backend, on a fresh database with one endpoint subscribed to product.updated:
1. Throughput: with no worker running (TIENDA_WORKERS=0), PATCHes at full speed record a backlog
   of events; then a server with one worker (TIENDA_WEBHOOK_CONCURRENCY default 64) starts and
   delivers them: events per second from the first arrival to the last, every event once.
2. Lag: with the worker running, PATCHes on a fixed schedule of --rate per second for --duration
   seconds (16 writer threads, each on its own connection); the
   receiver keeps, per event, arrival time minus the event's created_at (the commit of the
   change): p50, p99, max; and the highest tienda_webhook_outbox_lag_seconds seen on /metrics.
Loopback only; the receiver is examples/webhook_receiver.rs.
"""

import argparse
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ADMIN = ("bench@tienda.test", "bench-password-1")
PRODUCTS = 100


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def call(port, method, path, body=None, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    conn.request(method, path, json.dumps(body) if body is not None else None, headers)
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, (json.loads(data) if data and data[:1] in b"{[" else data)


def wait_ready(port, proc):
    for _ in range(300):
        try:
            if call(port, "GET", "/health/ready")[0] == 200:
                return
        except OSError:
            pass
        if proc.poll() is not None:
            sys.exit("tienda exited before it was ready")
        time.sleep(0.1)
    sys.exit("tienda did not become ready")


def serve(binary, database_url, port, workers, log):
    env = dict(os.environ, DATABASE_URL=database_url, TIENDA_ADDR=f"127.0.0.1:{port}", RUST_LOG="warn",
               TIENDA_LOG_FORMAT="json", TIENDA_JWT_SECRET="bench-secret-bench-secret-bench-secret",
               TIENDA_ACCESS_TOKEN_TTL_SECS="3600", TIENDA_ADMIN_EMAIL=ADMIN[0],
               TIENDA_ADMIN_PASSWORD=ADMIN[1], TIENDA_WORKERS=str(workers),
               TIENDA_WEBHOOK_ALLOW_PRIVATE="true")
    proc = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_ready(port, proc)
    return proc


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def wrk(port, token, seconds, connections, pause_ms):
    env = dict(os.environ, TOKEN=token)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", "bench/webhook_patch.lua",
                          f"http://127.0.0.1:{port}", "--", str(PRODUCTS), str(pause_ms)],
                         env=env, capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, int(non2xx.group(1)) if non2xx else 0


def paced(port, token, seconds, rate, writers=16):
    """PATCHes at `rate` a second for `seconds`, on a fixed schedule: each of `writers` threads
    keeps its own connection and sends its k-th request at start + k x writers / rate (late
    requests go at once, so a slow answer is caught up, not lost). The rate reached, non-2xx."""
    interval = writers / rate
    start = time.monotonic() + 0.1
    sent, bad = [0] * writers, [0] * writers

    def writer(w):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        k = 0
        while True:
            due = start + w * interval / writers + k * interval
            if due >= start + seconds:
                break
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            body = json.dumps({"price": f"{(w * 7919 + k) % 999 + 1}.00"})
            conn.request("PATCH", f"/api/v1/products/{(w * 31 + k) % PRODUCTS + 1}", body, headers)
            r = conn.getresponse()
            r.read()
            sent[w] += 1
            bad[w] += r.status >= 300
            k += 1
        conn.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(sent) / (time.monotonic() - start), sum(bad)


def stats(receiver_port):
    return call(receiver_port, "GET", "/stats")[1]


def wait_unique(receiver_port, n, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = stats(receiver_port)
        if s["unique"] >= n:
            return s
        time.sleep(0.2)
    sys.exit(f"only {stats(receiver_port)['unique']} of {n} events arrived in {timeout} s")


def count_events(backend, database_url, path):
    query = "SELECT count(*) FROM webhook_outbox WHERE event_type = 'product.updated'"
    if backend == "sqlite":
        return int(subprocess.run(["sqlite3", path, query], capture_output=True, text=True, check=True).stdout)
    return int(subprocess.run(["psql", database_url, "-Atc", query], capture_output=True, text=True, check=True).stdout)


def run_backend(args, backend, database_url, db_path, work):
    receiver_port, port = free_port(), free_port()
    receiver = subprocess.Popen([args.receiver], env=dict(os.environ, RECEIVER_ADDR=f"127.0.0.1:{receiver_port}"),
                                stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    log = open(os.path.join(work, f"{backend}.log"), "w")
    try:
        # 1. A backlog recorded with no worker, then delivered by one.
        server = serve(args.bin, database_url, port, 0, log)
        token = call(port, "POST", "/api/v1/auth/login", {"email": ADMIN[0], "password": ADMIN[1]})[1]["access_token"]
        status, _ = call(port, "POST", "/api/v1/webhooks",
                         {"url": f"http://127.0.0.1:{receiver_port}/hook", "events": ["product.updated"]}, token)
        assert status == 201, status
        for i in range(PRODUCTS):
            status, _ = call(port, "POST", "/api/v1/products", {"name": f"bench {i}", "price": "1.00", "stock": 1}, token)
            assert status == 201, status
        seconds = 4
        while count_events(backend, database_url, db_path) < args.events:
            wrk(port, token, seconds, 16, 0)
        events = count_events(backend, database_url, db_path)
        stop(server)
        started = time.time()
        server = serve(args.bin, database_url, port, 1, log)
        s = wait_unique(receiver_port, events, 600)
        span = s["last"] - s["first"]
        print(f"| {backend} | backlog of {events} events | {events / span:,.0f} events/s delivered "
              f"(first to last arrival {span:.2f} s; {s['requests']} requests, {s['unique']} unique; "
              f"start to last {s['last'] - started:.2f} s) |", flush=True)

        # 2. Lag under a paced write load.
        time.sleep(1)
        call(receiver_port, "POST", "/reset")
        before = count_events(backend, database_url, db_path)
        peak = [0.0]
        done = threading.Event()

        def sample():
            while not done.is_set():
                try:
                    text = call(port, "GET", "/metrics")[1].decode()
                    m = re.search(r"^tienda_webhook_outbox_lag_seconds (\S+)$", text, re.M)
                    if m:
                        peak[0] = max(peak[0], float(m.group(1)))
                except (OSError, AttributeError):
                    pass
                time.sleep(0.5)

        sampler = threading.Thread(target=sample)
        sampler.start()
        rps, non2xx = paced(port, token, args.duration, args.rate)
        written = count_events(backend, database_url, db_path) - before
        s = wait_unique(receiver_port, written, 120)
        done.set()
        sampler.join()
        print(f"| {backend} | {rps:,.0f} updates/s for {args.duration} s ({written} events, {non2xx} non-2xx) | "
              f"commit to arrival p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, max {s['max_ms']:.1f} ms; "
              f"outbox lag gauge peak {peak[0] * 1000:.0f} ms |", flush=True)
        stop(server)
    finally:
        receiver.kill()
        log.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--bin", default="target/release/tienda")
    parser.add_argument("--receiver", default="target/release/examples/webhook_receiver")
    parser.add_argument("--postgres", help="an admin URL; a database is created and dropped")
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rate", type=int, default=500)
    parser.add_argument("--duration", type=int, default=20)
    args = parser.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    with tempfile.TemporaryDirectory() as work:
        path = os.path.join(work, "bench.db")
        run_backend(args, "sqlite", f"sqlite://{path}", path, work)
        if args.postgres:
            name = f"tienda_webhook_bench_{os.getpid()}"
            subprocess.run(["psql", args.postgres, "-qc", f"CREATE DATABASE {name}"], check=True)
            url = args.postgres.rsplit("/", 1)[0] + "/" + name
            try:
                run_backend(args, "postgres", url, None, work)
            finally:
                subprocess.run(["psql", args.postgres, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"])


if __name__ == "__main__":
    main()
