//! The hit lane (`src/http/hit_lane.rs`) answers cache hits of `GET /api/v1/products/{id}`
//! before routing. Here it is proven equal to the routed path: the same random requests go to
//! `/api/v1/products/{id}` (which the lane may answer) and to `/api/v1/products/{id}?` (an empty
//! query, which the lane always leaves to the router, whose handler ignores it), on both engines,
//! and every answer must be the same status, headers and bytes.

use proptest::prelude::*;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::json;

use crate::helpers::{Backend, TestApp};

#[derive(Debug, Clone)]
struct ProductSpec {
    name: String,
    /// Long enough, at times, for the answer to pass the compression threshold (1 KiB).
    description: Option<String>,
    price: u32,
    stock: u32,
}

#[derive(Debug, Clone)]
enum Tag {
    None,
    Current,
    Weak,
    Star,
    Other,
    InAList,
    TwoLines,
    NotAscii,
}

#[derive(Debug, Clone)]
struct Ask {
    /// An index into the products; past the end, an id no product has.
    product: usize,
    tag: Tag,
    encoding: Option<&'static str>,
    /// Change the product (PATCH) before asking: the next ask reads the new version.
    write_first: bool,
}

#[derive(Debug, Clone)]
struct Case {
    products: Vec<ProductSpec>,
    asks: Vec<Ask>,
}

fn product() -> impl Strategy<Value = ProductSpec> {
    (
        "[a-zA-Z0-9 ,\"\u{e9}\u{4e2d}\u{1f600}]{1,40}",
        prop_oneof![
            Just(None),
            "[a-z ]{0,40}".prop_map(Some),
            (900usize..1400).prop_map(|n| Some("d".repeat(n))),
        ],
        0u32..100_000,
        0u32..20,
    )
        .prop_map(|(name, description, price, stock)| ProductSpec {
            name: name.trim().to_owned().replace(char::is_whitespace, "x") + "n",
            description,
            price,
            stock,
        })
}

fn ask(products: usize) -> impl Strategy<Value = Ask> {
    (
        0..products + 1,
        prop_oneof![
            Just(Tag::None),
            Just(Tag::Current),
            Just(Tag::Weak),
            Just(Tag::Star),
            Just(Tag::Other),
            Just(Tag::InAList),
            Just(Tag::TwoLines),
            Just(Tag::NotAscii),
        ],
        prop_oneof![
            Just(None),
            Just(Some("gzip")),
            Just(Some("br, zstd")),
            Just(Some("identity"))
        ],
        proptest::bool::weighted(0.2),
    )
        .prop_map(|(product, tag, encoding, write_first)| Ask {
            product,
            tag,
            encoding,
            write_first,
        })
}

fn case() -> impl Strategy<Value = Case> {
    proptest::collection::vec(product(), 1..5).prop_flat_map(|products| {
        let n = products.len();
        proptest::collection::vec(ask(n), 1..12).prop_map(move |asks| Case {
            products: products.clone(),
            asks,
        })
    })
}

/// The request's headers for `ask`, given the product's current `ETag`.
fn headers(ask: &Ask, etag: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let weak = format!("W/{etag}");
    let listed = format!("\"nope\", {etag}");
    let value = |text: &str| HeaderValue::from_str(text).unwrap();
    match ask.tag {
        Tag::None => {}
        Tag::Current => {
            headers.insert("if-none-match", value(etag));
        }
        Tag::Weak => {
            headers.insert("if-none-match", value(&weak));
        }
        Tag::Star => {
            headers.insert("if-none-match", value("*"));
        }
        Tag::Other => {
            headers.insert("if-none-match", value("\"v999\""));
        }
        Tag::InAList => {
            headers.insert("if-none-match", value(&listed));
        }
        Tag::TwoLines => {
            headers.append("if-none-match", value("\"nope\""));
            headers.append("if-none-match", value(etag));
        }
        Tag::NotAscii => {
            headers.insert("if-none-match", HeaderValue::from_bytes(b"\"v\xe9\"").unwrap());
        }
    }
    if let Some(encoding) = ask.encoding {
        headers.insert("accept-encoding", value(encoding));
    }
    // The same id both ways: a problem body carries it.
    headers.insert("x-request-id", value("hit-lane-test"));
    headers
}

/// Status, headers but the date, and body bytes of a GET without a token.
async fn answer(app: &TestApp, path: &str, headers: HeaderMap) -> (u16, Vec<(String, Vec<u8>)>, Vec<u8>) {
    let response = app
        .client
        .get(app.url(path))
        .headers(headers)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let mut kept: Vec<(String, Vec<u8>)> = response
        .headers()
        .iter()
        .filter(|(name, _)| name.as_str() != "date")
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    kept.sort();
    (status, kept, response.bytes().await.unwrap().to_vec())
}

async fn check(backend: Backend, case: &Case) -> bool {
    let Some(app) = TestApp::spawn_with(backend, &[("TIENDA_CACHE", "local")]).await else {
        return false;
    };
    let mut ids = Vec::new();
    for spec in &case.products {
        let product = app
            .create_product(json!({
                "name": spec.name,
                "description": spec.description,
                "price": format!("{}.{:02}", spec.price / 100, spec.price % 100),
                "stock": spec.stock,
            }))
            .await;
        ids.push(product["id"].as_i64().unwrap());
    }
    let missing = ids.iter().max().unwrap() + 1000;
    for (n, ask) in case.asks.iter().enumerate() {
        let id = ids.get(ask.product).copied().unwrap_or(missing);
        if ask.write_first && id != missing {
            let patched = app
                .send_json(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/products/{id}"),
                    &json!({"stock": n}),
                )
                .await;
            assert_eq!(patched.status(), 200);
        }
        let lane_path = format!("/api/v1/products/{id}");
        // A plain read first, so the entry is there for both (a miss stores it).
        let warm = app.get(&lane_path).await;
        let etag = warm
            .headers()
            .get("etag")
            .map_or("\"v0\"".to_owned(), |v| v.to_str().unwrap().to_owned());
        let routed = answer(&app, &format!("{lane_path}?"), headers(ask, &etag)).await;
        let lane = answer(&app, &lane_path, headers(ask, &etag)).await;
        assert_eq!(lane, routed, "{backend:?} ask {n}: {ask:?}");
        if id != missing {
            let status = lane.1.iter().find(|(name, _)| name == "cache-status");
            assert_eq!(
                status.map(|(_, v)| v.as_slice()),
                Some(&b"tienda; hit"[..]),
                "{backend:?} ask {n}"
            );
        }
    }
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, .. ProptestConfig::default() })]

    /// Random products (some with answers past the compression threshold) read with random
    /// `If-None-Match` and `Accept-Encoding` headers, some after a write: the lane's answers are
    /// the routed path's, header for header and byte for byte.
    #[test]
    fn the_hit_lane_answers_exactly_what_the_routed_path_answers(case in case()) {
        crate::helpers::on_both_engines(|backend| check(backend, &case));
    }
}
