//! The number grammar against an independent model: positional arithmetic on the digit string
//! (where the decimal point lands), never the exponent arithmetic the parser uses.

use super::*;
use proptest::prelude::*;

fn units(text: &str, scale: u32) -> Result<i128, NumberError> {
    Decimal::parse(text).and_then(|d| d.to_units(scale))
}

/// The model: `digits` with the point after `point` of them (a position that may lie far
/// outside the string), as a whole number, a fraction or out of range.
fn model(negative: bool, digits: &str, point: i128) -> Result<i128, NumberError> {
    if digits.bytes().all(|d| d == b'0') {
        return Ok(0);
    }
    let len = digits.len() as i128;
    // Digits right of the point must all be zero.
    let below = if point <= 0 {
        digits
    } else if point >= len {
        ""
    } else {
        &digits[point as usize..]
    };
    if below.bytes().any(|d| d != b'0') {
        return Err(NumberError::Fraction);
    }
    let above = if point <= 0 {
        ""
    } else if point >= len {
        digits
    } else {
        &digits[..point as usize]
    };
    let above = above.trim_start_matches('0');
    let padding = (point - len).max(0);
    if above.len() as i128 + padding > MAX_DIGITS {
        return Err(NumberError::OutOfRange);
    }
    let written = format!("{above}{}", "0".repeat(padding as usize));
    let magnitude: i128 = written.parse().map_err(|_| NumberError::OutOfRange)?;
    Ok(if negative { -magnitude } else { magnitude })
}

#[test]
fn integers_in_every_spelling() {
    for (text, value) in [
        ("12", 12),
        ("-7", -7),
        ("12.0", 12),
        ("1e2", 100),
        ("1E+2", 100),
        ("1e002", 100),
        ("1.5e1", 15),
        ("1200e-2", 12),
        ("-0", 0),
        ("-0.0e-5", 0),
        ("0e9223372036854775807", 0),
        ("0e99999999999999999999999", 0),
        ("-0.000e-99999999999999999999999", 0),
        ("9223372036854775807", i64::MAX as i128),
        ("-9223372036854775808", i64::MIN as i128),
        ("0.00001e5", 1),
    ] {
        assert_eq!(units(text, 0), Ok(value), "{text}");
    }
}

#[test]
fn wrap_inputs_are_refused_not_wrapped() {
    for (text, error) in [
        ("1e9223372036854775807", NumberError::OutOfRange),
        ("-1e9223372036854775807", NumberError::OutOfRange),
        ("1e9223372036854775808", NumberError::OutOfRange),
        ("1e99999999999999999999999999", NumberError::OutOfRange),
        ("1.5e-9223372036854775808", NumberError::Fraction),
        ("1e-9223372036854775809", NumberError::Fraction),
        ("1.5e-3", NumberError::Fraction),
        ("1.5", NumberError::Fraction),
        ("1e38", NumberError::OutOfRange),
    ] {
        assert_eq!(units(text, 0), Err(error), "{text}");
    }
    assert_eq!(units("1e37", 0), Ok(10i128.pow(37)));
    assert_eq!(
        units("-99999999999999999999999999999999999999", 0),
        Ok(1 - 10i128.pow(38))
    );
}

#[test]
fn the_grammar_is_json_numbers() {
    for text in [
        "", "-", "+1", "01", "-01", "1.", ".5", "1e", "1e+", "1e-", "1ee2", "1.2.3", " 1", "1 ", "0x10",
        "NaN", "1e2.5", "--1", "1_000",
    ] {
        assert_eq!(units(text, 0), Err(NumberError::Syntax), "{text:?}");
    }
    assert_eq!(
        Decimal::parse_plain("19.99").and_then(|d| d.to_units(2)),
        Ok(1999)
    );
    for text in ["-1", "1e2", "+1", "01", "1."] {
        assert_eq!(Decimal::parse_plain(text), Err(NumberError::Syntax), "{text:?}");
    }
}

#[test]
fn a_million_digits_are_read_in_one_pass() {
    // Far from any quadratic behaviour: this would take minutes if each digit rescanned the rest.
    let started = std::time::Instant::now();
    let long = format!("1{}e-1000000", "0".repeat(1_000_000));
    assert_eq!(units(&long, 0), Ok(1));
    let long_fraction = format!("0.{}1", "0".repeat(1_000_000));
    assert_eq!(units(&long_fraction, 0), Err(NumberError::Fraction));
    let long_exponent = format!("1e{}", "9".repeat(1_000_000));
    assert_eq!(units(&long_exponent, 0), Err(NumberError::OutOfRange));
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// An exponent as text, with the spellings JSON allows: `e` or `E`, an optional `+`, leading
/// zeros; far beyond an i64 in both directions too.
fn exponent() -> impl Strategy<Value = (i128, String)> {
    let value = prop_oneof![
        4 => -60i128..60,
        1 => Just(i128::from(i64::MAX)),
        1 => Just(i128::from(i64::MIN)),
        1 => (-3i128..3).prop_map(|d| i128::from(i64::MAX) + d),
        1 => (-3i128..3).prop_map(|d| i128::from(i64::MIN) + d),
        1 => any::<i128>(),
    ];
    (value, prop::bool::ANY, prop::bool::ANY, 0usize..3).prop_map(|(e, upper, plus, zeros)| {
        let sign = if e < 0 {
            "-"
        } else if plus {
            "+"
        } else {
            ""
        };
        let mark = if upper { "E" } else { "e" };
        (
            e,
            format!("{mark}{sign}{}{}", "0".repeat(zeros), e.unsigned_abs()),
        )
    })
}

/// Integer digits: `0`, small, near the i64 and i128 limits, or longer than any limit.
fn int_digits() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        (1u64..1000).prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.unsigned_abs().to_string()),
        (-3i128..3).prop_map(|d| (i128::from(i64::MAX) + d).to_string()),
        any::<i128>().prop_map(|n| n.unsigned_abs().to_string()),
        "[1-9][0-9]{0,45}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Any number in the grammar: an exact value, a fraction or out of range, as the model says.
    #[test]
    fn every_number_converts_exactly(
        negative in prop::bool::ANY,
        int in int_digits(),
        frac in prop::option::of("[0-9]{1,45}"),
        exp in prop::option::of(exponent()),
        scale in prop_oneof![Just(0u32), Just(2u32)],
    ) {
        let mut text = format!("{}{int}", if negative { "-" } else { "" });
        if let Some(frac) = &frac {
            text = format!("{text}.{frac}");
        }
        let mut e = 0;
        if let Some((value, written)) = &exp {
            e = *value;
            text.push_str(written);
        }
        let digits = format!("{int}{}", frac.as_deref().unwrap_or(""));
        let expected = match i64::try_from(e) {
            Ok(_) => model(negative, &digits, int.len() as i128 + e + i128::from(scale)),
            // Beyond an i64 the model's position arithmetic would itself overflow.
            Err(_) if digits.bytes().all(|d| d == b'0') => Ok(0),
            Err(_) if e > 0 => Err(NumberError::OutOfRange),
            Err(_) => Err(NumberError::Fraction),
        };
        prop_assert_eq!(units(&text, scale), expected, "{}", text);
    }

    /// A whole number written with its point moved and an exponent that moves it back (fractions
    /// that cancel): the value read is exactly the value meant.
    #[test]
    fn shifted_spellings_of_a_whole_number_read_back_exactly(
        value in prop_oneof![any::<i64>().prop_map(i128::from), any::<i128>()],
        zeros in 0usize..6,
        shift in 0usize..50,
        lead in 0usize..3,
        upper in prop::bool::ANY,
        plus in prop::bool::ANY,
    ) {
        let digits = format!("{}{}", value.unsigned_abs(), "0".repeat(zeros));
        // Move the point `shift` places left (padding with zeros), then exponent it back.
        let padded = format!("{}{digits}", "0".repeat(shift.saturating_sub(digits.len()) + 1));
        let (int, frac) = padded.split_at(padded.len() - shift);
        let int = match int.trim_start_matches('0') { "" => "0", rest => rest };
        let exponent = shift as i64 - zeros as i64;
        let sign = if value < 0 { "-" } else { "" };
        let exp_sign = if exponent < 0 { "-" } else if plus { "+" } else { "" };
        let mark = if upper { "E" } else { "e" };
        let point = if frac.is_empty() { String::new() } else { format!(".{frac}") };
        let text = format!("{sign}{int}{point}{mark}{exp_sign}{}{}", "0".repeat(lead), exponent.unsigned_abs());
        let expected = if value.unsigned_abs().to_string().len() as i128 <= MAX_DIGITS {
            Ok(value)
        } else {
            Err(NumberError::OutOfRange)
        };
        prop_assert_eq!(units(&text, 0), expected, "{}", text);
    }

    /// Arbitrary text: never a panic, and only JSON numbers are accepted.
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,30}|[-+0-9.eE]{0,30}") {
        let is_json_number = text.starts_with(|c: char| c == '-' || c.is_ascii_digit())
            && text.trim() == text
            && serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok();
        match Decimal::parse(&text) {
            Ok(decimal) => {
                prop_assert!(is_json_number, "accepted {:?}", text);
                let _ = decimal.to_units(0);
                let _ = decimal.to_units(2);
            }
            Err(_) => prop_assert!(!is_json_number, "refused {:?}", text),
        }
    }
}
