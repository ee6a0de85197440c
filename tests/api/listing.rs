//! `GET /api/v1/products`: offset and cursor pages, filters, sorts, search, Link headers.

use std::cmp::Ordering;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const SORTS: [&str; 6] = ["id", "name", "price", "stock", "created_at", "updated_at"];

/// A catalogue with many ties in every sort key.
fn catalogue(n: u32) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({
                "name": (["Alpha", "beta", "Gamma", "delta", "Émile"][(i % 5) as usize]),
                "description": format!("item number {i}"),
                "price": format!("{}.{:02}", i % 7, (i * 3) % 4 * 25),
                "stock": i % 4,
            })
        })
        .collect()
}

fn cents(product: &Value) -> i64 {
    let text = product["price"].as_str().unwrap();
    let (whole, frac) = text.split_once('.').unwrap();
    whole.parse::<i64>().unwrap() * 100 + frac.parse::<i64>().unwrap()
}

fn timestamp(product: &Value, field: &str) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(product[field].as_str().unwrap()).unwrap()
}

/// The expected order, computed independently of the server.
fn sorted(mut products: Vec<Value>, sort: &str) -> Vec<Value> {
    let (descending, key) = match sort.strip_prefix('-') {
        Some(key) => (true, key),
        None => (false, sort),
    };
    products.sort_by(|a, b| {
        let by_key = match key {
            "id" => Ordering::Equal,
            "name" => a["name"]
                .as_str()
                .unwrap()
                .as_bytes()
                .cmp(b["name"].as_str().unwrap().as_bytes()),
            "price" => cents(a).cmp(&cents(b)),
            "stock" => a["stock"].as_i64().cmp(&b["stock"].as_i64()),
            "created_at" | "updated_at" => timestamp(a, key).cmp(&timestamp(b, key)),
            other => panic!("unknown sort {other}"),
        };
        let ordering = by_key.then(a["id"].as_i64().cmp(&b["id"].as_i64()));
        if descending { ordering.reverse() } else { ordering }
    });
    products
}

fn ids(products: &[Value]) -> Vec<i64> {
    products.iter().map(|p| p["id"].as_i64().unwrap()).collect()
}

/// The backend an app runs on, to respawn it with other settings on the same engine.
fn backend_of(app: &TestApp) -> Backend {
    if app.database_url.starts_with("sqlite:") {
        Backend::Sqlite
    } else {
        Backend::Postgres
    }
}

/// Splits every relevance search into `parts` id ranges however small the catalogue.
fn split_settings(parts: &str) -> [(&'static str, &str); 2] {
    [
        ("TIENDA_SEARCH_PARTS", parts),
        ("TIENDA_SEARCH_SPLIT_MIN_ID", "0"),
    ]
}

/// Every match of `words` in relevance order, read straight from the database in one statement
/// with the server's ranking (bm25 weights on SQLite, `ts_rank` on PostgreSQL): score, then id.
/// No split, cursor, paging or JSON in between: the order every listing must reproduce.
async fn relevance_order(app: &TestApp, words: &[&str]) -> Vec<i64> {
    use sqlx::Connection;
    match backend_of(app) {
        Backend::Sqlite => {
            let phrases: Vec<String> = words.iter().map(|w| format!("\"{w}\"")).collect();
            let mut conn = sqlx::SqliteConnection::connect(&app.database_url).await.unwrap();
            let order = sqlx::query_scalar(
                "SELECT rowid FROM products_fts WHERE products_fts MATCH $1 \
                 ORDER BY bm25(products_fts, 10.0, 1.0, 5.0), rowid",
            )
            .bind(phrases.join(" "))
            .fetch_all(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
            order
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&app.database_url).await.unwrap();
            let order = sqlx::query_scalar(
                "SELECT p.id FROM products p, plainto_tsquery('simple', $1) AS query \
                 WHERE p.search @@ query ORDER BY ts_rank(p.search, query) DESC, p.id",
            )
            .bind(words.join(" "))
            .fetch_all(&mut conn)
            .await
            .unwrap();
            conn.close().await.unwrap();
            order
        }
    }
}

/// Follows `next_cursor` from `first` and returns each page's ids; fails instead of looping
/// when the walk goes past `max_pages`.
async fn cursor_pages(app: &TestApp, first: &str, max_pages: usize) -> Vec<Vec<i64>> {
    let mut pages = Vec::new();
    let (mut page, _) = app.get_page(first).await;
    loop {
        pages.push(ids(page["items"].as_array().unwrap()));
        assert!(
            pages.len() <= max_pages,
            "{first}: more than {max_pages} pages: {pages:?}"
        );
        match page["next_cursor"].as_str() {
            Some(cursor) => {
                page = app
                    .get_page(&format!("/api/v1/products?cursor={}", urlencode(cursor)))
                    .await
                    .0
            }
            None => return pages,
        }
    }
}

/// Reads the offset pages of `query` up to the last, and the one after it (which must be
/// empty); checks every page's `total` and `total_pages`; returns the ids of each page but
/// that last empty one.
async fn offset_pages(app: &TestApp, query: &str, per_page: usize, expected_total: usize) -> Vec<Vec<i64>> {
    let last = expected_total.div_ceil(per_page);
    let mut pages = Vec::new();
    for page in 1..=last + 1 {
        let path = format!("/api/v1/products?{query}&page={page}&per_page={per_page}");
        let (body, _) = app.get_page(&path).await;
        assert_eq!(body["total"].as_u64(), Some(expected_total as u64), "{path}");
        assert_eq!(body["total_pages"].as_u64(), Some(last as u64), "{path}");
        let items = ids(body["items"].as_array().unwrap());
        if page > last {
            assert!(items.is_empty(), "{path}: past the last page: {items:?}");
        } else {
            pages.push(items);
        }
    }
    pages
}

/// Seeds the catalogue and touches a third of it, so updated_at differs from created_at.
async fn seeded(app: &TestApp, n: u32) -> Vec<Value> {
    let mut products = app.seed(catalogue(n)).await;
    for product in products.iter_mut().step_by(3) {
        let path = format!("/api/v1/products/{}", product["id"]);
        let response = app
            .send_json(reqwest::Method::PATCH, &path, &json!({"stock": 9}))
            .await;
        *product = response.json().await.unwrap();
    }
    products
}

both_backends! {
    async fn cursor_walks_visit_every_product_once_in_order_for_each_sort_and_direction(app) {
        let products = seeded(&app, 240).await;
        for key in SORTS {
            for sort in [key.to_owned(), format!("-{key}")] {
                // Out-of-stock pages sorted by a column read SQLite's partial indexes, named in
                // the statement: with a price range as well, they still must be whole.
                for filter in ["", "&in_stock=true", "&min_price=1.25&max_price=4.50", "&in_stock=false", "&in_stock=false&min_price=1.25"] {
                    let expected: Vec<Value> = products.iter().filter(|p| match filter {
                        "&in_stock=true" => p["stock"].as_i64().unwrap() > 0,
                        "&in_stock=false" => p["stock"] == 0,
                        "&in_stock=false&min_price=1.25" => p["stock"] == 0 && cents(p) >= 125,
                        "" => true,
                        _ => (125..=450).contains(&cents(p)),
                    }).cloned().collect();
                    let expected = sorted(expected, &sort);
                    let walked = app.walk_cursor(&format!("/api/v1/products?limit=17&sort={sort}{filter}")).await;
                    assert_eq!(ids(&walked), ids(&expected), "sort={sort}{filter}");
                }
            }
        }
    }

    async fn offset_walks_visit_every_product_once_in_order(app) {
        let products = seeded(&app, 130).await;
        for sort in ["id", "-name", "price", "-stock", "created_at", "-updated_at"] {
            let walked = app.walk_pages(&format!("sort={sort}"), 11).await;
            assert_eq!(ids(&walked), ids(&sorted(products.clone(), sort)), "sort={sort}");
        }
        let walked = app.walk_pages("in_stock=false&sort=-price", 7).await;
        let expected = sorted(products.iter().filter(|p| p["stock"] == 0).cloned().collect(), "-price");
        assert_eq!(ids(&walked), ids(&expected));
    }

    async fn offset_pages_report_totals_and_links(app) {
        app.seed(catalogue(45)).await;
        let (first, link) = app.get_page("/api/v1/products?per_page=10&sort=-price").await;
        assert_eq!((first["page"].as_u64(), first["per_page"].as_u64()), (Some(1), Some(10)));
        assert_eq!((first["total"].as_u64(), first["total_pages"].as_u64()), (Some(45), Some(5)));
        let link = link.unwrap();
        assert!(link.contains(r#"</api/v1/products?sort=-price&page=1&per_page=10>; rel="first""#), "{link}");
        assert!(link.contains(r#"</api/v1/products?sort=-price&page=2&per_page=10>; rel="next""#), "{link}");
        assert!(link.contains(r#"</api/v1/products?sort=-price&page=5&per_page=10>; rel="last""#), "{link}");
        assert!(!link.contains(r#"rel="prev""#), "{link}");

        let (middle, link) = app.get_page("/api/v1/products?per_page=10&page=3&sort=-price").await;
        assert_eq!(middle["items"].as_array().unwrap().len(), 10);
        let link = link.unwrap();
        for rel in [r#"page=2&per_page=10>; rel="prev""#, r#"page=4&per_page=10>; rel="next""#, r#"rel="first""#, r#"rel="last""#] {
            assert!(link.contains(rel), "{rel} in {link}");
        }

        let (last, link) = app.get_page("/api/v1/products?per_page=10&page=5&sort=-price").await;
        assert_eq!(last["items"].as_array().unwrap().len(), 5);
        let link = link.unwrap();
        assert!(link.contains(r#"page=4&per_page=10>; rel="prev""#) && !link.contains(r#"rel="next""#), "{link}");

        let (past, _) = app.get_page("/api/v1/products?per_page=10&page=9").await;
        assert_eq!(past["items"], json!([]));
        assert_eq!(past["total"], 45);

        // Filters travel in the links.
        let (_, link) = app.get_page("/api/v1/products?per_page=5&in_stock=true&q=item").await;
        assert!(link.unwrap().contains("q=item&in_stock=true&page=2&per_page=5"));
    }

    async fn an_empty_catalogue_has_zero_pages(app) {
        let (body, _) = app.get_page("/api/v1/products").await;
        assert_eq!(body, json!({"items": [], "page": 1, "per_page": 20, "total": 0, "total_pages": 0}));
        let (body, _) = app.get_page("/api/v1/products?limit=5").await;
        assert_eq!(body, json!({"items": [], "next_cursor": null}));
    }

    async fn totals_follow_creates_deletes_and_stock_changes(app) {
        let products = app.seed(catalogue(12)).await;
        let in_stock = |body: &Value| body["total"].as_u64().unwrap();
        let expected_in_stock = products.iter().filter(|p| p["stock"].as_i64().unwrap() > 0).count() as u64;
        assert_eq!(in_stock(&app.get_page("/api/v1/products?in_stock=true").await.0), expected_in_stock);
        assert_eq!(in_stock(&app.get_page("/api/v1/products?in_stock=false").await.0), 12 - expected_in_stock);
        let zero = products.iter().find(|p| p["stock"] == 0).unwrap();
        app.send_json(reqwest::Method::PATCH, &format!("/api/v1/products/{}", zero["id"]), &json!({"stock": 5})).await;
        assert_eq!(in_stock(&app.get_page("/api/v1/products?in_stock=true").await.0), expected_in_stock + 1);
        app.request(reqwest::Method::DELETE, &format!("/api/v1/products/{}", products[1]["id"])).send().await.unwrap();
        assert_eq!(app.get_page("/api/v1/products").await.0["total"], 11);

        // Totals under price filters follow price changes, stock crossing zero and deletes too.
        let live = |products: &[Value], keep: &dyn Fn(&Value) -> bool| products.iter().filter(|p| keep(p)).count() as u64;
        let mut current: Vec<Value> = app.walk_pages("", 100).await;
        for step in 0..4 {
            let target = &current[step];
            let change = match step {
                0 => json!({"price": "7.77"}),
                1 => json!({"price": "7.77", "stock": 0}),
                2 => json!({"stock": 3}),
                _ => json!(null),
            };
            let path = format!("/api/v1/products/{}", target["id"]);
            if change.is_null() {
                app.request(reqwest::Method::DELETE, &path).send().await.unwrap();
            } else {
                let response = app.send_json(reqwest::Method::PATCH, &path, &change).await;
                assert_eq!(response.status(), StatusCode::OK);
            }
            current = app.walk_pages("", 100).await;
            let checks = [
                ("min_price=7.77&max_price=7.77", Box::new(|p: &Value| cents(p) == 777) as Box<dyn Fn(&Value) -> bool>),
                ("min_price=1.50&in_stock=true", Box::new(|p: &Value| cents(p) >= 150 && p["stock"].as_i64().unwrap() > 0)),
                ("max_price=2.00&in_stock=false", Box::new(|p: &Value| cents(p) <= 200 && p["stock"] == 0)),
            ];
            for (query, keep) in checks {
                let (page, _) = app.get_page(&format!("/api/v1/products?{query}")).await;
                assert_eq!(page["total"].as_u64().unwrap(), live(&current, &*keep), "step {step}: {query}");
            }
        }
    }

    async fn price_and_stock_filters_match_an_independent_computation(app) {
        let products = app.seed(catalogue(60)).await;
        for (query, keep) in [
            ("min_price=2", Box::new(|p: &Value| cents(p) >= 200) as Box<dyn Fn(&Value) -> bool>),
            ("max_price=2.25", Box::new(|p: &Value| cents(p) <= 225)),
            ("min_price=1.5&max_price=1.5", Box::new(|p: &Value| cents(p) == 150)),
            ("in_stock=true", Box::new(|p: &Value| p["stock"].as_i64().unwrap() > 0)),
            ("in_stock=false&min_price=3", Box::new(|p: &Value| p["stock"] == 0 && cents(p) >= 300)),
        ] {
            let expected: Vec<i64> = ids(&sorted(products.iter().filter(|p| keep(p)).cloned().collect(), "id"));
            assert_eq!(ids(&app.walk_pages(query, 100).await), expected, "{query}");
            assert_eq!(ids(&app.walk_cursor(&format!("/api/v1/products?limit=7&{query}")).await), expected, "{query}");
            let (page, _) = app.get_page(&format!("/api/v1/products?{query}")).await;
            assert_eq!(page["total"].as_u64().unwrap(), expected.len() as u64, "{query}");
        }
    }

    async fn search_finds_a_word_in_each_field_and_nowhere_else(app) {
        let products = app.seed(vec![
            json!({"name": "Linen Shirt", "description": "breathable summer wear", "sku": "LS-001", "price": 30, "stock": 1}),
            json!({"name": "Wool Scarf", "description": "warm winter accessory", "sku": "WS-002", "price": 20, "stock": 1}),
            json!({"name": "Cotton Tee", "description": "soft everyday shirt", "sku": "CT-003", "price": 10, "stock": 0}),
            json!({"name": "Rain Jacket", "description": "waterproof", "sku": "ZEBRA-9", "price": 90, "stock": 3}),
            json!({"name": "Plain Mug", "description": null, "sku": null, "price": 5, "stock": 3}),
        ]).await;
        let id = |n: usize| products[n]["id"].as_i64().unwrap();
        let found = |items: Vec<Value>| { let mut v = ids(&items); v.sort(); v };
        let set = |mut v: Vec<i64>| { v.sort(); v };
        // In the name, the description and the sku; case-insensitive.
        assert_eq!(found(app.walk_pages("q=LINEN", 20).await), vec![id(0)]);
        assert_eq!(found(app.walk_pages("q=winter", 20).await), vec![id(1)]);
        assert_eq!(found(app.walk_pages("q=zebra", 20).await), vec![id(3)]);
        assert_eq!(found(app.walk_pages("q=ws-002", 20).await), vec![id(1)]);
        // Every word must match.
        assert_eq!(found(app.walk_pages("q=shirt", 20).await), set(vec![id(0), id(2)]));
        assert_eq!(found(app.walk_pages("q=soft%20shirt", 20).await), vec![id(2)]);
        assert_eq!(found(app.walk_pages("q=soft%20linen", 20).await), Vec::<i64>::new());
        assert_eq!(found(app.walk_pages("q=nothing", 20).await), Vec::<i64>::new());
        // Punctuation alone holds no word: a valid search that finds nothing.
        assert_eq!(found(app.walk_pages("q=%21%21%21", 20).await), Vec::<i64>::new());
        assert_eq!(app.walk_cursor("/api/v1/products?q=%21%21&limit=2").await, Vec::<Value>::new());
        // Combined with other filters, in both paging styles.
        assert_eq!(found(app.walk_pages("q=shirt&in_stock=true", 20).await), vec![id(0)]);
        assert_eq!(found(app.walk_cursor("/api/v1/products?q=shirt&limit=1").await), set(vec![id(0), id(2)]));
        // Relevance: a word in the name ranks above the same word in the description.
        let (page, _) = app.get_page("/api/v1/products?q=shirt").await;
        assert_eq!(ids(page["items"].as_array().unwrap()), vec![id(0), id(2)]);
        assert_eq!(page["total"], 2);
        // An explicit sort replaces relevance.
        let (page, _) = app.get_page("/api/v1/products?q=shirt&sort=-id").await;
        let mut descending = set(vec![id(0), id(2)]);
        descending.reverse();
        assert_eq!(ids(page["items"].as_array().unwrap()), descending);
    }

    async fn relevance_walks_visit_every_match_once_despite_tied_scores(app) {
        let mut bodies: Vec<Value> = (0..30).map(|i| json!({"name": format!("Item {i}"), "description": "plain mug", "price": 1, "stock": i % 2})).collect();
        bodies.extend((0..5).map(|i| json!({"name": format!("Mug {i}"), "description": "a mug", "price": 2, "stock": 1})));
        bodies.push(json!({"name": "Other", "description": "cup", "price": 1, "stock": 1}));
        let products = app.seed(bodies).await;
        let by_id = |range: std::ops::Range<usize>| { let mut v = ids(&products[range]); v.sort(); v };
        // The five with the word in the name first, then the thirty tied on the word in the
        // description alone; ties by id.
        let expected = [by_id(30..35), by_id(0..30)].concat();
        assert_eq!(relevance_order(&app, &["mug"]).await, expected);
        let stock = |id: &i64| products.iter().find(|p| p["id"] == *id).unwrap()["stock"].as_i64().unwrap();
        let in_stock: Vec<i64> = expected.iter().copied().filter(|id| stock(id) > 0).collect();
        assert_eq!(cursor_pages(&app, "/api/v1/products?q=mug&limit=4", 9).await.concat(), expected);
        assert_eq!(cursor_pages(&app, "/api/v1/products?q=mug&limit=7&in_stock=true", 4).await.concat(), in_stock);
        assert_eq!(offset_pages(&app, "q=mug", 6, 35).await.concat(), expected);
        // Past the last page, near and far: no items, the same total.
        for query in ["q=mug&page=3", "q=mug&page=500&per_page=100"] {
            let (page, _) = app.get_page(&format!("/api/v1/products?{query}")).await;
            assert_eq!(page["items"], json!([]), "{query}");
            assert_eq!(page["total"], 35, "{query}");
        }
    }

    async fn relevance_pages_straddling_a_part_boundary_keep_the_score_then_id_order(app) {
        // Every search split into two id ranges, scored apart and merged.
        let backend = backend_of(&app);
        drop(app);
        let app = TestApp::spawn_with(backend, &split_settings("2")).await.unwrap();
        // Three scores, each shared by ten products spread over both id ranges.
        let bodies = (0..30).map(|i| {
            let description = match i % 3 { 0 => json!(null), 1 => json!("a mug"), _ => json!("a mug for tea, coffee or soup") };
            json!({"name": format!("Mug {}", i / 3), "description": description, "price": 1, "stock": i % 4})
        }).collect();
        let products = app.seed(bodies).await;
        let expected = relevance_order(&app, &["mug"]).await;
        assert_eq!(expected.len(), 30);
        // Pages of four hold ids from both halves of the catalogue (the parts are ids 1..=16 and
        // 17..): both parts fill them.
        let straddles = |page: &[i64]| page.iter().any(|id| *id <= 15) && page.iter().any(|id| *id >= 18);
        assert!(expected.chunks(4).filter(|page| straddles(page)).count() >= 2, "{expected:?}");
        let stock = |id: &i64| products.iter().find(|p| p["id"] == *id).unwrap()["stock"].as_i64().unwrap();
        let in_stock: Vec<i64> = expected.iter().copied().filter(|id| stock(id) > 0).collect();
        // The search alone (scored from the index alone) and with a filter (joined): each page
        // is exactly its slice of the single-statement order, with the summed total.
        for (query, expected) in [("q=mug", &expected), ("q=MUG&in_stock=true", &in_stock)] {
            let slices = |size: usize| expected.chunks(size).map(<[i64]>::to_vec).collect::<Vec<_>>();
            for limit in [1, 4, 7] {
                let first = format!("/api/v1/products?{query}&limit={limit}");
                assert_eq!(cursor_pages(&app, &first, 31).await, slices(limit), "{first}");
            }
            for per_page in [4, 7, 30] {
                assert_eq!(offset_pages(&app, query, per_page, expected.len()).await, slices(per_page), "{query}&per_page={per_page}");
            }
        }
    }

    async fn search_follows_updates_and_deletes(app) {
        let product = app.create_product(json!({"name": "Blue Vase", "price": 1, "stock": 1})).await;
        let path = format!("/api/v1/products/{}", product["id"]);
        app.send_json(reqwest::Method::PATCH, &path, &json!({"name": "Green Bowl"})).await;
        assert_eq!(app.get_page("/api/v1/products?q=vase").await.0["total"], 0);
        assert_eq!(app.get_page("/api/v1/products?q=bowl").await.0["total"], 1);
        app.request(reqwest::Method::DELETE, &path).send().await.unwrap();
        assert_eq!(app.get_page("/api/v1/products?q=bowl").await.0["total"], 0);
    }

    async fn every_invalid_parameter_is_400_naming_it(app) {
        let cases: &[(&str, &str)] = &[
            ("sort=colour", "sort"), ("sort=-", "sort"), ("sort=relevance", "sort"), ("sort=price,name", "sort"),
            ("page=0", "page"), ("page=abc", "page"), ("page=-1", "page"), ("page=1.5", "page"),
            ("page=99999999999999999999", "page"), ("per_page=0", "per_page"), ("per_page=101", "per_page"),
            ("per_page=x", "per_page"), ("limit=0", "limit"), ("limit=101", "limit"), ("limit=", "limit"),
            ("min_price=abc", "min_price"), ("min_price=-1", "min_price"), ("max_price=1.001", "max_price"),
            ("min_price=5&max_price=4", "min_price"), ("in_stock=yes", "in_stock"), ("in_stock=", "in_stock"),
            ("in_stock=TRUE", "in_stock"), ("q=", "q"), ("q=%20%20", "q"), ("q=a%00b", "q"),
            ("colour=red", "colour"), ("page=1&page=2", "page"), ("page=1&limit=5", "limit"),
            ("per_page=5&cursor=abc", "cursor"), ("cursor=garbage", "cursor"), ("cursor=", "cursor"),
        ];
        for (query, field) in cases {
            let response = app.get(&format!("/api/v1/products?{query}")).await;
            let problem = assert_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
            assert!(error_fields(&problem).contains(&field.to_string()), "{query}: {problem}");
        }
    }

    async fn a_cursor_rejects_other_sorts_filters_and_tampering(app) {
        let products = app.seed(catalogue(10)).await;
        let in_stock = ids(&sorted(products.into_iter().filter(|p| p["stock"].as_i64().unwrap() > 0).collect(), "price"));
        let (page, _) = app.get_page("/api/v1/products?limit=3&sort=price&in_stock=true").await;
        assert_eq!(ids(page["items"].as_array().unwrap()), in_stock[..3]);
        let cursor = page["next_cursor"].as_str().unwrap().to_owned();
        let c = urlencode(&cursor);
        // Repeating the same sort and filters (and another limit) is fine: the next two.
        let (next, _) = app.get_page(&format!("/api/v1/products?cursor={c}&sort=price&in_stock=true&limit=2")).await;
        assert_eq!(ids(next["items"].as_array().unwrap()), in_stock[3..5]);
        for query in [format!("cursor={c}&sort=-price"), format!("cursor={c}&sort=name"), format!("cursor={c}&in_stock=false"),
                      format!("cursor={c}&q=alpha")] {
            let problem = assert_problem(app.get(&format!("/api/v1/products?{query}")).await, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
            assert_eq!(error_fields(&problem), ["cursor"], "{query}");
        }
        // Flip one character anywhere: never a 500, never a page.
        for index in (0..cursor.len()).step_by(3) {
            let mut tampered = cursor.clone().into_bytes();
            tampered[index] = if tampered[index] == b'A' { b'B' } else { b'A' };
            let tampered = String::from_utf8(tampered).unwrap();
            if tampered == cursor { continue; }
            let response = app.get(&format!("/api/v1/products?cursor={}", urlencode(&tampered))).await;
            assert_problem(response, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
        }
    }

    async fn cursors_survive_a_restart_with_the_same_secret(app) {
        // The key comes from TIENDA_JWT_SECRET: the server restarted on the same data with the
        // same secret continues a walk begun before the restart; with another secret it refuses.
        let secret = ("TIENDA_JWT_SECRET", "0123456789abcdef0123456789abcdef");
        let app = app.respawn_with(&[secret]).await;
        let expected = ids(&sorted(app.seed(catalogue(7)).await, "-price"));
        let (page, _) = app.get_page("/api/v1/products?limit=3&sort=-price").await;
        let mut walked = ids(page["items"].as_array().unwrap());
        let continuation = format!("/api/v1/products?cursor={}", urlencode(page["next_cursor"].as_str().unwrap()));
        let app = app.restart_with(&[secret]).await;
        walked.extend(ids(&app.walk_cursor(&continuation).await));
        assert_eq!(walked, expected);
        let app = app.restart_with(&[("TIENDA_JWT_SECRET", "another-secret-another-secret-32")]).await;
        let problem = assert_problem(app.get(&continuation).await, StatusCode::BAD_REQUEST, "/problems/invalid-parameter").await;
        assert_eq!(error_fields(&problem), ["cursor"]);
        assert_eq!(app.product_count().await, 7, "the same data all along");
    }
}

mod property {
    use super::*;
    use proptest::collection::vec;
    use proptest::option;
    use proptest::prelude::*;

    /// The first three can be searched for; the rest is filler that no search asks for.
    const WORDS: [&str; 7] = ["zephyr", "teal", "lamp", "other", "thing", "item", "entry"];
    const SEARCHABLE: usize = 3;

    /// A word of `WORDS` by code: codes past its length are the same words capitalised.
    fn word(code: u8, among: usize) -> String {
        let word = WORDS[code as usize % among];
        if code as usize >= among {
            let mut chars = word.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase())
                .into_iter()
                .chain(chars)
                .collect()
        } else {
            word.to_owned()
        }
    }

    fn words(codes: &[u8]) -> String {
        codes
            .iter()
            .map(|c| word(*c, WORDS.len()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// A sku, unique by `n`: none, words joined by `_`, a word and a number, or a number that
    /// SQLite tokenises into two words (the issue's `OTH0.8444218515250481`).
    #[derive(Debug, Clone)]
    struct SkuSpec(u8, Vec<u8>, u32);

    impl SkuSpec {
        fn render(&self, n: usize) -> Value {
            let SkuSpec(kind, codes, random) = self;
            match kind {
                0 => Value::Null,
                1 => json!(format!(
                    "{}_{n}",
                    codes
                        .iter()
                        .map(|c| word(*c, WORDS.len()).to_uppercase())
                        .collect::<Vec<_>>()
                        .join("_")
                )),
                2 => json!(format!("{}-{n}", word(codes[0], WORDS.len()))),
                _ => json!(format!("OTH0.{random}{n}")),
            }
        }
    }

    fn sku() -> impl Strategy<Value = SkuSpec> {
        (0u8..4, vec(0u8..14, 1..3), any::<u32>())
            .prop_map(|(kind, codes, random)| SkuSpec(kind, codes, random))
    }

    #[derive(Debug, Clone)]
    struct ProductSpec {
        name: usize,
        description: Option<Vec<u8>>,
        sku: SkuSpec,
        price: u32,
        stock: u32,
    }

    fn description() -> impl Strategy<Value = Option<Vec<u8>>> {
        option::of(vec(0u8..14, 1..16))
    }

    fn product() -> impl Strategy<Value = ProductSpec> {
        (0usize..6, description(), sku(), 0u32..=600, 0u32..3).prop_map(
            |(name, description, sku, price, stock)| ProductSpec {
                name,
                description,
                sku,
                price,
                stock,
            },
        )
    }

    #[derive(Debug, Clone)]
    enum Change {
        Description(Option<Vec<u8>>),
        Name(usize),
        Price(u32),
        Stock(u32),
        Sku(SkuSpec),
        Delete,
    }

    fn change() -> impl Strategy<Value = Change> {
        prop_oneof![
            3 => description().prop_map(Change::Description),
            2 => (0usize..6).prop_map(Change::Name),
            1 => (0u32..=600).prop_map(Change::Price),
            1 => (0u32..3).prop_map(Change::Stock),
            1 => sku().prop_map(Change::Sku),
            1 => Just(Change::Delete),
        ]
    }

    #[derive(Debug, Clone)]
    struct QuerySpec {
        q: Option<Vec<String>>,
        min_price: Option<u32>,
        max_price: Option<u32>,
        in_stock: Option<bool>,
        sort: Option<(usize, bool)>,
        limit: usize,
        per_page: usize,
    }

    fn query() -> impl Strategy<Value = QuerySpec> {
        let q = vec(0u8..(2 * SEARCHABLE as u8), 1..3).prop_map(|codes| {
            let mut terms: Vec<String> = Vec::new();
            for code in codes {
                let term = word(code, SEARCHABLE);
                if !terms.iter().any(|t| t.eq_ignore_ascii_case(&term)) {
                    terms.push(term);
                }
            }
            terms
        });
        (
            option::weighted(0.75, q),
            option::weighted(0.3, 0u32..=600),
            option::weighted(0.3, 0u32..=600),
            option::weighted(0.3, any::<bool>()),
            option::weighted(0.5, (0..SORTS.len(), any::<bool>())),
            1usize..10,
            1usize..10,
        )
            .prop_map(|(q, min, max, in_stock, sort, limit, per_page)| {
                let (min_price, max_price) = match (min, max) {
                    (Some(a), Some(b)) if a > b => (Some(b), Some(a)),
                    other => other,
                };
                QuerySpec {
                    q,
                    min_price,
                    max_price,
                    in_stock,
                    sort,
                    limit,
                    per_page,
                }
            })
    }

    fn money(cents: u32) -> String {
        format!("{}.{:02}", cents / 100, cents % 100)
    }

    impl QuerySpec {
        fn sort(&self) -> Option<String> {
            self.sort
                .map(|(key, descending)| format!("{}{}", if descending { "-" } else { "" }, SORTS[key]))
        }

        fn query_string(&self) -> String {
            let mut parts = Vec::new();
            if let Some(q) = &self.q {
                parts.push(format!("q={}", urlencode(&q.join(" "))));
            }
            if let Some(min) = self.min_price {
                parts.push(format!("min_price={}", money(min)));
            }
            if let Some(max) = self.max_price {
                parts.push(format!("max_price={}", money(max)));
            }
            if let Some(in_stock) = self.in_stock {
                parts.push(format!("in_stock={in_stock}"));
            }
            if let Some(sort) = self.sort() {
                parts.push(format!("sort={sort}"));
            }
            parts.join("&")
        }

        /// Whether the search words all occur in the product: the words of its name,
        /// description and sku, case-folded (the words the generator makes tokenise alike on
        /// both engines).
        fn searched(&self, product: &Value) -> bool {
            let words: Vec<String> = ["name", "description", "sku"]
                .iter()
                .filter_map(|field| product[field].as_str())
                .flat_map(|text| text.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase))
                .collect();
            self.q
                .iter()
                .flatten()
                .all(|term| words.contains(&term.to_lowercase()))
        }

        fn keeps(&self, product: &Value) -> bool {
            self.searched(product)
                && self.min_price.is_none_or(|min| cents(product) >= i64::from(min))
                && self.max_price.is_none_or(|max| cents(product) <= i64::from(max))
                && self
                    .in_stock
                    .is_none_or(|wanted| (product["stock"].as_i64().unwrap() > 0) == wanted)
        }
    }

    #[derive(Debug, Clone)]
    struct Case {
        names: Vec<Vec<u8>>,
        products: Vec<ProductSpec>,
        changes: Vec<(prop::sample::Index, Change)>,
        queries: Vec<QuerySpec>,
        /// 1: one statement; 2 or 3: the id-range split, even on a small catalogue.
        parts: usize,
    }

    fn case() -> impl Strategy<Value = Case> {
        (
            vec(vec(0u8..14, 1..4), 1..5),
            vec(product(), 0..45),
            vec((any::<prop::sample::Index>(), change()), 0..12),
            vec(query(), 4),
            1usize..=3,
        )
            .prop_map(|(names, products, changes, queries, parts)| Case {
                names,
                products,
                changes,
                queries,
                parts,
            })
    }

    /// Builds the case's catalogue on `backend` and checks every query's cursor walk and
    /// offset pages against the expected order. Returns false when the backend is not set up.
    async fn check(backend: Backend, case: &Case) -> bool {
        let parts = case.parts.to_string();
        let Some(app) = TestApp::spawn_with(backend, &split_settings(&parts)).await else {
            return false;
        };
        let name = |index: usize| words(&case.names[index % case.names.len()]);
        let bodies = case
            .products
            .iter()
            .enumerate()
            .map(|(n, spec)| {
                json!({
                    "name": name(spec.name),
                    "description": spec.description.as_deref().map(words),
                    "sku": spec.sku.render(n),
                    "price": money(spec.price),
                    "stock": spec.stock,
                })
            })
            .collect();
        let mut products: Vec<Option<Value>> = app.seed(bodies).await.into_iter().map(Some).collect();
        for (n, (target, change)) in case.changes.iter().enumerate() {
            if products.is_empty() {
                break;
            }
            let slot = target.index(products.len());
            let Some(product) = &products[slot] else { continue };
            let path = format!("/api/v1/products/{}", product["id"]);
            let patch = match change {
                Change::Delete => {
                    let response = app.request(reqwest::Method::DELETE, &path).send().await.unwrap();
                    assert_eq!(response.status(), StatusCode::NO_CONTENT);
                    products[slot] = None;
                    continue;
                }
                Change::Description(codes) => json!({"description": codes.as_deref().map(words)}),
                Change::Name(index) => json!({"name": name(*index)}),
                Change::Price(cents) => json!({"price": money(*cents)}),
                Change::Stock(stock) => json!({"stock": stock}),
                Change::Sku(sku) => json!({"sku": sku.render(1_000 + n)}),
            };
            let response = app.send_json(reqwest::Method::PATCH, &path, &patch).await;
            assert_eq!(response.status(), StatusCode::OK, "{patch}");
            products[slot] = Some(response.json().await.unwrap());
        }
        let products: Vec<Value> = products.into_iter().flatten().collect();
        let by_id = |id: &i64| products.iter().find(|p| p["id"] == *id).unwrap();

        for spec in &case.queries {
            let query = spec.query_string();
            let expected: Vec<i64> = match (&spec.q, spec.sort()) {
                (Some(q), None) => {
                    // Relevance: the single statement's order, which must hold exactly the
                    // products the words occur in.
                    let terms: Vec<&str> = q.iter().map(String::as_str).collect();
                    let order = relevance_order(&app, &terms).await;
                    let mut found = order.clone();
                    found.sort();
                    let mut searched = ids(&products
                        .iter()
                        .filter(|p| spec.searched(p))
                        .cloned()
                        .collect::<Vec<_>>());
                    searched.sort();
                    assert_eq!(found, searched, "{backend:?} q={q:?}");
                    order.into_iter().filter(|id| spec.keeps(by_id(id))).collect()
                }
                (_, sort) => {
                    let kept = products.iter().filter(|p| spec.keeps(p)).cloned().collect();
                    ids(&sorted(kept, sort.as_deref().unwrap_or("id")))
                }
            };
            let first = format!("/api/v1/products?{query}&limit={}", spec.limit);
            let walked = cursor_pages(&app, &first, expected.len() / spec.limit + 1).await;
            assert_eq!(
                walked.concat(),
                expected,
                "{backend:?} parts={parts} cursor walk {first}"
            );
            let pages = offset_pages(&app, &query, spec.per_page, expected.len()).await;
            assert_eq!(
                pages.concat(),
                expected,
                "{backend:?} parts={parts} offset pages {query}&per_page={}",
                spec.per_page
            );
        }
        true
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, .. ProptestConfig::default() })]

        /// Random catalogues (searched words among filler, repeated names, multi-word skus,
        /// descriptions of every length, updates and deletes after creation), random filters,
        /// every sort and relevance, with and without the id-range split: a cursor walk and the
        /// offset pages visit every listed product once, in the expected order, on both engines.
        #[test]
        fn listings_visit_every_match_once_in_order(case in case()) {
            crate::helpers::on_both_engines(|backend| check(backend, &case));
        }
    }
}
