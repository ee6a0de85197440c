//! What the server knows about the request being served on this task: its `X-Request-Id` (kept
//! from the client when sane, generated otherwise), its method, once routing has chosen one its
//! route template, and once authenticated its user. Problem bodies, logs and metrics read them
//! from here. The JSON log line writes them as the request's span (`log_line.rs`), so no
//! `tracing` span has to carry them on every request (`logs::request_spans`).

use std::cell::{Cell, RefCell};

use axum::extract::MatchedPath;
use axum::http::{HeaderName, Method};

/// The header that carries a request's id, both ways.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub(super) struct RequestContext {
    pub id: String,
    method: Method,
    route: RefCell<Option<Route>>,
    user_id: Cell<Option<i64>>,
}

/// The route template a request was served by: routing's match, or one the envelope's hit lane
/// answered for itself.
#[derive(Debug, Clone)]
pub enum Route {
    /// Chosen by routing.
    Matched(MatchedPath),
    /// Answered before routing, for this template.
    Known(&'static str),
}

impl Route {
    /// The template, as metrics and logs label the request.
    pub fn as_str(&self) -> &str {
        match self {
            Route::Matched(path) => path.as_str(),
            Route::Known(path) => path,
        }
    }
}

tokio::task_local! {
    static CURRENT: RequestContext;
}

impl RequestContext {
    /// The client's id when sane, else a fresh one.
    pub fn for_request(client_id: Option<&str>, method: Method) -> Self {
        let id = client_id
            .filter(|id| is_sane(id))
            .map_or_else(generate, str::to_owned);
        RequestContext {
            id,
            method,
            route: RefCell::new(None),
            user_id: Cell::new(None),
        }
    }

    /// Runs `future` with this context as the task's current one.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }
}

/// The route the current request was served by, if routing (or the hit lane) chose one.
pub(super) fn current_route() -> Option<Route> {
    CURRENT.try_with(|ctx| ctx.route.borrow().clone()).ok().flatten()
}

/// The id of the request being served on this task, if any.
pub fn current_id() -> Option<String> {
    CURRENT.try_with(|ctx| ctx.id.clone()).ok()
}

/// Called by routing once it has matched a route: metrics and logs label the request with the
/// template (`/api/v1/products/{id}`), never the raw path.
pub(super) fn set_route(route: Route) {
    tracing::Span::current().record("route", route.as_str());
    let _ = CURRENT.try_with(|ctx| *ctx.route.borrow_mut() = Some(route));
}

/// Called once the caller is authenticated: the request's log line names the user.
pub fn set_user(user_id: i64) {
    tracing::Span::current().record("user_id", user_id);
    let _ = CURRENT.try_with(|ctx| ctx.user_id.set(Some(user_id)));
}

/// Calls `write` with the current request's id, method, route and user, when this task is
/// serving a request: the members of the log line's `span` for an event outside any span.
pub(crate) fn with_log_fields<R>(
    write: impl FnOnce(&str, &str, Option<&str>, Option<i64>) -> R,
) -> Option<R> {
    CURRENT
        .try_with(|ctx| {
            let route = ctx.route.borrow();
            write(
                &ctx.id,
                ctx.method.as_str(),
                route.as_ref().map(Route::as_str),
                ctx.user_id.get(),
            )
        })
        .ok()
}

/// 1..=128 of `A-Z a-z 0-9 . _ -`: safe to log and to echo in a header.
pub fn is_sane(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn generate() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_short_and_plain() {
        assert!(is_sane("01J9ZX-abc_def.1"));
        assert!(is_sane(&"a".repeat(128)));
        assert!(!is_sane(""));
        assert!(!is_sane(&"a".repeat(129)));
        assert!(!is_sane("a b"));
        assert!(!is_sane("a\nb"));
        assert!(!is_sane("é"));
    }

    #[test]
    fn generated_ids_are_sane_and_distinct() {
        let (a, b) = (generate(), generate());
        assert!(is_sane(&a) && is_sane(&b));
        assert_ne!(a, b);
    }

    #[test]
    fn a_client_id_is_kept_only_when_sane() {
        assert_eq!(
            RequestContext::for_request(Some("abc-1"), Method::GET).id,
            "abc-1"
        );
        let replaced = RequestContext::for_request(Some("a b"), Method::GET);
        assert!(is_sane(&replaced.id) && replaced.id != "a b");
        assert!(is_sane(&RequestContext::for_request(None, Method::GET).id));
    }
}
