//! The body reader under hostile input: arbitrary bytes, tens of thousands of fields, huge names.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::value::RawValue;

use super::decode::integer;
use super::{Fields, JsonObject};
use crate::http::error::{ApiError, FieldError};

fn int(text: &str) -> Result<i64, &'static str> {
    integer(&RawValue::from_string(text.to_owned()).unwrap()).map_err(|e| e.code)
}

/// Reads `bytes` as a product body would be read, and renders the problem if any.
fn read_as_product(bytes: &[u8]) -> Result<(), Vec<u8>> {
    let outcome = JsonObject::read(bytes).and_then(|body| {
        let mut fields = Fields::new(body);
        let _ = fields.required("name", super::decode::string);
        let _ = fields.required("stock", integer);
        fields.finish(&["id"])
    });
    outcome.map_err(|error| serde_json::to_vec(&error.problem()).unwrap())
}

fn errors_of(error: ApiError) -> (usize, Vec<FieldError>) {
    match error {
        ApiError::Validation(errors) => (errors.total(), errors.listed().to_vec()),
        other => panic!("not a validation error: {other:?}"),
    }
}

#[test]
fn integers_follow_json_schema_and_the_field_range_rules() {
    assert_eq!(int("12"), Ok(12));
    assert_eq!(int("-7"), Ok(-7));
    assert_eq!(int("12.0"), Ok(12));
    assert_eq!(int("2147483646.0"), Ok(2_147_483_646));
    assert_eq!(int("1e2"), Ok(100));
    assert_eq!(int("1E+2"), Ok(100));
    assert_eq!(int("1.5e1"), Ok(15));
    assert_eq!(int("-0.0"), Ok(0));
    assert_eq!(int("1200e-2"), Ok(12));
    assert_eq!(int("0e9223372036854775807"), Ok(0));
    assert_eq!(int("-9223372036854775808"), Ok(i64::MIN));
    // API.md: a fraction is out of range for an integer field, as is anything past an i64.
    assert_eq!(int("1.5"), Err("out_of_range"));
    assert_eq!(int("1e-1"), Err("out_of_range"));
    assert_eq!(int("1.5e-3"), Err("out_of_range"));
    assert_eq!(int("1.5e-9223372036854775808"), Err("out_of_range"));
    assert_eq!(int("1e9223372036854775807"), Err("out_of_range"));
    assert_eq!(int("-1e9223372036854775807"), Err("out_of_range"));
    assert_eq!(int("9223372036854775808"), Err("out_of_range"));
    assert_eq!(int("1e30"), Err("out_of_range"));
    assert_eq!(int("\"3\""), Err("invalid_type"));
    assert_eq!(int("true"), Err("invalid_type"));
}

#[test]
fn tens_of_thousands_of_unknown_fields_are_read_in_linear_time() {
    // 1 MiB of distinct keys (~110,000): the quadratic reader took minutes on this; a linear one
    // takes milliseconds even unoptimised. The bound is far from both.
    let mut body = String::from("{");
    let mut n = 0;
    while body.len() < 1024 * 1024 - 16 {
        if n > 0 {
            body.push(',');
        }
        body.push_str(&format!("\"{n}\":0"));
        n += 1;
    }
    body.push('}');
    let started = Instant::now();
    let error = JsonObject::read(body.as_bytes())
        .and_then(|object| Fields::new(object).finish(&[]))
        .unwrap_err();
    let problem = serde_json::to_vec(&error.problem()).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let (total, listed) = errors_of(error);
    // Every field is counted, and the body itself for holding too many.
    assert_eq!(total, n + 1);
    assert_eq!(listed.len(), 20);
    assert_eq!(
        (listed[0].field.as_str(), listed[0].code),
        ("body", "too_many_fields")
    );
    assert_eq!(listed[1].field, "0");
    assert!(problem.len() <= 16 * 1024, "{} bytes", problem.len());
}

#[test]
fn a_duplicate_among_many_fields_is_found_and_named_briefly() {
    let mut keys: Vec<String> = (0..50_000).map(|n| format!("\"k{n}\":1")).collect();
    let huge = "x".repeat(500_000);
    keys.push(format!("\"{huge}\":1"));
    keys.push(format!("\"{huge}\":2"));
    let body = format!("{{{}}}", keys.join(","));
    let problem = read_as_product(body.as_bytes()).unwrap_err();
    assert!(problem.len() <= 16 * 1024, "{} bytes", problem.len());
    let text = String::from_utf8(problem).unwrap();
    assert!(text.contains("duplicate field"), "{text}");
}

#[test]
fn a_huge_field_name_is_cut_in_the_problem() {
    let name = "é\u{0}".repeat(100_000);
    let body = serde_json::json!({ name: 1, "name": "x", "stock": 1 }).to_string();
    let problem = read_as_product(body.as_bytes()).unwrap_err();
    assert!(problem.len() <= 2 * 1024, "{} bytes", problem.len());
    let problem: serde_json::Value = serde_json::from_slice(&problem).unwrap();
    assert!(
        problem["errors"][0]["field"]
            .as_str()
            .unwrap()
            .starts_with("é\u{0}é")
    );
}

#[test]
fn deep_nesting_is_an_answer_not_a_stack_overflow() {
    let many: String = (0..100).map(|n| format!("\"f{n}\":0,")).collect();
    for depth in [127, 129, 1_000_000] {
        let nested = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
        for body in [
            format!("{{\"name\":{nested}}}"),
            format!("{{{many}\"name\":{nested}}}"),
        ] {
            assert!(read_as_product(body.as_bytes()).is_err(), "{depth}");
        }
    }
}

#[test]
fn past_the_kept_fields_repeats_are_still_found_and_nothing_false_is_said() {
    let many: Vec<String> = (0..200).map(|n| format!("\"f{n}\":0")).collect();
    // A repeat of a kept name, and a repeat among the names past them.
    for repeated in ["f3", "f150"] {
        let body = format!("{{{},\"{repeated}\":1}}", many.join(","));
        let problem = read_as_product(body.as_bytes()).unwrap_err();
        let text = String::from_utf8(problem).unwrap();
        assert!(text.contains("duplicate field"), "{text}");
    }
    // `name` and `stock` sent after 200 fields: the body is refused for its size, and neither
    // is said to be missing.
    let body = format!("{{{},\"name\":\"x\",\"stock\":1}}", many.join(","));
    let (total, listed) = errors_of(
        JsonObject::read(body.as_bytes())
            .and_then(|object| {
                let mut fields = Fields::new(object);
                let _ = fields.required("name", super::decode::string);
                let _ = fields.required("stock", integer);
                fields.finish(&[])
            })
            .unwrap_err(),
    );
    assert_eq!(total, 1 + 202);
    assert!(listed.iter().all(|e| e.code != "required"), "{listed:?}");
    assert_eq!(listed[0].code, "too_many_fields");
}

/// JSON text that looks like a body: objects with repeated, unknown, huge and odd keys and values.
fn body_like() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        "name|stock|id|price",
        "[a-z]{1,3}",
        "\\PC{0,8}",
        Just("\u{0}".to_owned())
    ];
    let value = prop_oneof![
        Just("null".to_owned()),
        "-?[0-9]{1,25}(\\.[0-9]{1,5})?([eE][-+]?[0-9]{1,21})?",
        "\"\\PC{0,10}\"",
        "\\{|\\[|true|[0-9]+",
    ];
    prop::collection::vec((key, value), 0..40).prop_map(|pairs| {
        let fields: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).unwrap()))
            .collect();
        format!("{{{}}}", fields.join(","))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any bytes at all: an answer, never a panic, never a problem over 16 KiB.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Err(problem) = read_as_product(&bytes) {
            prop_assert!(problem.len() <= 16 * 1024);
        }
    }

    /// Body-like JSON: the same, and at most 20 listed errors whatever the body holds.
    #[test]
    fn body_like_json_never_panics(body in body_like()) {
        if let Err(problem) = read_as_product(body.as_bytes()) {
            prop_assert!(problem.len() <= 16 * 1024);
            let problem: serde_json::Value = serde_json::from_slice(&problem).unwrap();
            prop_assert!(problem["errors"].as_array().map_or(0, Vec::len) <= 20);
        }
    }

    /// An accepted integer is exactly the integer written, however it was spelled.
    #[test]
    fn an_accepted_integer_is_the_value_written(
        value in prop_oneof![any::<i64>().prop_map(i128::from), any::<i128>()],
        zeros in 0usize..4,
        exp_zeros in 0usize..3,
        upper in prop::bool::ANY,
    ) {
        // value followed by `zeros` zeros, written as a fraction of 10^(digits) times an exponent.
        let digits = format!("{}{}", value.unsigned_abs(), "0".repeat(zeros));
        let sign = if value < 0 { "-" } else { "" };
        let mark = if upper { "E" } else { "e" };
        let text = format!("{sign}0.{digits}{mark}+{}{}", "0".repeat(exp_zeros), digits.len() - zeros);
        let expected = i64::try_from(value).map_err(|_| "out_of_range");
        prop_assert_eq!(int(&text), expected, "{}", text);
    }
}
