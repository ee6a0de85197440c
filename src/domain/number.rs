//! The one grammar of decimal numbers, for money and integers alike.
//!
//! A number is read as written (sign, digits, power of ten) and converted exactly to whole units
//! at a scale: cents are units at scale 2, a stock count units at scale 0. Nothing is rounded,
//! nothing wraps: every step is checked, and an exponent too large for an i64 is kept as such
//! instead of being clamped to something that could change the answer. The work is one pass
//! over the text, so a million digits cost what reading them costs.

/// Why a number is not a whole count of units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberError {
    /// Not a number in this grammar.
    Syntax,
    /// A value with a nonzero part below the unit (`1.5` as an integer, `0.001` as cents).
    Fraction,
    /// Too large in magnitude to be counted (beyond 10^38 units).
    OutOfRange,
}

/// The power of ten as written: within an i64, or past it on one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exponent {
    Exact(i64),
    BeyondI64 { negative: bool },
}

/// A decimal number as written: the value is `±(int_digits.frac_digits) × 10^exponent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal<'a> {
    negative: bool,
    int_digits: &'a str,
    frac_digits: &'a str,
    exponent: Exponent,
}

/// The most digits a count of units may have: every 38-digit number fits an i128.
const MAX_DIGITS: i128 = 38;

impl<'a> Decimal<'a> {
    /// JSON number grammar: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    pub fn parse(text: &'a str) -> Result<Self, NumberError> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (int_digits, frac_digits, rest) = plain_digits(rest)?;
        let exponent = match rest.strip_prefix(['e', 'E']) {
            None if rest.is_empty() => Exponent::Exact(0),
            None => return Err(NumberError::Syntax),
            Some(exp) => parse_exponent(exp)?,
        };
        Ok(Decimal {
            negative,
            int_digits,
            frac_digits,
            exponent,
        })
    }

    /// The plain form a price takes in a string or a query: `(0 | [1-9][0-9]*) (. [0-9]+)?`,
    /// no sign, no exponent.
    pub fn parse_plain(text: &'a str) -> Result<Self, NumberError> {
        match plain_digits(text)? {
            (int_digits, frac_digits, "") => Ok(Decimal {
                negative: false,
                int_digits,
                frac_digits,
                exponent: Exponent::Exact(0),
            }),
            _ => Err(NumberError::Syntax),
        }
    }

    /// Whether the number was written with a minus sign (`-0` included).
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The exact value times `10^scale`, when that is a whole number of at most 38 digits.
    /// Zero is zero whatever its sign and exponent.
    pub fn to_units(&self, scale: u32) -> Result<i128, NumberError> {
        let digits = || self.int_digits.bytes().chain(self.frac_digits.bytes());
        let total = self.int_digits.len() + self.frac_digits.len();
        let leading = digits().take_while(|&d| d == b'0').count();
        if leading == total {
            return Ok(0);
        }
        let trailing = digits().rev().take_while(|&d| d == b'0').count();
        let significant = total - leading - trailing;
        // The power of ten of the last significant digit, counted in units. Every term is at
        // most 2^63 in magnitude, so the sum cannot overflow an i128.
        let exponent = match self.exponent {
            Exponent::Exact(e) => i128::from(e),
            // 10^(2^63) or more: no digit string that fits in memory brings that back in range.
            Exponent::BeyondI64 { negative: false } => return Err(NumberError::OutOfRange),
            // Below 10^-(2^63): a nonzero value smaller than any unit.
            Exponent::BeyondI64 { negative: true } => return Err(NumberError::Fraction),
        };
        let last = exponent - count(self.frac_digits.len()) + count(trailing) + i128::from(scale);
        if last < 0 {
            return Err(NumberError::Fraction);
        }
        if count(significant) + last > MAX_DIGITS {
            return Err(NumberError::OutOfRange);
        }
        let magnitude = digits()
            .skip(leading)
            .take(significant)
            .try_fold(0i128, |acc, d| {
                acc.checked_mul(10)?.checked_add(i128::from(d - b'0'))
            })
            .and_then(|m| {
                let shift = u32::try_from(last).ok()?;
                m.checked_mul(10i128.checked_pow(shift)?)
            })
            .ok_or(NumberError::OutOfRange)?;
        Ok(if self.negative { -magnitude } else { magnitude })
    }
}

/// A length as a signed count; lengths of text in memory always fit.
fn count(n: usize) -> i128 {
    i128::try_from(n).unwrap_or(i128::MAX)
}

/// `(0 | [1-9][0-9]*) (. [0-9]+)?` at the start of `text`: the integer digits, the fraction
/// digits and what follows.
fn plain_digits(text: &str) -> Result<(&str, &str, &str), NumberError> {
    let int_len = text.bytes().take_while(u8::is_ascii_digit).count();
    let (int_digits, rest) = text.split_at(int_len);
    if int_digits.is_empty() || (int_digits.len() > 1 && int_digits.starts_with('0')) {
        return Err(NumberError::Syntax);
    }
    match rest.strip_prefix('.') {
        None => Ok((int_digits, "", rest)),
        Some(after_dot) => {
            let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 {
                return Err(NumberError::Syntax);
            }
            let (frac_digits, rest) = after_dot.split_at(len);
            Ok((int_digits, frac_digits, rest))
        }
    }
}

/// `[+-]? [0-9]+`, the whole of `text`: exact when it fits an i64, else which side it passed.
fn parse_exponent(text: &str) -> Result<Exponent, NumberError> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumberError::Syntax);
    }
    let significant = digits.trim_start_matches('0');
    // Twenty digits or more are beyond an i64 either way; fewer always fit an i128.
    if significant.len() >= 20 {
        return Ok(Exponent::BeyondI64 { negative });
    }
    let magnitude = significant
        .bytes()
        .fold(0i128, |acc, d| acc * 10 + i128::from(d - b'0'));
    let signed = if negative { -magnitude } else { magnitude };
    Ok(i64::try_from(signed).map_or(Exponent::BeyondI64 { negative }, Exponent::Exact))
}

#[cfg(test)]
#[path = "number_tests.rs"]
mod tests;
