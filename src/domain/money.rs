//! Exact money: a price is a whole number of cents, from the wire to the disk.
//!
//! Clients may send a price as a JSON number or a JSON string; either way we parse the decimal
//! text ourselves, so `19.99` can never pass through a binary float on its way in or out.

use std::fmt;

/// The largest price the catalogue accepts: 1,000,000,000.00.
pub const MAX_PRICE_CENTS: i64 = 100_000_000_000;

/// A price in cents, `0..=MAX_PRICE_CENTS`. The field is private: the only ways in are
/// [`Price::parse`] and [`Price::from_cents`], which both enforce the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(i64);

/// Why a text is not a price. Each variant maps to a stable `code` in problem bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("must be a decimal number such as 19.99")]
    InvalidFormat,
    #[error("at most 2 decimal places")]
    TooManyDecimals,
    #[error("must be between 0 and 1000000000")]
    OutOfRange,
}

impl MoneyError {
    pub fn code(self) -> &'static str {
        match self {
            MoneyError::InvalidFormat => "invalid_format",
            MoneyError::TooManyDecimals => "too_many_decimals",
            MoneyError::OutOfRange => "out_of_range",
        }
    }
}

impl Price {
    pub fn from_cents(cents: i64) -> Result<Self, MoneyError> {
        if (0..=MAX_PRICE_CENTS).contains(&cents) {
            Ok(Price(cents))
        } else {
            Err(MoneyError::OutOfRange)
        }
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    /// Parses decimal text in JSON number syntax (`19.99`, `20`, `19.990`, `1.5e1`).
    ///
    /// The value must be a whole number of cents; trailing zeros beyond the second decimal are
    /// fine (`19.990`), any other digit there is not (`19.999`). There is no rounding anywhere.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let decimal = Decimal::parse(text).ok_or(MoneyError::InvalidFormat)?;
        let cents = decimal.to_cents()?;
        Price::from_cents(cents)
    }

    /// Parses a price sent as a string: plain decimal digits (`19.99`, `20`), no sign, no
    /// exponent, the form the OpenAPI pattern documents.
    pub fn parse_plain(text: &str) -> Result<Self, MoneyError> {
        if text.starts_with('-') || text.contains(['e', 'E']) {
            return Err(MoneyError::InvalidFormat);
        }
        Price::parse(text)
    }
}

impl fmt::Display for Price {
    /// Always two decimals: `19.99`, `20.00`, `0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// A decimal number as `negative`, significant `digits` and a power of ten: the value is
/// `digits * 10^exponent`, kept as text so nothing is lost before we decide.
struct Decimal<'a> {
    negative: bool,
    int_digits: &'a str,
    frac_digits: &'a str,
    exponent: i64,
}

impl<'a> Decimal<'a> {
    /// JSON number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    fn parse(text: &'a str) -> Option<Self> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_digits, rest) = rest.split_at(int_len);
        if int_digits.is_empty() || (int_digits.len() > 1 && int_digits.starts_with('0')) {
            return None;
        }
        let (frac_digits, rest) = match rest.strip_prefix('.') {
            Some(after_dot) => {
                let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                if len == 0 {
                    return None;
                }
                after_dot.split_at(len)
            }
            None => ("", rest),
        };
        let exponent = match rest.strip_prefix(['e', 'E']) {
            Some(exp) => {
                let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                // Anything this large is out of range or all zeros; clamp instead of overflowing.
                let magnitude: i64 = digits.parse().unwrap_or(i64::MAX / 4).min(1_000_000);
                if exp.starts_with('-') {
                    -magnitude
                } else {
                    magnitude
                }
            }
            None if rest.is_empty() => 0,
            None => return None,
        };
        Some(Decimal {
            negative,
            int_digits,
            frac_digits,
            exponent,
        })
    }

    fn to_cents(&self) -> Result<i64, MoneyError> {
        // value = all_digits * 10^(exponent - frac_len); in cents, shift by 2 more.
        let all_digits: String = self.int_digits.chars().chain(self.frac_digits.chars()).collect();
        let significant = all_digits.trim_start_matches('0');
        let significant = significant.trim_end_matches('0');
        if significant.is_empty() {
            return Ok(0);
        }
        let trailing_zeros = all_digits.len() - all_digits.trim_end_matches('0').len();
        let shift = self.exponent - self.frac_digits.len() as i64 + 2 + trailing_zeros as i64;
        if shift < 0 {
            return Err(MoneyError::TooManyDecimals);
        }
        // 10^11 cents is the maximum: anything with more than 12 digits is out of range.
        if significant.len() as i64 + shift > 12 {
            return Err(MoneyError::OutOfRange);
        }
        if self.negative {
            return Err(MoneyError::OutOfRange);
        }
        let base: i64 = significant.parse().map_err(|_| MoneyError::OutOfRange)?;
        Ok(base * 10_i64.pow(shift as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_whole_cents_in_every_spelling() {
        for (text, cents) in [
            ("19.99", 1999),
            ("19.990", 1999),
            ("20", 2000),
            ("0", 0),
            ("0.0", 0),
            ("-0", 0),
            ("0.05", 5),
            ("1.5e1", 1500),
            ("1999e-2", 1999),
            ("1E3", 100_000),
            ("1000000000", MAX_PRICE_CENTS),
            ("1000000000.00", MAX_PRICE_CENTS),
            ("0.00000e5", 0),
        ] {
            assert_eq!(Price::parse(text).map(Price::cents), Ok(cents), "{text}");
        }
    }

    #[test]
    fn rejects_a_fraction_of_a_cent() {
        for text in ["19.999", "0.001", "1e-3", "19.9901"] {
            assert_eq!(Price::parse(text), Err(MoneyError::TooManyDecimals), "{text}");
        }
    }

    #[test]
    fn rejects_negative_and_huge_prices() {
        for text in [
            "-1",
            "-0.01",
            "1000000000.01",
            "1e10",
            "1e1000000000000",
            "99999999999999999999999",
        ] {
            assert_eq!(Price::parse(text), Err(MoneyError::OutOfRange), "{text}");
        }
    }

    #[test]
    fn rejects_text_that_is_not_a_json_number() {
        for text in [
            "", " 1", "1 ", "+1", "01", "1.", ".5", "1e", "1e+", "abc", "1,5", "NaN", "Infinity", "0x10",
            "1.2.3",
        ] {
            assert_eq!(Price::parse(text), Err(MoneyError::InvalidFormat), "{text:?}");
        }
    }

    #[test]
    fn strings_take_plain_decimals_only() {
        assert_eq!(Price::parse_plain("19.990").map(Price::cents), Ok(1999));
        for text in ["1e3", "-0", "-1", "1E2"] {
            assert_eq!(Price::parse_plain(text), Err(MoneyError::InvalidFormat), "{text}");
        }
    }

    #[test]
    fn renders_two_decimals_exactly() {
        assert_eq!(Price::parse("19.99").map(|p| p.to_string()), Ok("19.99".into()));
        assert_eq!(Price::parse("20").map(|p| p.to_string()), Ok("20.00".into()));
        assert_eq!(Price::parse("0.5").map(|p| p.to_string()), Ok("0.50".into()));
    }

    proptest! {
        #[test]
        fn render_then_parse_round_trips(cents in 0..=MAX_PRICE_CENTS) {
            let price = Price::from_cents(cents).unwrap();
            prop_assert_eq!(Price::parse(&price.to_string()), Ok(price));
        }

        #[test]
        fn every_accepted_input_is_a_whole_number_of_cents(
            int in 0u64..2_000_000_000, frac in "[0-9]{0,6}", exp in proptest::option::of(-4i32..4)
        ) {
            let mut text = int.to_string();
            if !frac.is_empty() { text = format!("{text}.{frac}"); }
            if let Some(e) = exp { text = format!("{text}e{e}"); }
            // An independent exact computation: scale everything to 10^-12 units with u128.
            let frac_units: u128 = format!("{frac:0<6}").parse().unwrap();
            let micro_units = int as u128 * 1_000_000 + frac_units; // value * 10^6
            let (num, den) = match exp.unwrap_or(0) {
                e if e >= 0 => (micro_units * 10u128.pow(e as u32), 1u128),
                e => (micro_units, 10u128.pow((-e) as u32)),
            };
            // cents = value * 100 = num / den / 10^4
            let whole_cents = (num % (den * 10_000)) == 0;
            let cents = num / (den * 10_000);
            match Price::parse(&text) {
                Ok(price) => {
                    prop_assert!(whole_cents);
                    prop_assert_eq!(price.cents() as u128, cents);
                }
                Err(MoneyError::TooManyDecimals) => prop_assert!(!whole_cents),
                Err(MoneyError::OutOfRange) => prop_assert!(whole_cents && cents > MAX_PRICE_CENTS as u128),
                Err(MoneyError::InvalidFormat) => prop_assert!(false, "valid syntax rejected: {}", text),
            }
        }

        #[test]
        fn arbitrary_text_is_either_rejected_or_whole_cents(text in "\\PC{0,12}") {
            if let Ok(price) = Price::parse(&text) {
                prop_assert!((0..=MAX_PRICE_CENTS).contains(&price.cents()));
                prop_assert!(text.trim() == text && !text.starts_with('+'));
            }
        }
    }
}
