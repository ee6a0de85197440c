#!/usr/bin/env python3
"""The staff console's product list (/admin/products) at catalogue scale: signs in as a console
user, then times each scenario's page over one keep-alive connection (sequential requests, as a
person clicking), and prints the median, p95 and page size.

Usage: bench/admin_list.py BASE_URL EMAIL PASSWORD [--rounds N]
(bench/admin_list.sh seeds 1,000,000 products and starts the server.)
"""

import argparse
import html
import http.client
import re
import statistics
import time
import urllib.parse

SCENARIOS = [
    ("first page (id order)", "/admin/products"),
    ("sort -price", "/admin/products?sort=-price"),
    ("sort name", "/admin/products?sort=name"),
    ("min/max price + in stock", "/admin/products?min_price=100&max_price=200&in_stock=true"),
    ("out of stock, sort -updated_at", "/admin/products?in_stock=false&sort=-updated_at"),
    ("out of stock, sort name", "/admin/products?in_stock=false&sort=name"),
    ("out of stock, price 10-20, sort -price", "/admin/products?in_stock=false&min_price=10&max_price=20&sort=-price"),
    ("search 'zephyr' (10,000 matches, relevance)", "/admin/products?q=zephyr"),
    ("search 'teal lamp' (805 matches)", "/admin/products?q=teal+lamp"),
    ("search 'zephyr', sort price", "/admin/products?q=zephyr&sort=price"),
]


class Browser:
    def __init__(self, base):
        url = urllib.parse.urlsplit(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port)
        self.cookies = {}

    def request(self, method, path, body=None):
        headers = {"cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["content-type"] = "application/x-www-form-urlencoded"
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        for header, value in response.getheaders():
            if header.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                self.cookies[name] = rest.split(";", 1)[0]
        return response.status, data.decode()


def sign_in(browser, email, password):
    status, page = browser.request("GET", "/admin/sign-in")
    token = re.search(r'name="_csrf" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode({"_csrf": token, "email": email, "password": password})
    status, _ = browser.request("POST", "/admin/sign-in", body)
    assert status == 303, f"sign-in answered {status}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("email")
    parser.add_argument("password")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    browser = Browser(args.base)
    sign_in(browser, args.email, args.password)

    # The page after the first: follow the first page's "Next page" link a few levels deep.
    _, first = browser.request("GET", "/admin/products?sort=-price")
    deep = html.unescape(re.search(r'id="next-page" href="([^"]+)"', first).group(1))
    scenarios = SCENARIOS + [("next page (cursor, sort -price)", deep)]

    def timed(path):
        for _ in range(3):  # warm-up
            browser.request("GET", path)
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            status, page = browser.request("GET", path)
            times.append((time.perf_counter() - start) * 1000)
            assert status == 200, f"{path}: {status}"
        times.sort()
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
        return statistics.median(times), p95, page

    # The same page from the API (keyset, 25, no token): what the console adds is the rest.
    print("| scenario | console median ms | console p95 ms | API median ms | rows | page bytes |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, path in scenarios:
        median, p95, page = timed(path)
        rows = page.count('<td><a href="/admin/products/')
        api = "–"
        if "cursor=" not in path:
            query = path.partition("?")[2]
            api_path = "/api/v1/products?" + "&".join(filter(None, [query, "limit=25"]))
            api = f"{timed(api_path)[0]:.1f}"
        print(f"| {name} | {median:.1f} | {p95:.1f} | {api} | {rows} | {len(page.encode())} |")


if __name__ == "__main__":
    main()
