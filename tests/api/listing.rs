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
                for filter in ["", "&in_stock=true", "&min_price=1.25&max_price=4.50"] {
                    let expected: Vec<Value> = products.iter().filter(|p| match filter {
                        "&in_stock=true" => p["stock"].as_i64().unwrap() > 0,
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
        let mut expected: Vec<i64> = ids(&products[..35]);
        expected.sort();
        for query in ["q=mug&limit=4", "q=mug&limit=7&in_stock=true"] {
            let walked = app.walk_cursor(&format!("/api/v1/products?{query}")).await;
            let mut got = ids(&walked);
            if query.contains("in_stock") {
                let mut want: Vec<i64> = ids(&products[..35].iter().filter(|p| p["stock"].as_i64().unwrap() > 0).cloned().collect::<Vec<_>>());
                want.sort();
                got.sort();
                assert_eq!(got, want, "{query}");
            } else {
                // The five with the word in the name rank first.
                let names: Vec<bool> = walked.iter().map(|p| p["name"].as_str().unwrap().starts_with("Mug")).collect();
                assert!(names[..5].iter().all(|b| *b) && names[5..].iter().all(|b| !b), "{names:?}");
                got.sort();
                assert_eq!(got, expected, "{query}");
            }
        }
        let offset = app.walk_pages("q=mug", 6).await;
        let mut got = ids(&offset);
        got.sort();
        assert_eq!(got, expected);
        assert_eq!(app.get_page("/api/v1/products?q=mug").await.0["total"], 35);
        // Past the last page, near and far: no items, the same total.
        for query in ["q=mug&page=3", "q=mug&page=500&per_page=100"] {
            let (page, _) = app.get_page(&format!("/api/v1/products?{query}")).await;
            assert_eq!(page["items"], json!([]), "{query}");
            assert_eq!(page["total"], 35, "{query}");
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
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, .. ProptestConfig::default() })]

        /// For random catalogues, sorts, filters and page sizes, a cursor walk equals the
        /// sorted, filtered set.
        #[test]
        fn cursor_walks_equal_the_sorted_filtered_set(
            rows in proptest::collection::vec((0u8..4, 0u32..500, 0u32..3), 0..40),
            sort in proptest::sample::select(SORTS.to_vec()),
            descending: bool,
            limit in 1u64..8,
            min_price in proptest::option::of(0u32..500),
            in_stock in proptest::option::of(any::<bool>()),
        ) {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            runtime.block_on(async {
                let backend = if std::env::var(PG_ENV).is_ok() && descending { Backend::Postgres } else { Backend::Sqlite };
                let app = TestApp::spawn(backend).await.unwrap();
                let bodies = rows.iter().map(|(name, price, stock)| json!({
                    "name": (["a", "B", "b", "ä"][*name as usize]), "price": format!("{}.{:02}", price / 100, price % 100), "stock": stock,
                })).collect();
                let products = app.seed(bodies).await;
                let sort = if descending { format!("-{sort}") } else { sort.to_string() };
                let mut query = format!("/api/v1/products?limit={limit}&sort={sort}");
                let expected: Vec<Value> = products.into_iter().filter(|p| {
                    min_price.is_none_or(|m| cents(p) >= m as i64)
                        && in_stock.is_none_or(|s| (p["stock"].as_i64().unwrap() > 0) == s)
                }).collect();
                if let Some(m) = min_price { query.push_str(&format!("&min_price={}.{:02}", m / 100, m % 100)); }
                if let Some(s) = in_stock { query.push_str(&format!("&in_stock={s}")); }
                let walked = app.walk_cursor(&query).await;
                assert_eq!(ids(&walked), ids(&sorted(expected, &sort)), "{query}");
            });
        }
    }
}
