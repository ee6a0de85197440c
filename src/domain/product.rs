//! The rules of a product. Each field is a type that cannot hold an invalid value.

use chrono::{DateTime, Utc};

use super::money::Price;
use super::text;

/// A rule a field broke, with a stable machine-readable `code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// A stable code to branch on.
    pub code: &'static str,
    /// What is wrong, for people.
    pub message: String,
}

impl Invalid {
    /// An invalid value: a stable `code` to branch on and a message for people.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            code,
            message: message.into(),
        }
    }
}

fn has_forbidden_control(text: &str, allow_line_breaks: bool) -> bool {
    text.chars()
        .any(|c| c.is_control() && !(allow_line_breaks && matches!(c, '\n' | '\r' | '\t')))
}

/// 1..=200 characters after trimming surrounding white space, at least one of them visible;
/// no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    /// The longest name, in characters.
    pub const MAX_CHARS: usize = 200;

    /// A name: visible text, trimmed, within its length.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        // A name of zero-width or bidi characters alone would list as an empty line.
        if !text::has_visible(trimmed) {
            return Err(Invalid::new("blank", "must hold at least one visible character"));
        }
        if chars > Self::MAX_CHARS {
            return Err(Invalid::new("too_long", "at most 200 characters"));
        }
        if has_forbidden_control(trimmed, false) {
            return Err(Invalid::new(
                "invalid_character",
                "must not contain control characters",
            ));
        }
        Ok(ProductName(trimmed.to_owned()))
    }

    /// The name's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// At most 5000 characters; line breaks and tabs allowed, other control characters not
/// (PostgreSQL cannot even store NUL in text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// The longest description, in characters.
    pub const MAX_CHARS: usize = 5000;

    /// A description within its length and character rules.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(Invalid::new("too_long", "at most 5000 characters"));
        }
        if has_forbidden_control(raw, true) {
            return Err(Invalid::new(
                "invalid_character",
                "must not contain control characters other than line breaks and tabs",
            ));
        }
        Ok(Description(raw.to_owned()))
    }

    /// The description's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 1..=64 of `A-Z a-z 0-9 . _ -`, kept exactly as sent; uniqueness ignores case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sku(String);

impl Sku {
    /// The longest sku.
    pub const MAX_LEN: usize = 64;

    /// A sku of letters, digits, dots, dashes and underscores.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > Self::MAX_LEN {
            return Err(Invalid::new("invalid_length", "must be 1 to 64 characters"));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(Invalid::new(
                "invalid_character",
                "only letters A-Z a-z, digits and . _ - are allowed",
            ));
        }
        Ok(Sku(raw.to_owned()))
    }

    /// The sku's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Units on hand, `0..=i32::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stock(i64);

impl Stock {
    /// The most units a product can hold.
    pub const MAX: i64 = i32::MAX as i64;

    /// A stock of `units`, if within 0..=MAX.
    pub fn new(units: i64) -> Result<Self, Invalid> {
        if (0..=Self::MAX).contains(&units) {
            Ok(Stock(units))
        } else {
            Err(Invalid::new("out_of_range", "must be between 0 and 2147483647"))
        }
    }

    /// The number of units.
    pub fn units(self) -> i64 {
        self.0
    }
}

/// Everything a client decides about a product: what POST and PUT carry, and what a PATCH
/// produces once merged onto the stored product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductDraft {
    /// The name.
    pub name: ProductName,
    /// The description, if any.
    pub description: Option<Description>,
    /// The sku, if any.
    pub sku: Option<Sku>,
    /// The price.
    pub price: Price,
    /// Units in stock.
    pub stock: Stock,
}

/// A stored product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    /// The product's id.
    pub id: i64,
    /// What the client owns.
    pub draft: ProductDraft,
    /// Bumped by every write; the ETag.
    pub version: i64,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// A JSON merge patch of a product: `None` leaves a field alone; for nullable fields,
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    /// A new name.
    pub name: Option<ProductName>,
    /// A new description, or `Some(None)` to clear it.
    pub description: Option<Option<Description>>,
    /// A new sku, or `Some(None)` to clear it.
    pub sku: Option<Option<Sku>>,
    /// A new price.
    pub price: Option<Price>,
    /// A new stock.
    pub stock: Option<Stock>,
}

impl ProductPatch {
    /// The draft that results from applying this patch to `current`.
    pub fn apply_to(self, current: &ProductDraft) -> ProductDraft {
        ProductDraft {
            name: self.name.unwrap_or_else(|| current.name.clone()),
            description: self.description.unwrap_or_else(|| current.description.clone()),
            sku: self.sku.unwrap_or_else(|| current.sku.clone()),
            price: self.price.unwrap_or(current.price),
            stock: self.stock.unwrap_or(current.stock),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_trimmed_and_counted_in_characters() {
        assert_eq!(ProductName::parse("  Tee \n").map(|n| n.0), Ok("Tee".into()));
        assert!(ProductName::parse(&"é".repeat(200)).is_ok());
        assert_eq!(
            ProductName::parse(&"é".repeat(201)).map_err(|e| e.code),
            Err("too_long")
        );
        assert_eq!(ProductName::parse(" \t ").map_err(|e| e.code), Err("blank"));
        for invisible in ["\u{200B}\u{202E}", "\u{FEFF}", " \u{2060} \u{200D} "] {
            assert_eq!(ProductName::parse(invisible).map_err(|e| e.code), Err("blank"));
        }
        assert!(ProductName::parse("\u{200B}Tee\u{202E}").is_ok());
        assert_eq!(
            ProductName::parse("a\u{0}b").map_err(|e| e.code),
            Err("invalid_character")
        );
    }

    #[test]
    fn description_allows_line_breaks_but_not_nul() {
        assert!(Description::parse("line\nline\ttab").is_ok());
        assert!(Description::parse("").is_ok());
        assert!(Description::parse(&"x".repeat(5000)).is_ok());
        assert_eq!(
            Description::parse(&"x".repeat(5001)).map_err(|e| e.code),
            Err("too_long")
        );
        assert_eq!(
            Description::parse("a\u{0}").map_err(|e| e.code),
            Err("invalid_character")
        );
    }

    #[test]
    fn sku_allows_only_its_alphabet() {
        assert!(Sku::parse("TSHIRT-red_M.1").is_ok());
        assert!(Sku::parse(&"A".repeat(64)).is_ok());
        for bad in ["", "a b", "ü", "a/b", &"A".repeat(65)] {
            assert!(Sku::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stock_is_bounded_by_i32() {
        assert!(Stock::new(0).is_ok());
        assert!(Stock::new(2_147_483_647).is_ok());
        assert!(Stock::new(-1).is_err());
        assert!(Stock::new(2_147_483_648).is_err());
    }
}
