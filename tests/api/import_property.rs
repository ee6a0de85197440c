//! The import's batched write path against the plain one: a random CSV imported by a job (in
//! random small batches, so a sku's repeats and a created product's later updates fall in the
//! same batch or in another) leaves the catalogue, the counts and a ledger that adds up that the
//! same rows sent one at a time to the product endpoints leave, on both engines.

use std::collections::HashMap;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::job_helpers::{import_csv, ledger_mismatches, wait_job};

/// Names a row may carry: commas, quotes and Unicode in CSV fields; the last two are invalid
/// by the Product rules (a control character, an empty name).
const NAMES: [&str; 6] = ["Plain", "With, comma", "Say \"hi\"", "Ñandú 🦜", "Two\nlines", ""];
/// The names that are valid.
const VALID_NAMES: usize = 4;
const DESCRIPTIONS: [&str; 4] = ["Soft, warm", "\"Quoted\" too", "Ünïcode ✓", "multi\r\nline"];
const BAD_PRICES: [&str; 4] = ["-1.00", "1.234", "abc", ""];
const BAD_STOCKS: [&str; 4] = ["-1", "2.5", "x", ""];

#[derive(Debug, Clone)]
enum Field<T> {
    Valid(T),
    /// An index into the field's invalid values.
    Invalid(usize),
}

fn field<T: std::fmt::Debug + Clone + 'static>(
    valid: impl Strategy<Value = T> + 'static,
) -> impl Strategy<Value = Field<T>> {
    prop_oneof![12 => valid.prop_map(Field::Valid), 1 => (0usize..4).prop_map(Field::Invalid)]
}

/// One row of the file: a sku from a small pool (so rows repeat skus, new ones and the
/// catalogue's), in either case.
#[derive(Debug, Clone)]
struct RowSpec {
    sku: Option<(u8, bool)>,
    name: usize,
    description: Option<usize>,
    price: Field<u32>,
    stock: Field<u32>,
}

fn sku_text((n, upper): (u8, bool)) -> String {
    if upper {
        format!("SKU-{n}")
    } else {
        format!("sku-{n}")
    }
}

fn row() -> impl Strategy<Value = RowSpec> {
    (
        option::weighted(0.9, (0u8..12, any::<bool>())),
        prop_oneof![8 => 0usize..VALID_NAMES, 1 => VALID_NAMES..NAMES.len()],
        option::of(0usize..DESCRIPTIONS.len()),
        field(0u32..5_000),
        field(0u32..40),
    )
        .prop_map(|(sku, name, description, price, stock)| RowSpec {
            sku,
            name,
            description,
            price,
            stock,
        })
}

#[derive(Debug, Clone)]
struct Case {
    /// Products there before the import: (sku number, name, price in cents, stock).
    existing: Vec<(u8, usize, u32, u32)>,
    rows: Vec<RowSpec>,
    upsert: bool,
    abort: bool,
    batch: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (
        vec((0u8..8, 0usize..VALID_NAMES, 0u32..5_000, 0u32..40), 0..6),
        vec(row(), 1..32),
        any::<bool>(),
        prop::bool::weighted(0.25),
        1usize..6,
    )
        .prop_map(|(mut existing, rows, upsert, abort, batch)| {
            existing.sort_by_key(|e| e.0);
            existing.dedup_by_key(|e| e.0);
            Case {
                existing,
                rows,
                upsert,
                abort,
                batch,
            }
        })
}

fn money(cents: u32) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A CSV field, quoted (quotes doubled); `None` an empty field.
fn csv_field(value: Option<&str>) -> String {
    value
        .map(|v| format!("\"{}\"", v.replace('"', "\"\"")))
        .unwrap_or_default()
}

fn render_csv(rows: &[RowSpec]) -> String {
    let mut csv = String::from("sku,name,description,price,stock\n");
    for row in rows {
        let price = match &row.price {
            Field::Valid(cents) => money(*cents),
            Field::Invalid(i) => BAD_PRICES[*i].to_owned(),
        };
        let stock = match &row.stock {
            Field::Valid(n) => n.to_string(),
            Field::Invalid(i) => BAD_STOCKS[*i].to_owned(),
        };
        let name = NAMES[row.name];
        let fields = [
            csv_field(row.sku.map(sku_text).as_deref()),
            csv_field(Some(name).filter(|n| !n.is_empty())),
            csv_field(row.description.map(|d| DESCRIPTIONS[d])),
            price,
            stock,
        ];
        csv.push_str(&fields.join(","));
        csv.push('\n');
    }
    csv
}

/// The row as a product body, or `None` when a field cannot be written in JSON as the CSV has
/// it (a price or stock that is not a number). The API judges the rest.
fn body(row: &RowSpec) -> Option<Value> {
    let (Field::Valid(price), Field::Valid(stock)) = (&row.price, &row.stock) else {
        return None;
    };
    let name = NAMES[row.name];
    Some(json!({
        "sku": row.sku.map(sku_text),
        "name": name,
        "description": row.description.map(|d| DESCRIPTIONS[d]),
        "price": money(*price),
        "stock": stock,
    }))
}

/// The fields an import sets, to compare products across the two catalogues.
fn state(product: &Value) -> (String, String, String, String, i64) {
    let text = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_else(|| "<null>".into());
    (
        text(&product["sku"]),
        text(&product["name"]),
        text(&product["description"]),
        text(&product["price"]),
        product["stock"].as_i64().unwrap(),
    )
}

async fn catalogue(app: &TestApp) -> Vec<(String, String, String, String, i64)> {
    let mut products: Vec<_> = app
        .walk_cursor("/api/v1/products?limit=100")
        .await
        .iter()
        .map(state)
        .collect();
    products.sort();
    products
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Counts {
    created: u64,
    updated: u64,
    unchanged: u64,
    invalid: u64,
}

/// The rows applied one at a time through the product endpoints, as the import's rules say:
/// upsert matches a sku ignoring case and changes a product only when a field differs.
async fn apply_one_by_one(app: &TestApp, case: &Case) -> Counts {
    let mut counts = Counts::default();
    let mut by_sku: HashMap<String, Value> = HashMap::new();
    for product in app.walk_cursor("/api/v1/products?limit=100").await {
        let key = product["sku"].as_str().unwrap().to_ascii_lowercase();
        by_sku.insert(key, product);
    }
    for row in &case.rows {
        let Some(body) = body(row) else {
            counts.invalid += 1;
            continue;
        };
        let key = row.sku.map(|s| sku_text(s).to_ascii_lowercase());
        if case.upsert && key.is_none() {
            counts.invalid += 1;
            continue;
        }
        let current = key.as_ref().and_then(|k| by_sku.get(k)).cloned();
        let response = match (&current, case.upsert) {
            (Some(current), true) => {
                if state(current) == state(&body) {
                    counts.unchanged += 1;
                    continue;
                }
                let response = app
                    .send_json(
                        Method::PATCH,
                        &format!("/api/v1/products/{}", current["id"]),
                        &body,
                    )
                    .await;
                if response.status() == StatusCode::UNPROCESSABLE_ENTITY {
                    counts.invalid += 1;
                    continue;
                }
                assert_eq!(response.status(), StatusCode::OK, "PATCH {body}");
                counts.updated += 1;
                response
            }
            _ => {
                let response = app.send_json(Method::POST, "/api/v1/products", &body).await;
                if matches!(
                    response.status(),
                    StatusCode::CONFLICT | StatusCode::UNPROCESSABLE_ENTITY
                ) {
                    counts.invalid += 1;
                    continue;
                }
                assert_eq!(response.status(), StatusCode::CREATED, "POST {body}");
                counts.created += 1;
                response
            }
        };
        let product: Value = response.json().await.unwrap();
        if let Some(key) = key {
            by_sku.insert(key, product);
        }
    }
    counts
}

async fn seed(app: &TestApp, case: &Case) {
    for (sku, name, price, stock) in &case.existing {
        let body = json!({"sku": format!("SKU-{sku}"), "name": NAMES[*name], "price": money(*price), "stock": stock});
        app.create_product(body).await;
    }
}

/// Runs the case on `backend`; false when the backend is not set up.
async fn check(backend: Backend, case: &Case) -> bool {
    let batch = case.batch.to_string();
    let settings = [
        ("TIENDA_IMPORT_BATCH_ROWS", batch.as_str()),
        ("TIENDA_JOB_POLL_MS", "20"),
    ];
    let Some(imported) = TestApp::spawn_with(backend, &settings).await else {
        return false;
    };
    let plain = TestApp::spawn_with(backend, &[]).await.unwrap();
    seed(&imported, case).await;
    seed(&plain, case).await;
    let before = catalogue(&plain).await;

    let expected = apply_one_by_one(&plain, case).await;
    let query = format!(
        "?mode={}&on_error={}",
        if case.upsert { "upsert" } else { "create" },
        if case.abort { "abort" } else { "skip" }
    );
    let csv = render_csv(&case.rows);
    let job = import_csv(&imported, &query, &csv).await;
    let job = wait_job(&imported, &job["id"], 60).await;
    let result = &job["result"];
    let count = |name: &str| result[name].as_u64().unwrap();
    let got = Counts {
        created: count("created"),
        updated: count("updated"),
        unchanged: count("unchanged"),
        invalid: count("invalid"),
    };
    assert_eq!(count("rows"), case.rows.len() as u64, "{backend:?} {job}\n{csv}");
    if case.abort && expected.invalid > 0 {
        assert_eq!(job["status"], "failed", "{backend:?} {job}");
        assert_eq!(got.invalid, expected.invalid, "{backend:?} {job}\n{csv}");
        assert_eq!(
            catalogue(&imported).await,
            before,
            "{backend:?} abort wrote nothing\n{csv}"
        );
    } else {
        assert_eq!(job["status"], "succeeded", "{backend:?} {job}");
        assert_eq!(got, expected, "{backend:?} batch {} {job}\n{csv}", case.batch);
        assert_eq!(
            catalogue(&imported).await,
            catalogue(&plain).await,
            "{backend:?} batch {}\n{csv}",
            case.batch
        );
    }
    assert_eq!(
        ledger_mismatches(&imported).await,
        0,
        "{backend:?}: every stock is its ledger's sum"
    );
    true
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 64, .. ProptestConfig::default() })]

    /// Random files (repeated skus in either case, rows matching the catalogue, invalid fields,
    /// commas, quotes, line breaks and Unicode), in either mode and error policy, in batches
    /// of 1 to 5 rows: the import leaves what the rows sent one at a time leave.
    #[test]
    fn an_import_leaves_what_its_rows_sent_one_at_a_time_leave(case in case()) {
        crate::helpers::on_both_engines(|backend| check(backend, &case));
    }
}
