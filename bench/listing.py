#!/usr/bin/env python3
"""Helpers for bench/run.sh: listing SQL as tienda generates it, anchors at depth, cursors.

    listing.py anchors (--sqlite FILE | --psql URL) --depth D --word W   -> JSON on stdout
    listing.py cursor --secret S --anchors FILE --sort KEY [--desc] [--limit L] [--anchor NAME]
    listing.py plans --dialect sqlite|postgres --anchors FILE --word W --depth D

`plans` prints every listing shape as the SQL that src/store/listing.rs (page_statement,
count_statement, push_from_where) builds for it: for SQLite one statement per line with the
values inlined, for `ceiling explain`; for PostgreSQL a psql script that PREPAREs each statement
with typed parameters (as sqlx does) and EXPLAIN (ANALYZE, BUFFERS)es it with a custom and with
a generic plan, since a prepared statement may switch to the generic one after five runs.

Only the standard library: anyone with python3 can run it.
"""

import argparse
import base64
import datetime
import hashlib
import hmac
import json
import sqlite3
import subprocess
import sys

COLUMNS = ("p.id, p.sku, p.name, p.description, p.price_cents, p.stock, p.version, "
           "p.created_at, p.updated_at")
KEY_COLUMN = {
    "id": "p.id", "name": "p.name", "price": "p.price_cents", "stock": "p.stock",
    "created_at": "p.created_at", "updated_at": "p.updated_at", "relevance": "p.score",
}
SORT_KEYS = ["id", "name", "price", "stock", "created_at", "updated_at"]
TIME_KEYS = ("created_at", "updated_at")
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


# ---------------------------------------------------------------- SQL as listing.rs builds it

class Statement:
    def __init__(self):
        self.sql = ""
        self.binds = []  # (kind, value): kind in int, text, float, time (micros)

    def push(self, text):
        self.sql += text
        return self

    def bind(self, kind, value):
        self.binds.append((kind, value))
        self.sql += f"${len(self.binds)}"
        return self


def fts5_match(q):
    return " ".join('"' + term.replace('"', '""') + '"' for term in q.split())


def push_from_where(st, dialect, filters, with_score):
    q = filters.get("q")
    if q is not None and dialect == "sqlite":
        if with_score:
            st.push(", bm25(products_fts, 10.0, 1.0, 5.0) AS score")
        st.push(" FROM products_fts JOIN products p ON p.id = products_fts.rowid "
                "WHERE products_fts MATCH ")
        st.bind("text", fts5_match(q))
    elif q is not None:
        if with_score:
            st.push(", (-ts_rank(p.search, query))::float8 AS score")
        st.push(" FROM products p, plainto_tsquery('simple', ")
        st.bind("text", q)
        st.push(") AS query WHERE p.search @@ query")
    else:
        st.push(" FROM products p WHERE TRUE")
    if "min_price" in filters:
        st.push(" AND p.price_cents >= ").bind("int", filters["min_price"])
    if "max_price" in filters:
        st.push(" AND p.price_cents <= ").bind("int", filters["max_price"])
    if filters.get("in_stock") is True:
        st.push(" AND p.stock > 0")
    elif filters.get("in_stock") is False:
        st.push(" AND p.stock = 0")


def search_only(filters):
    return "q" in filters and not any(k in filters for k in ("min_price", "max_price", "in_stock"))


def page_statement(dialect, filters, key, desc, after=None, limit=None, offset_page=None):
    """after: (kind, value, id) for a keyset page; offset_page: (page, per_page)."""
    if key == "relevance":
        return relevance_statement(dialect, filters, after, limit, offset_page)
    if dialect == "sqlite" and after is not None and key != "id":
        return sqlite_keyset_after(filters, key, desc, after, limit)
    if offset_page is not None and offset_page[0] >= 2:
        return deep_offset_statement(dialect, filters, key, desc, offset_page)
    st = Statement()
    st.push("SELECT ").push(COLUMNS)
    push_total_column(st, dialect, filters, offset_page)
    push_from_where(st, dialect, filters, False)
    direction = "DESC" if desc else "ASC"
    column = KEY_COLUMN[key]
    if after is not None:
        kind, value, after_id = after
        st.push(f" AND ({column}, p.id) {'<' if desc else '>'} (")
        st.bind(kind, value).push(", ").bind("int", after_id).push(")")
    st.push(f" ORDER BY {column} {direction}, p.id {direction} LIMIT ")
    push_limit(st, limit, offset_page)
    return st


def deep_offset_statement(dialect, filters, key, desc, offset_page):
    """An offset page past the first: the ids walked in the index, then the page's rows
    (deep_offset_statement in listing.rs)."""
    column = KEY_COLUMN[key]
    order = f" ORDER BY {column} {'DESC' if desc else 'ASC'}, p.id {'DESC' if desc else 'ASC'}"
    st = Statement()
    st.push("SELECT ").push(COLUMNS)
    push_total_column(st, dialect, filters, offset_page)
    st.push(" FROM products p JOIN (SELECT p.id")
    push_from_where(st, dialect, filters, False)
    st.push(order).push(" LIMIT ")
    push_limit(st, None, offset_page)
    st.push(") AS page ON page.id = p.id").push(order)
    return st


def sqlite_keyset_after(filters, key, desc, after, limit):
    """SQLite, a cursor page sorted by a column other than id: the rest of the cursor's run of
    equal keys, then the keys after it, merged (sqlite_keyset_after in listing.rs)."""
    kind, value, after_id = after
    column = KEY_COLUMN[key]
    direction, comparison = ("DESC", "<") if desc else ("ASC", ">")
    st = Statement()
    st.push("SELECT * FROM (SELECT ").push(COLUMNS)
    push_from_where(st, "sqlite", filters, False)
    st.push(f" AND {column} = ").bind(kind, value).push(f" AND p.id {comparison} ")
    st.bind("int", after_id).push(f" ORDER BY p.id {direction} LIMIT ").bind("int", limit + 1)
    st.push(") UNION ALL SELECT * FROM (SELECT ").push(COLUMNS)
    push_from_where(st, "sqlite", filters, False)
    st.push(f" AND {column} {comparison} ").bind(kind, value)
    st.push(f" ORDER BY {column} {direction}, p.id {direction} LIMIT ").bind("int", limit + 1)
    st.push(f") ORDER BY {column[2:]} {direction}, id {direction} LIMIT ").bind("int", limit + 1)
    return st


def push_limit(st, limit, offset_page):
    if offset_page is None:
        st.bind("int", limit + 1)
    else:
        page, per_page = offset_page
        st.bind("int", per_page).push(" OFFSET ").bind("int", (page - 1) * per_page)


def relevance_statement(dialect, filters, after=None, limit=None, offset_page=None, part=None,
                        with_total=False):
    """part: (first_id, last_id, top) of one id range of a split SQLite search."""
    st = Statement()
    st.push("WITH r AS MATERIALIZED (")
    if dialect == "sqlite" and search_only(filters):
        st.push("SELECT products_fts.rowid AS id, bm25(products_fts, 10.0, 1.0, 5.0) AS score "
                "FROM products_fts WHERE products_fts MATCH ")
        st.bind("text", fts5_match(filters["q"]))
        id_column = "products_fts.rowid"
    else:
        st.push("SELECT p.id")
        push_from_where(st, dialect, filters, True)
        id_column = "p.id"
    if part is not None:
        st.push(f" AND {id_column} BETWEEN ").bind("int", part[0]).push(" AND ").bind("int", part[1])
    st.push("), k AS (SELECT id, score FROM r WHERE TRUE")
    if after is not None:
        kind, value, after_id = after
        st.push(" AND (score, id) > (").bind(kind, value).push(", ").bind("int", after_id).push(")")
    st.push(" ORDER BY score, id LIMIT ")
    if part is not None:
        st.bind("int", part[2])
    else:
        push_limit(st, limit, offset_page)
    st.push(")")
    if with_total:
        st.push(", t AS MATERIALIZED (SELECT count(*) AS total FROM r)")
    st.push(" SELECT ").push(COLUMNS).push(", k.score AS score")
    st.push(", t.total AS total FROM k JOIN products p ON p.id = k.id CROSS JOIN t" if with_total
            else " FROM k JOIN products p ON p.id = k.id")
    st.push(" ORDER BY k.score, k.id")
    return st


def split_parts(max_id, top, parts=2):
    """The id ranges of a split SQLite search, as relevance_parts in listing.rs makes them."""
    width = max_id // parts + 1
    return [(-(2 ** 63) if i == 0 else i * width + 1,
             2 ** 63 - 1 if i == parts - 1 else (i + 1) * width, top) for i in range(parts)]


def push_total_column(st, dialect, filters, offset_page):
    """An offset page whose total is a maintained count reads it in the same statement
    (push_total_column in listing.rs)."""
    if offset_page is not None and "q" not in filters:
        st.push(", (")
        push_count(st, dialect, filters)
        st.push(") AS total")


def count_statement(dialect, filters):
    st = Statement()
    push_count(st, dialect, filters)
    return st


def push_count(st, dialect, filters):
    column = {None: "total", True: "in_stock", False: "total - in_stock"}[filters.get("in_stock")]
    if "q" not in filters and "min_price" not in filters and "max_price" not in filters:
        st.push(f"SELECT {column} FROM product_counts WHERE id = 1")
    elif "q" not in filters:
        st.push(f"SELECT CAST(coalesce(sum({column}), 0) AS BIGINT) FROM product_price_counts "
                "WHERE TRUE")
        if "min_price" in filters:
            st.push(" AND price_cents >= ").bind("int", filters["min_price"])
        if "max_price" in filters:
            st.push(" AND price_cents <= ").bind("int", filters["max_price"])
    elif dialect == "sqlite" and search_only(filters):
        st.push("SELECT count(*) FROM products_fts WHERE products_fts MATCH ")
        st.bind("text", fts5_match(filters["q"]))
    else:
        st.push("SELECT count(*)")
        push_from_where(st, dialect, filters, False)


# ---------------------------------------------------------------- rendering

def micros_to_pg(micros):
    return (EPOCH + datetime.timedelta(microseconds=micros)).isoformat()


def sql_literal(kind, value, dialect):
    if kind == "int":
        return str(int(value))
    if kind == "float":
        return repr(float(value))
    if kind == "time":
        if dialect == "sqlite":
            return str(int(value))
        return "'" + micros_to_pg(value) + "'::timestamptz"
    return "'" + str(value).replace("'", "''") + "'"


def inline(st, dialect):
    sql = st.sql
    for n in range(len(st.binds), 0, -1):  # $10 before $1
        kind, value = st.binds[n - 1]
        sql = sql.replace(f"${n}", sql_literal(kind, value, dialect))
    return sql


PG_TYPES = {"int": "int8", "text": "text", "float": "float8", "time": "timestamptz"}


def render_postgres(title, st):
    types = ", ".join(PG_TYPES[k] for k, _ in st.binds)
    args = ", ".join(sql_literal(k, v, "postgres") for k, v in st.binds)
    out = [f"\\echo '-- {title}'", f"\\echo '{st.sql.replace(chr(39), chr(39) * 2)}'"]
    out.append(f"PREPARE shape{'(' + types + ')' if types else ''} AS {st.sql};")
    for mode in ("force_custom_plan", "force_generic_plan"):
        out.append(f"\\echo '[{mode.replace('force_', '').replace('_plan', '')} plan]'")
        out.append(f"SET plan_cache_mode = {mode};")
        out.append("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) EXECUTE shape"
                   + (f"({args})" if args else "") + ";")
    out.append("DEALLOCATE shape;")
    out.append("RESET plan_cache_mode;")
    return "\n".join(out)


# ---------------------------------------------------------------- anchors (keys at depth)

ANCHOR_SQL = {
    # (sqlite expression, postgres expression) of the sort key as the cursor carries it
    "id": ("id", "id"),
    "name": ("name", "name"),
    "price": ("price_cents", "price_cents"),
    "stock": ("stock", "stock"),
    "created_at": ("created_at", "(extract(epoch FROM created_at) * 1000000)::int8"),
    "updated_at": ("updated_at", "(extract(epoch FROM updated_at) * 1000000)::int8"),
}
COLUMN_OF = {"id": "id", "name": "name", "price": "price_cents", "stock": "stock",
             "created_at": "created_at", "updated_at": "updated_at"}


def anchors(args):
    queries = {}
    for key in SORT_KEYS:
        for desc in (False, True):
            d = "DESC" if desc else "ASC"
            expr = ANCHOR_SQL[key][0 if args.sqlite else 1]
            queries[f"{key}:{'desc' if desc else 'asc'}"] = (
                f"SELECT {expr}, id FROM products ORDER BY {COLUMN_OF[key]} {d}, id {d} "
                f"LIMIT 1 OFFSET {args.depth - 1}")
    # Inside the largest tie of a sort key: 90% of the way through the products with stock 0.
    queries["stock_tie:asc"] = (
        "SELECT stock, id FROM products WHERE stock = 0 ORDER BY id LIMIT 1 OFFSET "
        "(SELECT count(*) * 9 / 10 FROM products WHERE stock = 0)")
    word = args.word
    if args.sqlite:
        queries["relevance:asc"] = (
            "SELECT bm25(products_fts, 10.0, 1.0, 5.0) AS s, rowid FROM products_fts "
            f"WHERE products_fts MATCH '{fts5_match(word)}' ORDER BY s, rowid LIMIT 1 OFFSET 19")
        db = sqlite3.connect(f"file:{args.sqlite}?mode=ro", uri=True)
        result = {name: list(db.execute(sql).fetchone()) for name, sql in queries.items()}
        result["matches"] = db.execute(
            f"SELECT count(*) FROM products_fts WHERE products_fts MATCH '{fts5_match(word)}'"
        ).fetchone()[0]
        result["rows"] = db.execute("SELECT count(*) FROM products").fetchone()[0]
        result["word"] = word
    else:
        queries["relevance:asc"] = (
            "SELECT (-ts_rank(search, query))::float8 AS s, id FROM products, "
            f"plainto_tsquery('simple', '{word}') AS query WHERE search @@ query "
            "ORDER BY s, id LIMIT 1 OFFSET 19")
        queries["matches"] = (f"SELECT count(*) FROM products WHERE search @@ "
                              f"plainto_tsquery('simple', '{word}')")
        queries["rows"] = "SELECT count(*) FROM products"
        result = {}
        for name, sql in queries.items():
            out = subprocess.run(["psql", args.psql, "-XtA", "-F", "\t", "-c", sql],
                                 check=True, capture_output=True, text=True).stdout.strip()
            fields = out.split("\t")
            if name in ("matches", "rows"):
                result[name] = int(fields[0])
            else:
                first = fields[0] if name.startswith("name") else (
                    float(fields[0]) if name.startswith("relevance") else int(fields[0]))
                result[name] = [first, int(fields[1])]
        result["word"] = word
    json.dump(result, sys.stdout)
    print()


# ---------------------------------------------------------------- cursors

def cursor(args):
    """A cursor as src/domain/cursor.rs signs it: compact JSON of CursorState, HMAC-SHA256
    under HMAC-SHA256(secret, "tienda/listing-cursor/v1"), tag truncated to 16 bytes."""
    with open(args.anchors) as f:
        anchor = json.load(f)[args.anchor or f"{args.sort}:{'desc' if args.desc else 'asc'}"]
    state = {"v": 1, "s": {"key": args.sort, "descending": args.desc}, "f": {},
             "l": args.limit, "a": {"key": anchor[0], "id": anchor[1]}}
    payload = json.dumps(state, separators=(",", ":"), ensure_ascii=False).encode()
    key = hmac.new(args.secret.encode(), b"tienda/listing-cursor/v1", hashlib.sha256).digest()
    tag = hmac.new(key, payload, hashlib.sha256).digest()[:16]

    def b64(data):
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    print(f"{b64(payload)}.{b64(tag)}")


# ---------------------------------------------------------------- plans

def after_of(anchors_, key, desc, anchor=None):
    value, after_id = anchors_[anchor or f"{key}:{'desc' if desc else 'asc'}"]
    kind = {"name": "text", "relevance": "float"}.get(key, "time" if key in TIME_KEYS else "int")
    return (kind, value, after_id)


def shapes(dialect, anchors_, word, depth):
    """(title, Statement) for every listing shape worth a plan."""
    out = []
    none = {}
    out.append(("first page, default sort (id)", page_statement(dialect, none, "id", False, limit=20)))
    for key in SORT_KEYS:
        for desc in (False, True):
            sign = "-" if desc else ""
            out.append((f"keyset page at depth {depth}, sort={sign}{key}",
                        page_statement(dialect, none, key, desc, after_of(anchors_, key, desc), 20)))
    tie = anchors_["stock_tie:asc"]
    out.append((f"keyset page sort=stock, cursor inside the stock=0 tie (after id {tie[1]})",
                page_statement(dialect, none, "stock", False,
                               after_of(anchors_, "stock", False, "stock_tie:asc"), 20)))
    out.append(("first page, sort=-price", page_statement(dialect, none, "price", True, limit=20)))
    out.append(("first page, sort=name", page_statement(dialect, none, "name", False, limit=20)))
    band = {"min_price": 50000, "max_price": 50999}
    out.append(("first page, min_price=500.00&max_price=509.99 (about 1%), sort=id",
                page_statement(dialect, band, "id", False, limit=20)))
    out.append(("first page, min_price=500.00&max_price=509.99, sort=price",
                page_statement(dialect, band, "price", False, limit=20)))
    half = {"min_price": 50000}
    out.append(("first page, min_price=500.00 (about half), sort=id",
                page_statement(dialect, half, "id", False, limit=20)))
    out.append(("first page, min_price=999.00 (about 0.15%), sort=id",
                page_statement(dialect, {"min_price": 99900}, "id", False, limit=20)))
    out.append(("first page, min_price=500.00&in_stock=true, sort=id",
                page_statement(dialect, {"min_price": 50000, "in_stock": True}, "id", False,
                               limit=20)))
    out.append(("first page, in_stock=true, sort=id",
                page_statement(dialect, {"in_stock": True}, "id", False, limit=20)))
    out.append(("first page, in_stock=false, sort=id",
                page_statement(dialect, {"in_stock": False}, "id", False, limit=20)))
    out.append(("first page, in_stock=true, sort=price",
                page_statement(dialect, {"in_stock": True}, "price", False, limit=20)))
    out.append((f"keyset page at depth {depth}, in_stock=true, sort=id",
                page_statement(dialect, {"in_stock": True}, "id", False,
                               after_of(anchors_, "id", False), 20)))
    q = {"q": word}
    relevance_after = after_of(anchors_, "relevance", False)
    if dialect == "sqlite":
        # What runs on SQLite: the search split into two id ranges scored at once.
        rows = depth * 10 // 9
        for n, part in enumerate(split_parts(rows, 21), 1):
            out.append((f"q={word}, relevance, first page, id range {n} of 2",
                        relevance_statement(dialect, q, part=part)))
        for n, part in enumerate(split_parts(rows, 21), 1):
            out.append((f"q={word}, relevance, second page (cursor), id range {n} of 2",
                        relevance_statement(dialect, q, relevance_after, part=part)))
        out.append((f"q={word}, relevance, offset page 1 with its total, id range 1 of 2",
                    relevance_statement(dialect, q, part=split_parts(rows, 20)[0], with_total=True)))
    else:
        out.append((f"q={word}, relevance, first page",
                    page_statement(dialect, q, "relevance", False, limit=20)))
        out.append((f"q={word}, relevance, second page (cursor)",
                    page_statement(dialect, q, "relevance", False, relevance_after, 20)))
        out.append((f"q={word}, relevance, offset page 1 with its total",
                    relevance_statement(dialect, q, offset_page=(1, 20), with_total=True)))
    out.append((f"q={word}&sort=price, first page",
                page_statement(dialect, q, "price", False, limit=20)))
    out.append((f"q={word}&sort=-created_at, first page",
                page_statement(dialect, q, "created_at", True, limit=20)))
    out.append((f"q={word}&in_stock=true&max_price=100.00, relevance, first page",
                page_statement(dialect, {"q": word, "max_price": 10000, "in_stock": True},
                               "relevance", False, limit=20)))
    page = depth // 20
    out.append((f"offset page={page}&per_page=20 (OFFSET {depth - 20}), sort=id",
                page_statement(dialect, none, "id", False, offset_page=(page, 20))))
    out.append((f"offset page={page}&per_page=20, sort=price",
                page_statement(dialect, none, "price", False, offset_page=(page, 20))))
    out.append(("count: no filter (maintained)", count_statement(dialect, none)))
    out.append(("count: in_stock=true (maintained)", count_statement(dialect, {"in_stock": True})))
    out.append(("count: min_price=500.00", count_statement(dialect, half)))
    out.append(("count: min_price=500.00&max_price=509.99", count_statement(dialect, band)))
    out.append(("count: min_price=500.00&in_stock=true",
                count_statement(dialect, {"min_price": 50000, "in_stock": True})))
    out.append((f"count: q={word}", count_statement(dialect, q)))
    return out


def plans(args):
    with open(args.anchors) as f:
        anchors_ = json.load(f)
    for title, st in shapes(args.dialect, anchors_, args.word, args.depth):
        if args.dialect == "sqlite":
            print(f"-- {title}")
            print(inline(st, "sqlite"))
        else:
            print(render_postgres(title, st))


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    a = sub.add_parser("anchors")
    a.add_argument("--sqlite")
    a.add_argument("--psql")
    a.add_argument("--depth", type=int, required=True)
    a.add_argument("--word", required=True)
    c = sub.add_parser("cursor")
    c.add_argument("--secret", required=True)
    c.add_argument("--anchors", required=True)
    c.add_argument("--sort", required=True, choices=SORT_KEYS)
    c.add_argument("--desc", action="store_true")
    c.add_argument("--limit", type=int, default=20)
    c.add_argument("--anchor", help="anchor name in the file (default: SORT:asc or SORT:desc)")
    p = sub.add_parser("plans")
    p.add_argument("--dialect", required=True, choices=["sqlite", "postgres"])
    p.add_argument("--anchors", required=True)
    p.add_argument("--word", required=True)
    p.add_argument("--depth", type=int, required=True)
    args = parser.parse_args()
    if args.command == "anchors":
        if bool(args.sqlite) == bool(args.psql):
            parser.error("anchors needs exactly one of --sqlite and --psql")
        anchors(args)
    elif args.command == "cursor":
        cursor(args)
    else:
        plans(args)


if __name__ == "__main__":
    main()
