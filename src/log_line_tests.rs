//! The JSON log line against serde_json, and its writer.

#![allow(clippy::unwrap_used)]
use super::*;

#[test]
fn strings_are_escaped_as_serde_json_escapes_them() {
    for text in [
        "plain",
        "q\"uote\\back",
        "line\nbreak\ttab\r",
        "\u{0}\u{1f}\u{7f}é\u{8}\u{c}",
        "",
    ] {
        let mut ours = String::new();
        write_escaped(&mut ours, text).unwrap();
        assert_eq!(ours, serde_json::to_string(text).unwrap());
    }
}

#[test]
fn timestamps_are_rfc3339_to_the_microsecond() {
    for micros in [0, 1_764_513_645_123_456, 1_704_067_200_000_001] {
        let time = chrono::DateTime::from_timestamp_micros(micros).unwrap();
        let mut ours = String::new();
        write_timestamp(&mut ours, time).unwrap();
        assert_eq!(ours, time.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string());
    }
}

#[test]
fn numbers_are_written_as_serde_json_writes_them() {
    for value in [
        0.0,
        3.0,
        8.089953000000001,
        1e-7,
        1e21,
        -2.5,
        f64::NAN,
        f64::INFINITY,
    ] {
        let mut ours = String::new();
        write_f64(&mut ours, value).unwrap();
        assert_eq!(ours, serde_json::to_string(&value).unwrap());
    }
}

#[test]
fn a_member_recorded_again_replaces_the_first() {
    let cases = [
        (r#""route":"/a","b":1"#, "route", r#""b":1"#),
        (
            r#""a":1,"route":"/x\",\"route\":","b":2"#,
            "route",
            r#""a":1,"b":2"#,
        ),
        (r#""a":1,"user_id":7"#, "user_id", r#""a":1"#),
        (r#""a":1"#, "route", r#""a":1"#),
        (r#""route":null"#, "route", ""),
    ];
    for (members, name, expected) in cases {
        let mut members = members.to_owned();
        remove_member(&mut members, name);
        assert_eq!(members, expected);
    }
}

#[test]
fn a_request_outside_any_span_is_written_as_its_span_would_be() {
    let mut line = String::from("{\"message\":\"m\"");
    write_request(&mut line, "id-1", "GET", Some("/api/v1/products/{id}"), Some(7)).unwrap();
    line.push('}');
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        value["span"],
        serde_json::json!({"request_id": "id-1", "method": "GET", "route": "/api/v1/products/{id}", "user_id": 7, "name": "request"})
    );
    let mut line = String::from("{\"message\":\"m\"");
    write_request(&mut line, "q\"x", "GET", None, None).unwrap();
    line.push('}');
    let value: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        value["span"],
        serde_json::json!({"request_id": "q\"x", "method": "GET", "name": "request"})
    );
}
