//! The invalid inputs of a request, kept small whatever the request holds: at most
//! [`FieldErrors::MAX_LISTED`] are listed (the rest only counted), and a field name or message
//! that came from the client is cut to a fixed budget, so a problem body stays under 16 KiB.

use serde::Serialize;

use crate::domain::product::Invalid;

/// JSON-escaped bytes a field name may take in a problem body.
const FIELD_BUDGET: usize = 200;
/// JSON-escaped bytes a message may take.
const MESSAGE_BUDGET: usize = 300;
/// JSON-escaped bytes a problem's `detail` may take.
pub const DETAIL_BUDGET: usize = 1000;

/// One invalid input, named so a client can point at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The body member or query parameter, named as the client sent it.
    pub field: String,
    /// A stable machine-readable reason (`required`, `out_of_range`, ...).
    #[schema(value_type = String)]
    pub code: &'static str,
    /// The reason in English, for people.
    pub message: String,
}

impl FieldError {
    /// The error of `field`, its name and message cut to their budgets.
    pub fn new(field: impl Into<String>, invalid: Invalid) -> Self {
        FieldError {
            field: clip(field.into(), FIELD_BUDGET),
            code: invalid.code,
            message: clip(invalid.message, MESSAGE_BUDGET),
        }
    }
}

/// The errors of one request: the first [`Self::MAX_LISTED`] in full, and how many there were.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors {
    listed: Vec<FieldError>,
    total: usize,
}

impl FieldErrors {
    /// How many errors a problem lists in full.
    pub const MAX_LISTED: usize = 20;

    /// Adds an error; past the listed ones it is only counted, and `make` is not even called.
    pub fn push_with(&mut self, make: impl FnOnce() -> FieldError) {
        if self.listed.len() < Self::MAX_LISTED {
            self.listed.push(make());
        }
        self.total += 1;
    }

    /// Counts `n` more errors that are never listed (fields past those a body keeps).
    pub fn count_unlisted(&mut self, n: usize) {
        self.total += n;
    }

    /// Adds an error (only counted past the listed ones).
    pub fn push(&mut self, error: FieldError) {
        self.push_with(|| error);
    }

    /// Whether there is no error.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// How many errors there were, listed or not.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The errors listed in full.
    pub fn listed(&self) -> &[FieldError] {
        &self.listed
    }
}

impl From<Vec<FieldError>> for FieldErrors {
    fn from(errors: Vec<FieldError>) -> Self {
        let mut collected = FieldErrors::default();
        errors.into_iter().for_each(|e| collected.push(e));
        collected
    }
}

/// `text` cut at a character boundary so that its JSON-escaped form takes at most `budget`
/// bytes, with `…` marking the cut. One pass, and nothing is copied when it already fits.
pub fn clip(text: String, budget: usize) -> String {
    const MARK: char = '…';
    let mut used = 0;
    let mut cut = None;
    for (at, c) in text.char_indices() {
        used += escaped_len(c);
        if cut.is_none() && used + escaped_len(MARK) > budget {
            cut = Some(at);
        }
        if used > budget {
            let mut clipped = text[..cut.unwrap_or(at)].to_owned();
            clipped.push(MARK);
            return clipped;
        }
    }
    text
}

/// Bytes `c` takes inside a JSON string as serde_json writes it.
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\n' | '\r' | '\t' | '\u{8}' | '\u{c}' => 2,
        c if c < ' ' => 6,
        c => c.len_utf8(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn escaped(text: &str) -> usize {
        serde_json::to_string(text).unwrap().len() - 2
    }

    #[test]
    fn clipping_respects_the_escaped_budget_and_char_boundaries() {
        for text in [
            "x".repeat(1000),
            "é".repeat(1000),
            "\u{0}".repeat(1000),
            "\"".repeat(1000),
            "🦀".repeat(1000),
            format!("{}é", "a".repeat(199)),
        ] {
            let clipped = clip(text.clone(), 200);
            assert!(escaped(&clipped) <= 200, "{clipped:?}");
            assert!(clipped.ends_with('…'));
            assert!(text.starts_with(clipped.trim_end_matches('…')));
        }
        assert_eq!(clip("short".into(), 200), "short");
        assert_eq!(clip("x".repeat(200), 200), "x".repeat(200));
        for c in ['a', '"', '\u{1}', '\n', '\u{7f}', 'é', '🦀'] {
            assert_eq!(escaped_len(c), escaped(&c.to_string()), "{c:?}");
        }
    }

    /// The worst a client can make a problem: every quoted part at its budget, every character
    /// one that JSON escapes as six bytes.
    #[test]
    fn the_largest_possible_problem_stays_under_16_kib() {
        let worst = "\u{1}".repeat(10_000);
        let mut errors = FieldErrors::default();
        for _ in 0..1000 {
            errors.push(FieldError::new(
                worst.clone(),
                Invalid::new("unknown_parameter", worst.clone()),
            ));
        }
        let problem = crate::http::error::Problem::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "/problems/idempotency-key-reused",
            "This Idempotency-Key was used for a different request",
        )
        .errors(&errors)
        .detail(worst);
        let body = serde_json::to_vec(&problem).unwrap();
        assert!(body.len() <= 16 * 1024, "{} bytes", body.len());
    }

    #[test]
    fn only_the_first_twenty_are_kept() {
        let mut errors = FieldErrors::default();
        for n in 0..25 {
            errors.push(FieldError::new(format!("f{n}"), Invalid::new("x", "y")));
        }
        assert_eq!(errors.total(), 25);
        assert_eq!(errors.listed().len(), 20);
        assert_eq!(errors.listed()[19].field, "f19");
    }
}
