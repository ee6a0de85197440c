//! The query string of `GET /api/v1/products`, parsed into a [`ListQuery`] with every bad
//! parameter named.

use crate::domain::cursor::{CursorCodec, CursorState};
use crate::domain::listing::{Filters, ListQuery, Page, SearchQuery, Sort};
use crate::domain::money::Price;
use crate::domain::product::Invalid;
use crate::http::error::{ApiError, FieldError, FieldErrors};

use crate::http::pagination::{DEFAULT_PER_PAGE, MAX_PAGE, MAX_PER_PAGE, bounded};

const KNOWN: [&str; 9] = [
    "page",
    "per_page",
    "limit",
    "cursor",
    "q",
    "min_price",
    "max_price",
    "in_stock",
    "sort",
];

/// The parameters as sent, each at most once.
#[derive(Default)]
struct Raw<'a> {
    values: Vec<(&'a str, &'a str)>,
}

impl<'a> Raw<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.values.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

struct Errors(FieldErrors);

impl Errors {
    fn add(&mut self, field: &str, code: &'static str, message: &str) {
        self.0
            .push_with(|| FieldError::new(field, Invalid::new(code, message)));
    }
}

fn parse_bounded(errors: &mut Errors, field: &str, text: &str, min: u64, max: u64) -> Option<u64> {
    bounded(field, text, min, max).map_err(|e| errors.0.push(e)).ok()
}

fn parse_price(errors: &mut Errors, field: &str, text: &str) -> Option<i64> {
    match Price::parse_plain(text) {
        Ok(price) => Some(price.cents()),
        Err(e) => {
            errors.add(field, e.code(), &e.to_string());
            None
        }
    }
}

/// Parses the listing parameters. `pairs` are the decoded `key=value` pairs in order.
pub fn parse(pairs: &[(String, String)], codec: &CursorCodec) -> Result<ListQuery, ApiError> {
    let mut errors = Errors(FieldErrors::default());
    let mut raw = Raw::default();
    for (key, value) in pairs {
        if !KNOWN.contains(&key.as_str()) {
            errors.add(key, "unknown_parameter", "is not a parameter of this listing");
        } else if raw.get(key).is_some() {
            errors.add(key, "repeated", "may be given only once");
        } else {
            raw.values.push((key, value));
        }
    }

    let sort = raw.get("sort").and_then(|text| {
        let sort = Sort::parse(text);
        if sort.is_none() {
            errors.add(
                "sort",
                "invalid_sort",
                "must be one of id, name, price, stock, created_at, updated_at, optionally prefixed by -",
            );
        }
        sort
    });
    let q = raw.get("q").and_then(|text| {
        SearchQuery::parse(text)
            .map_err(|invalid| errors.0.push(FieldError::new("q", invalid)))
            .ok()
    });
    let min_price = raw
        .get("min_price")
        .and_then(|t| parse_price(&mut errors, "min_price", t));
    let max_price = raw
        .get("max_price")
        .and_then(|t| parse_price(&mut errors, "max_price", t));
    if let (Some(min), Some(max)) = (min_price, max_price)
        && min > max
    {
        errors.add("min_price", "min_above_max", "must not be greater than max_price");
    }
    let in_stock = raw.get("in_stock").and_then(|text| match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => {
            errors.add("in_stock", "invalid_boolean", "must be true or false");
            None
        }
    });
    let filters = Filters {
        q,
        min_price,
        max_price,
        in_stock,
    };

    let offset_style = raw.get("page").is_some() || raw.get("per_page").is_some();
    let keyset_style = raw.get("limit").is_some() || raw.get("cursor").is_some();
    if offset_style && keyset_style {
        let field = if raw.get("limit").is_some() {
            "limit"
        } else {
            "cursor"
        };
        errors.add(
            field,
            "mixed_pagination",
            "page/per_page cannot be combined with limit/cursor",
        );
    }
    let page_number = raw
        .get("page")
        .and_then(|t| parse_bounded(&mut errors, "page", t, 1, MAX_PAGE));
    let per_page = raw
        .get("per_page")
        .and_then(|t| parse_bounded(&mut errors, "per_page", t, 1, MAX_PER_PAGE));
    let limit = raw
        .get("limit")
        .and_then(|t| parse_bounded(&mut errors, "limit", t, 1, MAX_PER_PAGE));
    let cursor: Option<CursorState> = raw.get("cursor").and_then(|text| {
        codec
            .decode(text)
            .map_err(|_| errors.add("cursor", "invalid_cursor", "is not a cursor this API issued"))
            .ok()
    });

    // A cursor carries its walk's sort and filters; a request may repeat them, not change them.
    if let Some(state) = &cursor {
        let sent_filters = ["q", "min_price", "max_price", "in_stock"]
            .iter()
            .any(|k| raw.get(k).is_some());
        if sent_filters && filters != state.filters {
            errors.add("cursor", "cursor_mismatch", "was issued for other filters");
        }
        if sort.is_some_and(|s| s != state.sort) {
            errors.add("cursor", "cursor_mismatch", "was issued for another sort");
        }
    }
    if !errors.0.is_empty() {
        return Err(ApiError::InvalidQuery(errors.0));
    }

    Ok(match cursor {
        Some(state) => ListQuery {
            filters: state.filters,
            sort: state.sort,
            page: Page::Keyset {
                limit: limit.unwrap_or(state.limit),
                after: Some(state.after),
            },
        },
        None => {
            let sort = ListQuery::effective_sort(&filters, sort);
            let page = if keyset_style {
                Page::Keyset {
                    limit: limit.unwrap_or(DEFAULT_PER_PAGE),
                    after: None,
                }
            } else {
                Page::Offset {
                    page: page_number.unwrap_or(1),
                    per_page: per_page.unwrap_or(DEFAULT_PER_PAGE),
                }
            };
            ListQuery { filters, sort, page }
        }
    })
}

/// The query string that selects `filters` and `sort` (as sent by a client), for `Link` URLs.
pub fn filter_query(filters: &Filters, sort: Sort, explicit_sort: bool) -> Vec<(&'static str, String)> {
    let mut pairs = Vec::new();
    if let Some(q) = &filters.q {
        pairs.push(("q", q.as_str().to_owned()));
    }
    if let Some(min) = filters.min_price() {
        pairs.push(("min_price", min.to_string()));
    }
    if let Some(max) = filters.max_price() {
        pairs.push(("max_price", max.to_string()));
    }
    if let Some(in_stock) = filters.in_stock {
        pairs.push(("in_stock", in_stock.to_string()));
    }
    if explicit_sort {
        pairs.push(("sort", sort.render()));
    }
    pairs
}
