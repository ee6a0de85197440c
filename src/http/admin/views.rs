//! What each page shows: one struct per template in `templates/admin/`, checked against it at
//! compile time. Values arrive here as display text; templates only lay them out (and escape).

use askama::Template;

use super::assets;
use crate::store::admin_sessions::AdminSession;

/// htmx's settings (read from `<meta name="htmx-config">`, so no inline script): no injected
/// indicator styles and no `eval` (both would break the CSP), no scripts from swapped HTML, no
/// history snapshots of pages holding customer data, and swap 4xx answers too: a form that comes
/// back with errors shows them.
pub const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"allowEval":false,"allowScriptTags":false,"historyCacheSize":0,"responseHandling":[{"code":"204","swap":false},{"code":"[2345]..","swap":true}]}"#;

/// What every page's frame needs: who is signed in, the CSRF token, the asset URLs.
pub struct Chrome {
    pub signed_in: bool,
    pub email: String,
    pub is_admin: bool,
    pub csrf: String,
    /// Which navigation entry is the current page.
    pub section: &'static str,
    pub css: String,
    pub htmx: String,
    pub js: String,
    pub htmx_config: &'static str,
}

impl Chrome {
    /// The frame of a signed-in page.
    pub fn for_session(session: &AdminSession, section: &'static str) -> Self {
        Chrome {
            signed_in: true,
            email: session.user.email.as_str().to_owned(),
            is_admin: session.user.role == crate::domain::user::Role::Admin,
            csrf: session.csrf_token.clone(),
            section,
            ..Chrome::anonymous()
        }
    }

    /// The frame of a page shown to anyone (sign-in, errors).
    pub fn anonymous() -> Self {
        Chrome {
            signed_in: false,
            email: String::new(),
            is_admin: false,
            csrf: String::new(),
            section: "",
            css: assets::url("admin.css"),
            htmx: assets::url("htmx.min.js"),
            js: assets::url("admin.js"),
            htmx_config: HTMX_CONFIG,
        }
    }
}

#[derive(Template)]
#[template(path = "admin/error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub status: u16,
    pub title: String,
    pub detail: String,
    pub errors: Vec<String>,
}

#[derive(Template)]
#[template(path = "admin/sign_in.html")]
pub struct SignInPage {
    pub chrome: Chrome,
    pub email: String,
    pub error: String,
}

/// The product list's optional columns (the name is always shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Columns {
    pub sku: bool,
    pub price: bool,
    pub stock: bool,
    pub updated: bool,
}

impl Columns {
    /// The names a user can pick, in display order.
    pub const NAMES: [&'static str; 4] = ["sku", "price", "stock", "updated"];

    /// Parses a stored choice; unknown names are ignored.
    pub fn parse(text: &str) -> Self {
        let has = |name| text.split(',').any(|c| c.trim() == name);
        Columns {
            sku: has("sku"),
            price: has("price"),
            stock: has("stock"),
            updated: has("updated"),
        }
    }

    /// Everything, for a user who never chose.
    pub const ALL: Columns = Columns {
        sku: true,
        price: true,
        stock: true,
        updated: true,
    };

    /// The stored form of the choice.
    pub fn render(self) -> String {
        let on = [self.sku, self.price, self.stock, self.updated];
        Self::NAMES
            .iter()
            .zip(on)
            .filter(|(_, on)| *on)
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(",")
    }
}

pub struct ProductLine {
    pub id: i64,
    pub name: String,
    pub sku: String,
    pub price: String,
    pub stock: i64,
    pub updated: String,
}

pub struct SortOption {
    pub value: &'static str,
    pub label: &'static str,
}

pub const SORTS: [SortOption; 9] = [
    SortOption {
        value: "",
        label: "Default (id, or relevance when searching)",
    },
    SortOption {
        value: "name",
        label: "Name A–Z",
    },
    SortOption {
        value: "-name",
        label: "Name Z–A",
    },
    SortOption {
        value: "price",
        label: "Price, lowest first",
    },
    SortOption {
        value: "-price",
        label: "Price, highest first",
    },
    SortOption {
        value: "stock",
        label: "Stock, lowest first",
    },
    SortOption {
        value: "-stock",
        label: "Stock, highest first",
    },
    SortOption {
        value: "-updated_at",
        label: "Recently changed",
    },
    SortOption {
        value: "-id",
        label: "Newest",
    },
];

#[derive(Template)]
#[template(path = "admin/products.html")]
pub struct ProductListPage {
    pub chrome: Chrome,
    pub q: String,
    pub min_price: String,
    pub max_price: String,
    pub in_stock: String,
    pub sort: String,
    pub sorts: &'static [SortOption],
    pub columns: Columns,
    pub rows: Vec<ProductLine>,
    pub next_url: Option<String>,
    pub on_later_page: bool,
    pub errors: Vec<String>,
}

/// A form field's value and its error, if any.
#[derive(Debug, Clone, Default)]
pub struct Field {
    pub value: String,
    pub error: String,
}

impl Field {
    pub fn of(value: impl Into<String>) -> Self {
        Field {
            value: value.into(),
            error: String::new(),
        }
    }
}

/// The editable fields of a product, as text.
#[derive(Debug, Clone, Default)]
pub struct ProductFields {
    pub name: Field,
    pub sku: Field,
    pub description: Field,
    pub price: Field,
    pub stock: Field,
}

/// One row of the conflict table: what the field was when the user opened the form, what it is
/// now, and what the user wants.
pub struct ConflictRow {
    pub label: &'static str,
    pub base: String,
    pub current: String,
    pub mine: String,
    pub changed_meanwhile: bool,
    /// Changed meanwhile and by the user, to different values: the user's value is in the form.
    pub changed_by_both: bool,
}

pub struct LedgerLine {
    pub when: String,
    pub who: String,
    pub delta: String,
    pub stock_after: i64,
    pub reason: String,
}

/// The stock panel of the edit page.
#[derive(Default)]
pub struct StockPanel {
    pub stock: i64,
    pub delta: Field,
    pub reason: Field,
    pub notice: String,
    pub error: String,
    pub ledger: Vec<LedgerLine>,
}

#[derive(Template)]
#[template(path = "admin/product_form.html")]
pub struct ProductFormPage {
    pub chrome: Chrome,
    /// 0 for a new product.
    pub id: i64,
    pub heading: String,
    pub fields: ProductFields,
    /// The version the form was loaded at (sent back as the If-Match equivalent).
    pub version: i64,
    /// The values the form was loaded with, to show what changed meanwhile on a conflict.
    pub base: ProductFields,
    pub notice: String,
    pub error: String,
    pub conflict: Vec<ConflictRow>,
    pub stock: StockPanel,
}

pub struct UserLine {
    pub id: i64,
    pub email: String,
    pub role: &'static str,
    pub disabled: bool,
    pub created: String,
    pub is_me: bool,
}

#[derive(Template)]
#[template(path = "admin/users.html")]
pub struct UsersPage {
    pub chrome: Chrome,
    pub users: Vec<UserLine>,
    pub roles: [&'static str; 3],
    pub notice: String,
    pub error: String,
    pub more: bool,
}

/// The imports page: the upload form (sent by `admin.js` as the raw file, as the API takes it).
#[derive(Template)]
#[template(path = "admin/imports.html")]
pub struct ImportsPage {
    pub chrome: Chrome,
}

/// Why an upload was refused (a fragment `admin.js` puts under the form).
#[derive(Template)]
#[template(path = "admin/upload_error.html")]
pub struct UploadError {
    pub title: String,
    pub detail: String,
    pub errors: Vec<String>,
}

/// One row of the jobs list.
pub struct JobLine {
    pub id: i64,
    pub kind: String,
    pub status: &'static str,
    pub progress: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin/jobs.html")]
pub struct JobsPage {
    pub chrome: Chrome,
    pub jobs: Vec<JobLine>,
    pub kind: String,
    pub status: String,
    pub statuses: Vec<&'static str>,
    pub total: u64,
}

/// A row error of an import, as listed in its result.
pub struct RowErrorLine {
    pub line: u64,
    pub field: String,
    pub message: String,
}

/// What a job's page shows of it, and its status fragment (polled every second until it ends).
pub struct JobView {
    pub id: i64,
    pub kind: String,
    pub status: &'static str,
    pub finished: bool,
    pub dry_run: bool,
    pub done: i64,
    pub total: Option<i64>,
    pub created: String,
    /// `(label, number)` pairs of the result.
    pub counts: Vec<(&'static str, u64)>,
    pub row_errors: Vec<RowErrorLine>,
    /// How many row errors there were in all (the result lists the first 100).
    pub invalid: u64,
    pub error: String,
    /// An export's file, once it has succeeded.
    pub download: String,
    pub can_cancel: bool,
}

#[derive(Template)]
#[template(path = "admin/job.html")]
pub struct JobPage {
    pub chrome: Chrome,
    pub job: JobView,
}

#[derive(Template)]
#[template(path = "admin/job_status.html")]
pub struct JobStatusFragment {
    pub chrome: Chrome,
    pub job: JobView,
}

/// An event type as a checkbox.
pub struct EventChoice {
    pub name: &'static str,
    pub checked: bool,
}

pub struct WebhookLine {
    pub id: i64,
    pub url: String,
    pub events: String,
    pub disabled: bool,
}

#[derive(Template)]
#[template(path = "admin/webhooks.html")]
pub struct WebhooksPage {
    pub chrome: Chrome,
    pub endpoints: Vec<WebhookLine>,
    pub events: Vec<EventChoice>,
    pub errors: Vec<String>,
    /// The URL as typed, kept when the form comes back with errors.
    pub url: String,
}

pub struct DeliveryLine {
    pub id: i64,
    pub event_type: String,
    pub status: &'static str,
    pub attempts: i64,
    pub last_status: String,
    pub last_error: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "admin/webhook.html")]
pub struct WebhookPage {
    pub chrome: Chrome,
    pub id: i64,
    pub url: String,
    pub disabled: bool,
    pub events: Vec<EventChoice>,
    /// Shown once (after creation or a rotation); empty otherwise.
    pub secret: String,
    pub notice: String,
    pub deliveries: Vec<DeliveryLine>,
}
