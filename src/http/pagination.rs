//! Numbered pages: the `page` / `per_page` parameters of plain listings and the `Link` header
//! (RFC 8288) every offset listing carries.

use std::borrow::Cow;

use serde::Serialize;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder};
use utoipa::openapi::{Ref, RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::domain::product::Invalid;
use crate::http::error::{ApiError, FieldError, FieldErrors};

pub const DEFAULT_PER_PAGE: u64 = 20;
pub const MAX_PER_PAGE: u64 = 100;
/// Pages past this would only ever be empty or absurdly slow to skip to; cursors go deeper.
pub const MAX_PAGE: u64 = 10_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetPage {
    pub page: u64,
    pub per_page: u64,
}

impl OffsetPage {
    pub fn offset(self) -> u64 {
        (self.page - 1).saturating_mul(self.per_page)
    }
}

/// An integer parameter within bounds, or the error naming it.
pub fn bounded(field: &str, text: &str, min: u64, max: u64) -> Result<u64, FieldError> {
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) && !text.starts_with('+') => Ok(n),
        _ => Err(FieldError::new(
            field,
            Invalid::new("out_of_range", format!("must be an integer from {min} to {max}")),
        )),
    }
}

/// Parses a query string that may only hold `page` and `per_page`, each at most once.
pub fn parse_offset_query(query: Option<&str>) -> Result<OffsetPage, ApiError> {
    parse_offset_query_with(query, &[]).map(|(page, _)| page)
}

/// [`parse_offset_query`] for a listing with filters: the parameters named in `filters` (each
/// at most once) come back as given, for the handler to check.
pub fn parse_offset_query_with(
    query: Option<&str>,
    filters: &[&str],
) -> Result<(OffsetPage, Vec<(String, String)>), ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).map_err(|_| ApiError::MalformedQuery)?;
    let mut errors = FieldErrors::default();
    let mut page = None;
    let mut per_page = None;
    let mut given: Vec<(String, String)> = Vec::new();
    for (key, value) in &pairs {
        let slot = match key.as_str() {
            "page" => &mut page,
            "per_page" => &mut per_page,
            name if filters.contains(&name) => {
                if given.iter().any(|(k, _)| k == name) {
                    errors.push(FieldError::new(
                        key.clone(),
                        Invalid::new("repeated", "may be given only once"),
                    ));
                } else {
                    given.push((key.clone(), value.clone()));
                }
                continue;
            }
            _ => {
                errors.push_with(|| {
                    FieldError::new(
                        key.clone(),
                        Invalid::new("unknown_parameter", "is not a parameter of this listing"),
                    )
                });
                continue;
            }
        };
        if slot.is_some() {
            errors.push(FieldError::new(
                key.clone(),
                Invalid::new("repeated", "may be given only once"),
            ));
            continue;
        }
        let (min, max) = if key == "page" {
            (1, MAX_PAGE)
        } else {
            (1, MAX_PER_PAGE)
        };
        match bounded(key, value, min, max) {
            Ok(n) => *slot = Some(n),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::InvalidQuery(errors));
    }
    Ok((
        OffsetPage {
            page: page.unwrap_or(1),
            per_page: per_page.unwrap_or(DEFAULT_PER_PAGE),
        },
        given,
    ))
}

/// Sets an answer's `Link` header.
pub fn with_links(mut response: axum::response::Response, links: &str) -> axum::response::Response {
    if let Ok(value) = axum::http::HeaderValue::from_str(links) {
        response.headers_mut().insert(axum::http::header::LINK, value);
    }
    response
}

/// One `Link` entry.
pub fn link(path: &str, pairs: &[(&str, String)], rel: &str) -> String {
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    format!("<{path}?{query}>; rel=\"{rel}\"")
}

/// `first`, `prev`, `next` and `last` for an offset page of `path`, keeping `base` parameters.
pub fn offset_links(
    path: &str,
    base: &[(&'static str, String)],
    page: OffsetPage,
    total_pages: u64,
) -> String {
    let at = |n: u64| {
        let mut pairs = base.to_vec();
        pairs.push(("page", n.to_string()));
        pairs.push(("per_page", page.per_page.to_string()));
        pairs
    };
    let last = total_pages.max(1);
    let mut links = vec![link(path, &at(1), "first")];
    if page.page > 1 {
        links.push(link(path, &at((page.page - 1).min(last)), "prev"));
    }
    if page.page < total_pages {
        links.push(link(path, &at(page.page + 1), "next"));
    }
    links.push(link(path, &at(last), "last"));
    links.join(", ")
}

/// The body of every offset listing: one page of items and where it stands. The document names
/// it per item type (see [`PageItem`]), so each listing keeps a schema of its own.
#[derive(Debug, Serialize)]
pub struct PageBody<T> {
    items: Vec<T>,
    page: u64,
    per_page: u64,
    total: u64,
    total_pages: u64,
}

impl<T> PageBody<T> {
    /// Page `at` of a listing of `total` items.
    pub fn new(items: Vec<T>, at: OffsetPage, total: u64) -> Self {
        PageBody {
            items,
            page: at.page,
            per_page: at.per_page,
            total,
            total_pages: total.div_ceil(at.per_page),
        }
    }

    /// The answer: this page as JSON, with the `Link` header of `path`'s neighbouring pages.
    pub fn answer(self, path: &str) -> axum::response::Response
    where
        T: Serialize,
    {
        self.answer_with(path, &[])
    }

    /// [`PageBody::answer`] for a filtered listing: the `Link`s keep `filters`.
    pub fn answer_with(self, path: &str, filters: &[(&'static str, String)]) -> axum::response::Response
    where
        T: Serialize,
    {
        use axum::response::IntoResponse;
        let at = OffsetPage {
            page: self.page,
            per_page: self.per_page,
        };
        let links = offset_links(path, filters, at, self.total_pages);
        with_links(axum::Json(self).into_response(), &links)
    }

    /// How many pages the listing has.
    pub fn total_pages(&self) -> u64 {
        self.total_pages
    }
}

/// An item of offset listings: names the schema of its page in the document.
pub trait PageItem: ToSchema {
    /// The page schema's name, e.g. `ProductPage`.
    const PAGE_NAME: &'static str;
}

impl<T: PageItem> PartialSchema for PageBody<T> {
    fn schema() -> RefOr<Schema> {
        let count = || u64::schema();
        ObjectBuilder::new()
            .description(Some("An offset page."))
            .property(
                "items",
                ArrayBuilder::new().items(Ref::from_schema_name(T::name())),
            )
            .property("page", count())
            .property("per_page", count())
            .property("total", count())
            .property("total_pages", count())
            .required("items")
            .required("page")
            .required("per_page")
            .required("total")
            .required("total_pages")
            .into()
    }
}

impl<T: PageItem> ToSchema for PageBody<T> {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed(T::PAGE_NAME)
    }

    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        schemas.push((T::name().into_owned(), T::schema()));
        T::schemas(schemas);
    }
}
