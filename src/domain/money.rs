//! Exact money: a price is a whole number of cents, from the wire to the disk.
//!
//! Clients may send a price as a JSON number or a JSON string; either way we parse the decimal
//! text ourselves, so `19.99` can never pass through a binary float on its way in or out.

use std::fmt;

use super::number::{Decimal, NumberError};

/// The largest price the catalogue accepts: 1,000,000,000.00.
pub const MAX_PRICE_CENTS: i64 = 100_000_000_000;

/// A price in cents, `0..=MAX_PRICE_CENTS`. The field is private: the only ways in are
/// [`Price::parse`] and [`Price::from_cents`], which both enforce the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Price(i64);

/// Why a text is not a price. Each variant maps to a stable `code` in problem bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a decimal number.
    #[error("must be a decimal number such as 19.99")]
    InvalidFormat,
    /// More than two decimal places.
    #[error("at most 2 decimal places")]
    TooManyDecimals,
    /// Below zero or above the maximum price.
    #[error("must be between 0 and 1000000000")]
    OutOfRange,
}

impl MoneyError {
    /// The stable code of the error.
    pub fn code(self) -> &'static str {
        match self {
            MoneyError::InvalidFormat => "invalid_format",
            MoneyError::TooManyDecimals => "too_many_decimals",
            MoneyError::OutOfRange => "out_of_range",
        }
    }
}

impl Price {
    /// A price of `cents`, if within 0..=100000000000.
    pub fn from_cents(cents: i64) -> Result<Self, MoneyError> {
        if (0..=MAX_PRICE_CENTS).contains(&cents) {
            Ok(Price(cents))
        } else {
            Err(MoneyError::OutOfRange)
        }
    }

    /// The price in cents.
    pub fn cents(self) -> i64 {
        self.0
    }

    /// Parses decimal text in JSON number syntax (`19.99`, `20`, `19.990`, `1.5e1`).
    ///
    /// The value must be a whole number of cents; trailing zeros beyond the second decimal are
    /// fine (`19.990`), any other digit there is not (`19.999`). There is no rounding anywhere.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        Price::from_decimal(Decimal::parse(text))
    }

    /// Parses a price sent as a string: plain decimal digits (`19.99`, `20`), no sign, no
    /// exponent, the form the OpenAPI pattern documents.
    pub fn parse_plain(text: &str) -> Result<Self, MoneyError> {
        Price::from_decimal(Decimal::parse_plain(text))
    }

    fn from_decimal(decimal: Result<Decimal<'_>, NumberError>) -> Result<Self, MoneyError> {
        let cents = decimal.and_then(|d| d.to_units(2)).map_err(|e| match e {
            NumberError::Syntax => MoneyError::InvalidFormat,
            NumberError::Fraction => MoneyError::TooManyDecimals,
            NumberError::OutOfRange => MoneyError::OutOfRange,
        })?;
        let cents = i64::try_from(cents).map_err(|_| MoneyError::OutOfRange)?;
        Price::from_cents(cents)
    }
}

impl fmt::Display for Price {
    /// Always two decimals: `19.99`, `20.00`, `0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
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

        /// Whatever the text, an accepted price is the amount the text means: compared with a
        /// float reading of the same text (exact to far below a cent in this range), a parser
        /// that dropped, shifted or wrapped digits would be caught.
        #[test]
        fn an_accepted_text_means_the_price_read(
            text in "\\PC{0,12}|-?(0|[1-9][0-9]{0,12})(\\.[0-9]{1,5})?([eE][-+]?0?[0-9]{1,2})?"
        ) {
            if let Ok(price) = Price::parse(&text) {
                let meant: f64 = text.parse().unwrap();
                prop_assert!((meant * 100.0 - price.cents() as f64).abs() < 0.01, "{} read as {}", text, price);
                prop_assert!(text.trim() == text && !text.starts_with('+'));
            }
        }

        /// The string form: plain digits only, and the cents computed from the digit strings.
        #[test]
        fn plain_strings_are_exact_cents(
            text in "(0|[1-9][0-9]{0,13})(\\.[0-9]{1,5})?|[-+]?[0-9.eE]{0,8}|\\PC{0,8}"
        ) {
            let plain = text.split_once('.').map_or((text.as_str(), ""), |(i, f)| (i, f));
            let grammar = !plain.0.is_empty()
                && plain.0.bytes().all(|b| b.is_ascii_digit())
                && (plain.0 == "0" || !plain.0.starts_with('0'))
                && (!text.contains('.') || (!plain.1.is_empty() && plain.1.bytes().all(|b| b.is_ascii_digit())));
            let result = Price::parse_plain(&text);
            if !grammar {
                prop_assert_eq!(result, Err(MoneyError::InvalidFormat), "{}", text);
                return Ok(());
            }
            let (int, frac) = plain;
            let cents_digits = format!("{int}{:0<2}", frac.get(..2).unwrap_or(frac));
            let expected = if frac.get(2..).is_some_and(|rest| rest.bytes().any(|b| b != b'0')) {
                Err(MoneyError::TooManyDecimals)
            } else {
                match cents_digits.parse::<u128>() {
                    Ok(cents) if cents <= MAX_PRICE_CENTS as u128 => Ok(cents as i64),
                    _ => Err(MoneyError::OutOfRange),
                }
            };
            prop_assert_eq!(result.map(Price::cents), expected, "{}", text);
        }
    }
}
