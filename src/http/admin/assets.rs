//! The console's static files, compiled into the binary and served with long cache lifetimes:
//! their URLs carry a hash of their bytes, so a new build's files are new URLs.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    name: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
}

const ASSETS: [Asset; 3] = [
    Asset {
        name: "htmx.min.js",
        bytes: include_bytes!("assets/htmx.min.js"),
        content_type: "text/javascript; charset=utf-8",
    },
    Asset {
        name: "admin.js",
        bytes: include_bytes!("assets/admin.js"),
        content_type: "text/javascript; charset=utf-8",
    },
    Asset {
        name: "admin.css",
        bytes: include_bytes!("assets/admin.css"),
        content_type: "text/css; charset=utf-8",
    },
];

/// A hash of every asset: one query string that changes whenever any of them does.
static VERSION: LazyLock<String> = LazyLock::new(|| {
    let mut hasher = Sha256::new();
    for asset in &ASSETS {
        hasher.update(asset.bytes);
    }
    hasher
        .finalize()
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
});

/// Where a page links an asset.
pub fn url(name: &str) -> String {
    format!("/admin/static/{name}?v={}", *VERSION)
}

/// `GET /admin/static/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let Some(asset) = ASSETS.iter().find(|a| a.name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}
