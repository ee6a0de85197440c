#!/usr/bin/env python3
"""Checks what deploy/nginx/tienda.conf passes to a second instance, with the real nginx and
two fake upstreams: one that reads each request and closes the connection without answering
(an instance killed mid-request), one that answers 200. Round robin alternates between them,
so every second request of a kind meets the broken one first.

Expected: GET and keyed POST always 200 (retried on the other instance); a POST without
Idempotency-Key and a PATCH get 502 when they meet the broken one (never sent twice).
Run by deploy/check.sh; python3 stdlib and nginx.
"""

import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


def serve(sock, answer):
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        conn.recv(65536)
        if answer:
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        conn.close()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    broken, healthy = listener(), listener()
    for sock, answer in ((broken, False), (healthy, True)):
        threading.Thread(target=serve, args=(sock, answer), daemon=True).start()
    port = free_port()
    work = tempfile.mkdtemp(prefix="tienda-nginx-retries-")
    upstreams = [broken.getsockname()[1], healthy.getsockname()[1]]
    lines = []
    with open(os.path.join(ROOT, "deploy/nginx/tienda.conf")) as f:
        for line in f.read().splitlines():
            s = line.strip()
            if s.startswith("server 127.0.0.1:"):
                if s.startswith("server 127.0.0.1:8081"):
                    # max_fails=0: the broken one stays in rotation, so each request of a kind
                    # alternates between the two whatever came before.
                    lines += [f"    server 127.0.0.1:{p} max_fails=0;" for p in upstreams]
                continue
            if s == "listen 80;":
                line = f"    listen 127.0.0.1:{port};"
            elif s == "listen [::]:80;":
                continue
            lines.append(line)
    with open(f"{work}/site.conf", "w") as f:
        f.write("\n".join(lines) + "\n")
    temp = "".join(f"    {t}_temp_path {work}/{t};\n" for t in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root;\n" if os.geteuid() == 0 else ""
    with open(f"{work}/nginx.conf", "w") as f:
        f.write(f"{user}daemon off;\nworker_processes 1;\npid {work}/nginx.pid;\nerror_log {work}/error.log;\n"
                f"events {{ worker_connections 64; }}\nhttp {{\n    access_log off;\n{temp}"
                f"    include {work}/site.conf;\n}}\n")
    nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-p", work, "-c", f"{work}/nginx.conf"])
    failures = []
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        kinds = {
            "GET": ("GET", {}, {200}),
            "POST with Idempotency-Key": ("POST", {"Idempotency-Key": "k"}, {200}),
            "POST without key": ("POST", {}, {200, 502}),
            "PATCH": ("PATCH", {"Idempotency-Key": "k"}, {200, 502}),
        }
        for name, (method, headers, allowed) in kinds.items():
            seen = []
            for _ in range(6):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                conn.request(method, "/api/v1/products", body=b"{}",
                             headers={**headers, "Content-Type": "application/json"})
                seen.append(conn.getresponse().status)
                conn.close()
            print(f"  {name}: {seen}")
            if not set(seen) <= allowed:
                failures.append(f"{name}: {seen}, expected only {sorted(allowed)}")
            if allowed == {200, 502} and 502 not in seen:
                failures.append(f"{name}: never met the broken upstream unretried: {seen}")
    finally:
        nginx.terminate()
        nginx.wait(10)
        broken.close()
        healthy.close()
        shutil.rmtree(work, ignore_errors=True)
    if failures:
        print("FAIL: " + "; ".join(failures), file=sys.stderr)
        return 1
    print("  nginx retries what is safe to retry, and only that")
    return 0


if __name__ == "__main__":
    sys.exit(main())
