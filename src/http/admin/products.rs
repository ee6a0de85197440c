//! The console's product pages: the list (the API's listing parser and keyset cursors), create
//! and edit (the API's body parsers; an edit carries its version, and a stale one is a conflict
//! page showing what changed meanwhile), and stock (the API's adjustment and ledger calls).

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::form::{explain, integer_or_text, json_object, messages, optional_text, text};
use super::page::{AdminError, html, see_other};
use super::session::{Staff, StaffForm};
use super::views::{
    Chrome, Columns, ConflictRow, Field, LedgerLine, ProductFields, ProductFormPage, ProductLine,
    ProductListPage, SORTS, StockPanel,
};
use crate::domain::etag::{self, Precondition};
use crate::domain::listing::{ListQuery, Page, SortKey};
use crate::domain::product::Product;
use crate::http::dto::inventory::parse_adjustment;
use crate::http::dto::product::{parse_draft, parse_patch};
use crate::http::error::ApiError;
use crate::http::list_query;
use crate::state::AppState;
use crate::store::admin_sessions::AdminSession;
use crate::store::{Conflict, StoreError};

/// Products per list page.
const PAGE_SIZE: u64 = 25;
/// Ledger rows shown on a product's page.
const LEDGER_ROWS: u64 = 50;

fn product_id(raw: &str) -> Result<i64, AdminError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(AdminError::Api(ApiError::NotFound))
}

fn is_htmx(headers: &HeaderMap) -> bool {
    headers.get("hx-request").is_some_and(|v| v == "true")
}

/// `GET /admin/products`: one keyset page, filtered and sorted as the API would.
pub async fn list(
    Staff(session): Staff,
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let sent: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).map_err(|_| ApiError::MalformedQuery)?;
    let value = |name: &str| {
        sent.iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, v)| v.trim())
            .to_owned()
    };
    // An empty form field means "no filter"; a cursor carries its own filters and sort.
    let cursor = value("cursor");
    let mut pairs: Vec<(String, String)> = Vec::new();
    if cursor.is_empty() {
        for name in ["q", "min_price", "max_price", "in_stock", "sort"] {
            let v = value(name);
            if !v.is_empty() {
                pairs.push((name.to_owned(), v));
            }
        }
    } else {
        pairs.push(("cursor".to_owned(), cursor.clone()));
    }
    pairs.push(("limit".to_owned(), PAGE_SIZE.to_string()));

    let columns = state
        .store
        .admin_columns(session.user.id)
        .await?
        .map_or(Columns::ALL, |c| Columns::parse(&c));
    let mut page = ProductListPage {
        chrome: Chrome::for_session(&session, "products"),
        q: value("q"),
        min_price: value("min_price"),
        max_price: value("max_price"),
        in_stock: value("in_stock"),
        sort: value("sort"),
        sorts: &SORTS,
        columns,
        rows: Vec::new(),
        next_url: None,
        on_later_page: !cursor.is_empty(),
        errors: Vec::new(),
    };
    let query = match list_query::parse(&pairs, &state.cursors) {
        Ok(query) => query,
        Err(ApiError::InvalidQuery(errors)) => {
            page.errors = errors
                .listed()
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect();
            return html(StatusCode::BAD_REQUEST, &page);
        }
        Err(other) => return Err(other.into()),
    };
    show_filters(&mut page, &query);

    // The same gate as the API: only so many relevance searches at once.
    let _search_slot = match &query.filters.q {
        Some(_) => Some(state.searches.enter().await.map_err(ApiError::from)?),
        None => None,
    };
    let listed = state.store.list_products(&query).await?;
    if let (Page::Keyset { limit, .. }, Some(after)) = (&query.page, listed.next) {
        let cursor = state.cursors.encode(query.sort, &query.filters, *limit, after);
        let encoded =
            serde_urlencoded::to_string([("cursor", cursor)]).map_err(|e| ApiError::Internal(e.into()))?;
        page.next_url = Some(format!("/admin/products?{encoded}"));
    }
    page.rows = listed
        .items
        .into_iter()
        .map(|p| ProductLine {
            id: p.id,
            name: p.draft.name.as_str().to_owned(),
            sku: p.draft.sku.as_ref().map_or("", |s| s.as_str()).to_owned(),
            price: p.draft.price.to_string(),
            stock: p.draft.stock.units(),
            updated: p.updated_at.format("%Y-%m-%d %H:%M").to_string(),
        })
        .collect();
    html(StatusCode::OK, &page)
}

/// The form shows the filters in force (on a cursor page, the ones the cursor carries).
fn show_filters(page: &mut ProductListPage, query: &ListQuery) {
    let filters = &query.filters;
    page.q = filters
        .q
        .as_ref()
        .map_or(String::new(), |q| q.as_str().to_owned());
    page.min_price = filters.min_price().map_or(String::new(), |p| p.to_string());
    page.max_price = filters.max_price().map_or(String::new(), |p| p.to_string());
    page.in_stock = filters.in_stock.map_or(String::new(), |b| b.to_string());
    let default = ListQuery::effective_sort(filters, None);
    page.sort = if query.sort == default || query.sort.key == SortKey::Relevance {
        String::new()
    } else {
        query.sort.render()
    };
}

/// `POST /admin/products/columns`: the list's columns, kept for this user.
pub async fn save_columns(State(state): State<AppState>, form: StaffForm) -> Result<Response, AdminError> {
    let chosen: Vec<&str> = form
        .fields
        .iter()
        .filter(|(key, _)| key == "col")
        .map(|(_, v)| v.as_str())
        .collect();
    let columns = Columns::parse(&chosen.join(","));
    state
        .store
        .set_admin_columns(form.session.user.id, &columns.render())
        .await?;
    Ok(see_other("/admin/products"))
}

fn fields_of(product: &Product) -> ProductFields {
    let draft = &product.draft;
    ProductFields {
        name: Field::of(draft.name.as_str()),
        sku: Field::of(draft.sku.as_ref().map_or("", |s| s.as_str())),
        description: Field::of(draft.description.as_ref().map_or("", |d| d.as_str())),
        price: Field::of(draft.price.to_string()),
        stock: Field::of(draft.stock.units().to_string()),
    }
}

/// The fields as posted (`prefix` `base_` for the values the form was loaded with).
fn posted_fields(form: &StaffForm, prefix: &str) -> ProductFields {
    let get = |name: &str| Field::of(form.get(&format!("{prefix}{name}")));
    ProductFields {
        name: get("name"),
        sku: get("sku"),
        description: get("description"),
        price: get("price"),
        stock: get("stock"),
    }
}

/// Puts the API's per-field messages on the fields; returns the rest.
fn show_errors(fields: &mut ProductFields, errors: &crate::http::error::FieldErrors) -> String {
    let (by_field, other) = messages(errors, &["name", "sku", "description", "price", "stock"]);
    for (name, message) in by_field {
        let field = match name.as_str() {
            "name" => &mut fields.name,
            "sku" => &mut fields.sku,
            "description" => &mut fields.description,
            "price" => &mut fields.price,
            _ => &mut fields.stock,
        };
        field.error = message;
    }
    other
}

async fn ledger(state: &AppState, product_id: i64) -> Result<Vec<LedgerLine>, AdminError> {
    let (rows, _) = state.store.list_ledger(product_id, LEDGER_ROWS, 0).await?;
    let mut who: HashMap<i64, String> = HashMap::new();
    for actor in rows.iter().filter_map(|r| r.actor) {
        if who.contains_key(&actor) {
            continue;
        }
        let name = match state.store.get_user(actor).await {
            Ok(user) => user.email.as_str().to_owned(),
            Err(StoreError::NotFound) => format!("user #{actor} (deleted)"),
            Err(other) => return Err(other.into()),
        };
        who.insert(actor, name);
    }
    Ok(rows
        .into_iter()
        .map(|row| LedgerLine {
            when: row.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            who: row
                .actor
                .and_then(|a| who.get(&a).cloned())
                .unwrap_or_else(|| "—".to_owned()),
            delta: format!("{:+}", row.delta),
            stock_after: row.stock_after,
            reason: row.reason,
        })
        .collect())
}

/// The edit page of `product` as stored.
async fn edit_page(
    state: &AppState,
    session: &AdminSession,
    product: &Product,
) -> Result<ProductFormPage, AdminError> {
    let fields = fields_of(product);
    Ok(ProductFormPage {
        chrome: Chrome::for_session(session, "products"),
        id: product.id,
        heading: format!("Edit “{}”", product.draft.name.as_str()),
        base: fields.clone(),
        fields,
        version: product.version,
        notice: String::new(),
        error: String::new(),
        conflict: Vec::new(),
        stock: StockPanel {
            stock: product.draft.stock.units(),
            ledger: ledger(state, product.id).await?,
            ..StockPanel::default()
        },
    })
}

/// `GET /admin/products/new`.
pub async fn new_form(Staff(session): Staff) -> Result<Response, AdminError> {
    let page = ProductFormPage {
        chrome: Chrome::for_session(&session, "new"),
        id: 0,
        heading: "New product".to_owned(),
        fields: ProductFields::default(),
        version: 0,
        base: ProductFields::default(),
        notice: String::new(),
        error: String::new(),
        conflict: Vec::new(),
        stock: StockPanel::default(),
    };
    html(StatusCode::OK, &page)
}

/// `POST /admin/products`: the form through the API's `parse_draft`, then the API's store call.
pub async fn create(State(state): State<AppState>, form: StaffForm) -> Result<Response, AdminError> {
    let mut fields = posted_fields(&form, "");
    let body = json_object(vec![
        ("name", text(form.get("name"))),
        ("sku", optional_text(form.get("sku"))),
        ("description", optional_text(form.get("description"))),
        ("price", text(form.get("price").trim())),
        ("stock", integer_or_text(form.get("stock"))),
    ])?;
    let (status, error) = match parse_draft(body) {
        Ok(draft) => match state
            .store
            .create_product(&draft, Some(form.session.user.id), None)
            .await
        {
            Ok(product) => return Ok(see_other(&format!("/admin/products/{}?created=1", product.id))),
            Err(StoreError::Conflict(Conflict::DuplicateSku)) => {
                fields.sku.error = "Another product already has this SKU.".to_owned();
                (StatusCode::CONFLICT, String::new())
            }
            Err(other) => return Err(other.into()),
        },
        Err(ApiError::Validation(errors)) => {
            let other = show_errors(&mut fields, &errors);
            (StatusCode::UNPROCESSABLE_ENTITY, other)
        }
        Err(other) => return Err(other.into()),
    };
    let page = ProductFormPage {
        chrome: Chrome::for_session(&form.session, "new"),
        id: 0,
        heading: "New product".to_owned(),
        fields,
        version: 0,
        base: ProductFields::default(),
        notice: String::new(),
        error: if error.is_empty() {
            "The product was not created: correct the fields marked below.".to_owned()
        } else {
            error
        },
        conflict: Vec::new(),
        stock: StockPanel::default(),
    };
    html(status, &page)
}

/// `GET /admin/products/{id}`: the edit form, the stock panel and the ledger.
pub async fn edit(
    Staff(session): Staff,
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let product = state.store.get_product(product_id(&id)?).await?;
    let mut page = edit_page(&state, &session, &product).await?;
    page.notice = match query.as_deref() {
        Some("created=1") => "Product created.",
        Some("saved=1") => "Changes saved.",
        Some("adjusted=1") => "Stock adjusted.",
        _ => "",
    }
    .to_owned();
    html(StatusCode::OK, &page)
}

fn shown(value: &str) -> String {
    if value.is_empty() {
        "(empty)".to_owned()
    } else {
        value.to_owned()
    }
}

/// `POST /admin/products/{id}`: a merge patch of the edited fields, applied only if the product
/// is still at the version the form was loaded at (the API's `If-Match`). A stale version changes
/// nothing and answers 412 with what changed meanwhile; the user's values stay in the form,
/// now based on the current version, to re-apply or discard.
pub async fn save(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: StaffForm,
) -> Result<Response, AdminError> {
    let id = product_id(&id)?;
    let mut mine = posted_fields(&form, "");
    let base = posted_fields(&form, "base_");
    let version = form.get("version").parse::<i64>().unwrap_or(0);
    let body = json_object(vec![
        ("name", text(form.get("name"))),
        ("sku", optional_text(form.get("sku"))),
        ("description", optional_text(form.get("description"))),
        ("price", text(form.get("price").trim())),
    ])?;
    let (status, error) = match parse_patch(body) {
        Ok(patch) => {
            let precondition = Precondition::IfMatch(etag::for_version(version));
            let saved = state
                .store
                .update_product(id, &precondition, Some(form.session.user.id), |current| {
                    patch.apply_to(current)
                })
                .await;
            match saved {
                Ok(_) => return Ok(see_other(&format!("/admin/products/{id}?saved=1"))),
                Err(StoreError::PreconditionFailed) => return conflict(&state, &form, id, mine, base).await,
                Err(StoreError::Conflict(Conflict::DuplicateSku)) => {
                    mine.sku.error = "Another product already has this SKU.".to_owned();
                    (StatusCode::CONFLICT, String::new())
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(ApiError::Validation(errors)) => {
            let other = show_errors(&mut mine, &errors);
            (StatusCode::UNPROCESSABLE_ENTITY, other)
        }
        Err(other) => return Err(other.into()),
    };
    let product = state.store.get_product(id).await?;
    let mut page = edit_page(&state, &form.session, &product).await?;
    page.fields = mine;
    page.base = base;
    page.version = version;
    page.error = if error.is_empty() {
        "Nothing was saved: correct the fields marked below.".to_owned()
    } else {
        error
    };
    html(status, &page)
}

/// One field of a three-way merge: the user's value where they changed it, else the current one
/// (so re-applying never reverts what someone else changed meanwhile).
fn merge(base: &Field, now: &Field, mine: &Field) -> Field {
    if mine.value == base.value {
        now.clone()
    } else {
        mine.clone()
    }
}

/// The 412 page: field by field, what the form was loaded with, what is stored now, and what
/// the user changed; the form holds the merge (the user's changes on top of the current
/// version), to re-apply or discard.
async fn conflict(
    state: &AppState,
    form: &StaffForm,
    id: i64,
    mine: ProductFields,
    base: ProductFields,
) -> Result<Response, AdminError> {
    let current = state.store.get_product(id).await?;
    let now = fields_of(&current);
    let row = |label, base: &Field, now: &Field, mine: Option<&Field>| {
        let edited = mine.filter(|m| m.value != base.value);
        ConflictRow {
            label,
            base: shown(&base.value),
            current: shown(&now.value),
            mine: match (mine, edited) {
                (None, _) => "(not edited here)".to_owned(),
                (Some(_), None) => "(unchanged)".to_owned(),
                (Some(_), Some(m)) => shown(&m.value),
            },
            changed_meanwhile: base.value != now.value,
            changed_by_both: base.value != now.value && edited.is_some_and(|m| m.value != now.value),
        }
    };
    let rows = vec![
        row("Name", &base.name, &now.name, Some(&mine.name)),
        row("SKU", &base.sku, &now.sku, Some(&mine.sku)),
        row("Price", &base.price, &now.price, Some(&mine.price)),
        row(
            "Description",
            &base.description,
            &now.description,
            Some(&mine.description),
        ),
        row("Stock", &base.stock, &now.stock, None),
    ];
    let merged = ProductFields {
        name: merge(&base.name, &now.name, &mine.name),
        sku: merge(&base.sku, &now.sku, &mine.sku),
        description: merge(&base.description, &now.description, &mine.description),
        price: merge(&base.price, &now.price, &mine.price),
        stock: now.stock.clone(),
    };
    let mut page = edit_page(state, &form.session, &current).await?;
    page.fields = merged;
    page.conflict = rows;
    tracing::info!(
        product_id = id,
        "console edit refused: the product changed meanwhile"
    );
    html(StatusCode::PRECONDITION_FAILED, &page)
}

/// `POST /admin/products/{id}/stock`: the API's adjustment parser and store call (the version
/// goes up and a ledger row with the user and reason is written in one transaction).
pub async fn adjust_stock(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    form: StaffForm,
) -> Result<Response, AdminError> {
    let id = product_id(&id)?;
    let mut panel = StockPanel {
        delta: Field::of(form.get("delta")),
        reason: Field::of(form.get("reason")),
        ..StockPanel::default()
    };
    let body = json_object(vec![
        ("delta", integer_or_text(form.get("delta"))),
        ("reason", text(form.get("reason"))),
    ])?;
    let status = match parse_adjustment(body) {
        Ok((delta, reason)) => {
            let adjusted = state
                .store
                .adjust_stock(id, delta, &reason, Some(form.session.user.id), None)
                .await;
            match adjusted {
                Ok(adjustment) => {
                    crate::metrics::stock_adjusted(adjustment.delta);
                    if !is_htmx(&headers) {
                        return Ok(see_other(&format!("/admin/products/{id}?adjusted=1")));
                    }
                    panel.notice = format!(
                        "Stock changed by {:+}: now {}.",
                        adjustment.delta, adjustment.stock_after
                    );
                    panel.delta = Field::default();
                    panel.reason = Field::default();
                    StatusCode::OK
                }
                Err(StoreError::Conflict(kind)) => {
                    panel.error = explain(ApiError::Conflict(kind));
                    StatusCode::CONFLICT
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(ApiError::Validation(errors)) => {
            let (by_field, other) = messages(&errors, &["delta", "reason"]);
            for (name, message) in by_field {
                if name == "delta" {
                    panel.delta.error = message;
                } else {
                    panel.reason.error = message;
                }
            }
            panel.error = if other.is_empty() {
                "The stock was not changed: correct the fields marked below.".to_owned()
            } else {
                other
            };
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Err(other) => return Err(other.into()),
    };
    let product = state.store.get_product(id).await?;
    let mut page = edit_page(&state, &form.session, &product).await?;
    panel.stock = page.stock.stock;
    panel.ledger = std::mem::take(&mut page.stock.ledger);
    page.stock = panel;
    html(status, &page)
}
