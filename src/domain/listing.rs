//! What a product listing asks for: filters, a sort with its tie-break, and a page.

use serde::{Deserialize, Serialize};

use super::money::Price;
use super::product::Invalid;

/// The keys a listing can be sorted on. `Relevance` is the order of a full-text search when
/// no sort is given; it cannot be asked for by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKey {
    /// Creation order (the default).
    #[serde(rename = "id")]
    Id,
    /// Name, byte order.
    #[serde(rename = "name")]
    Name,
    /// Price in cents.
    #[serde(rename = "price")]
    Price,
    /// Units in stock.
    #[serde(rename = "stock")]
    Stock,
    /// Creation time.
    #[serde(rename = "created_at")]
    CreatedAt,
    /// Last change.
    #[serde(rename = "updated_at")]
    UpdatedAt,
    /// Full-text score (only with `q`; the default then).
    #[serde(rename = "relevance")]
    Relevance,
}

impl SortKey {
    /// The names a client may use in `sort`.
    pub const PUBLIC: [SortKey; 6] = [
        SortKey::Id,
        SortKey::Name,
        SortKey::Price,
        SortKey::Stock,
        SortKey::CreatedAt,
        SortKey::UpdatedAt,
    ];

    /// The key's name in the `sort` parameter.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Id => "id",
            SortKey::Name => "name",
            SortKey::Price => "price",
            SortKey::Stock => "stock",
            SortKey::CreatedAt => "created_at",
            SortKey::UpdatedAt => "updated_at",
            SortKey::Relevance => "relevance",
        }
    }
}

/// A sort key and direction; ties are always broken by `id` in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sort {
    /// What to order by.
    pub key: SortKey,
    /// `-key` in the query string.
    pub descending: bool,
}

impl Sort {
    /// By id, ascending.
    pub const DEFAULT: Sort = Sort {
        key: SortKey::Id,
        descending: false,
    };

    /// `name` or `-name`, for the public keys.
    pub fn parse(text: &str) -> Option<Sort> {
        let (descending, name) = match text.strip_prefix('-') {
            Some(name) => (true, name),
            None => (false, text),
        };
        SortKey::PUBLIC
            .into_iter()
            .find(|key| key.name() == name)
            .map(|key| Sort { key, descending })
    }

    /// The `sort` parameter's value for this sort.
    pub fn render(self) -> String {
        format!("{}{}", if self.descending { "-" } else { "" }, self.key.name())
    }
}

/// Full-text search text: 1..=200 characters as sent, not only white space, no control
/// characters, and at most 8 distinct words. A word repeated (in any case) counts once and is
/// searched once: the cost of a search grows with its words, and `a a a ... a` must cost what
/// `a` does. The engines also split a word at punctuation (`a-a-a-...-a` is a phrase of as many
/// terms), so the distinct words may hold at most 16 runs of letters or digits in all. Its terms
/// are the words holding a letter or digit; a text without any (`"!!!"`) is valid and matches
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery(String);

impl SearchQuery {
    /// The longest search text, in characters.
    pub const MAX_CHARS: usize = 200;
    /// The most distinct words a search may hold.
    pub const MAX_WORDS: usize = 8;
    /// The most runs of letters or digits a search may hold in all.
    pub const MAX_RUNS: usize = 16;

    /// A search text within the limits, or why not.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        let invalid = |message| Invalid::new("invalid_search", message);
        if text.chars().count() > Self::MAX_CHARS {
            return Err(invalid("at most 200 characters"));
        }
        if text.chars().any(char::is_control) {
            return Err(invalid("must not contain control characters"));
        }
        if text.trim().is_empty() {
            return Err(invalid("must not be empty or only white space"));
        }
        let too_many = || {
            Invalid::new(
                "too_many_terms",
                "at most 8 distinct words, holding at most 16 runs of letters or digits in all",
            )
        };
        let mut words: Vec<&str> = Vec::new();
        let mut folded: Vec<String> = Vec::new();
        let mut runs = 0;
        for word in text.split_whitespace() {
            let key = word.to_lowercase();
            if folded.contains(&key) {
                continue;
            }
            runs += alphanumeric_runs(word);
            if folded.len() == Self::MAX_WORDS || runs > Self::MAX_RUNS {
                return Err(too_many());
            }
            folded.push(key);
            words.push(word);
        }
        Ok(SearchQuery(words.join(" ")))
    }

    /// The normalised text (words joined by one space).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The words that can match anything: those holding a letter or digit.
    pub fn terms(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|t| t.chars().any(char::is_alphanumeric))
    }

    /// Whether no word can match (e.g. `"!!!"`): the search finds nothing.
    pub fn matches_nothing(&self) -> bool {
        self.terms().next().is_none()
    }
}

/// How many maximal runs of letters or digits `word` holds (`ws-002`: 2).
fn alphanumeric_runs(word: &str) -> usize {
    let mut runs = 0;
    let mut inside = false;
    for c in word.chars() {
        let alphanumeric = c.is_alphanumeric();
        if alphanumeric && !inside {
            runs += 1;
        }
        inside = alphanumeric;
    }
    runs
}

/// Which products a listing includes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    /// Full-text search words, de-duplicated and capped.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub q: Option<SearchQuery>,
    /// Lowest price in cents, inclusive.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub min_price: Option<i64>,
    /// Highest price in cents, inclusive.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_price: Option<i64>,
    /// Only products with (true) or without (false) stock.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub in_stock: Option<bool>,
}

impl Filters {
    /// The lowest price asked for, if any.
    pub fn min_price(&self) -> Option<Price> {
        self.min_price.and_then(|c| Price::from_cents(c).ok())
    }

    /// The highest price asked for, if any.
    pub fn max_price(&self) -> Option<Price> {
        self.max_price.and_then(|c| Price::from_cents(c).ok())
    }

    /// Whether no filter is set.
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }
}

/// The value of the sort key of the last item on a page, where the next page starts after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeyValue {
    /// Ids, prices in cents, stock and timestamps.
    Int(i64),
    /// Names.
    Text(String),
    /// Relevance scores, carried exactly (serde_json `float_roundtrip`).
    Score(f64),
}

/// The position after which a keyset page starts: the sort key's value and the id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct After {
    /// The sort key's value on the last row.
    pub key: KeyValue,
    /// The last row's id, which breaks ties.
    pub id: i64,
}

/// How a listing is paged.
#[derive(Debug, Clone, PartialEq)]
pub enum Page {
    /// Classic numbered pages, with a total.
    Offset {
        /// 1-based page number.
        page: u64,
        /// Items per page.
        per_page: u64,
    },
    /// Keyset pages: `limit` items after `after` (from the start when `None`).
    Keyset {
        /// Items per page.
        limit: u64,
        /// The last row of the previous page.
        after: Option<After>,
    },
}

/// A whole listing request, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery {
    /// Which products.
    pub filters: Filters,
    /// In which order.
    pub sort: Sort,
    /// Which slice of them.
    pub page: Page,
}

impl ListQuery {
    /// The effective sort: relevance when searching without an explicit sort.
    pub fn effective_sort(filters: &Filters, requested: Option<Sort>) -> Sort {
        match (requested, &filters.q) {
            (Some(sort), _) => sort,
            (None, Some(_)) => Sort {
                key: SortKey::Relevance,
                descending: false,
            },
            (None, None) => Sort::DEFAULT,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_parses_each_public_key_both_ways() {
        for key in SortKey::PUBLIC {
            let asc = Sort::parse(key.name()).unwrap();
            assert_eq!((asc.key, asc.descending), (key, false));
            let desc = Sort::parse(&format!("-{}", key.name())).unwrap();
            assert_eq!((desc.key, desc.descending), (key, true));
            assert_eq!(Sort::parse(&desc.render()), Some(desc));
        }
        for bad in [
            "",
            "-",
            "relevance",
            "-relevance",
            "price ",
            "+price",
            "PRICE",
            "--price",
            "colour",
        ] {
            assert_eq!(Sort::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn search_query_needs_a_word() {
        assert_eq!(
            SearchQuery::parse("  red   shirt ").unwrap().as_str(),
            "red shirt"
        );
        assert_eq!(
            SearchQuery::parse("red !!").unwrap().terms().collect::<Vec<_>>(),
            ["red"]
        );
        assert!(SearchQuery::parse("").is_err());
        assert!(SearchQuery::parse("  ").is_err());
        assert!(SearchQuery::parse("!! --").unwrap().matches_nothing());
        assert!(SearchQuery::parse(&"a".repeat(201)).is_err());
        assert!(SearchQuery::parse("a\u{0}").is_err());
    }

    #[test]
    fn repeated_words_count_and_search_once_and_nine_distinct_words_are_too_many() {
        let repeated = vec!["a"; 100].join(" ");
        assert_eq!(SearchQuery::parse(&repeated).unwrap().as_str(), "a");
        assert_eq!(
            SearchQuery::parse("Red red RED shirt red").unwrap().as_str(),
            "Red shirt"
        );
        let eight = "one two three four five six seven eight";
        assert_eq!(
            SearchQuery::parse(&format!("{eight} one TWO")).unwrap().as_str(),
            eight
        );
        let nine = SearchQuery::parse(&format!("{eight} nine")).unwrap_err();
        assert_eq!(nine.code, "too_many_terms");
        assert_eq!(
            SearchQuery::parse(&"a".repeat(201)).unwrap_err().code,
            "invalid_search"
        );
        // One word the engines split into a hundred terms.
        let hyphens = vec!["a"; 100].join("-");
        assert_eq!(SearchQuery::parse(&hyphens).unwrap_err().code, "too_many_terms");
        assert!(SearchQuery::parse("TSHIRT-RED-M WS-002 v2.0 foo@bar.com").is_ok());
        let sixteen = "a-b-c-d e-f-g-h i-j-k-l m-n-o-p";
        assert!(SearchQuery::parse(sixteen).is_ok());
        assert_eq!(
            SearchQuery::parse(&format!("{sixteen} q")).unwrap_err().code,
            "too_many_terms"
        );
        assert_eq!(alphanumeric_runs("--ws--002--"), 2);
        assert_eq!(alphanumeric_runs("!!!"), 0);
    }
}
