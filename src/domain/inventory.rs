//! Stock adjustments: signed changes of a product's stock with a reason, and the ledger.

use chrono::{DateTime, Utc};

use super::product::{Invalid, Stock};

/// A non-zero change of stock, `|delta| <= 2147483647`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delta(i64);

impl Delta {
    /// A change of stock: non-zero, within the stock's range.
    pub fn new(units: i64) -> Result<Self, Invalid> {
        if units == 0 {
            return Err(Invalid::new("zero", "must not be zero"));
        }
        if units.unsigned_abs() > Stock::MAX as u64 {
            return Err(Invalid::new(
                "out_of_range",
                "must be between -2147483647 and 2147483647",
            ));
        }
        Ok(Delta(units))
    }

    /// The signed number of units.
    pub fn units(self) -> i64 {
        self.0
    }
}

/// Why stock changed: 1..=200 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason(String);

impl Reason {
    /// A reason: visible text, trimmed, within its length.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        if chars == 0 {
            return Err(Invalid::new("blank", "must not be empty or only white space"));
        }
        if chars > 200 {
            return Err(Invalid::new("too_long", "at most 200 characters"));
        }
        if trimmed.chars().any(char::is_control) {
            return Err(Invalid::new(
                "invalid_character",
                "must not contain control characters",
            ));
        }
        Ok(Reason(trimmed.to_owned()))
    }

    /// The reason's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// The ledger row's id.
    pub id: i64,
    /// The product whose stock changed.
    pub product_id: i64,
    /// The signed change.
    pub delta: i64,
    /// The stock once changed.
    pub stock_after: i64,
    /// Why it changed.
    pub reason: String,
    /// The user who made the change; `None` for changes made before accounts existed.
    pub actor: Option<i64>,
    /// When it changed.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_are_non_zero_and_bounded() {
        assert!(Delta::new(0).is_err());
        assert!(Delta::new(-2_147_483_647).is_ok());
        assert!(Delta::new(2_147_483_648).is_err());
        assert!(Delta::new(i64::MIN).is_err());
    }

    #[test]
    fn reasons_are_trimmed_and_bounded() {
        assert_eq!(Reason::parse("  order 1001 ").unwrap().as_str(), "order 1001");
        assert!(Reason::parse("   ").is_err());
        assert!(Reason::parse(&"r".repeat(200)).is_ok());
        assert!(Reason::parse(&"r".repeat(201)).is_err());
        assert!(Reason::parse("a\u{0}").is_err());
    }
}
