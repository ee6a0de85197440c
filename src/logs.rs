//! Logs and traces: `tracing` with `RUST_LOG` filtering; JSON for machines (written by
//! [`crate::log_line`], one line per request among them), readable for people; spans exported over
//! OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and no cost when not).

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, fmt};

use crate::log_line::{JsonLine, SpanFields};
use crate::log_writer::{LogWriter, LogWriterGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
/// How request and event lines are written (`TIENDA_LOG_FORMAT`).
pub enum LogFormat {
    /// One JSON object per line, for log shippers (the default in production).
    Json,
    /// Human-readable lines, for a terminal.
    Pretty,
}

impl LogFormat {
    /// Readable on a terminal, JSON everywhere else (files, journald, log shippers).
    pub fn detect() -> Self {
        if std::io::stdout().is_terminal() {
            LogFormat::Pretty
        } else {
            LogFormat::Json
        }
    }
}

/// Flushes and stops the trace exporter, then writes out the buffered log lines, when dropped.
/// Drop it outside the async runtime: the exporter's HTTP client is a blocking one.
#[must_use]
pub struct TelemetryGuard(Option<SdkTracerProvider>, Option<LogWriterGuard>);

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("tienda: cannot flush traces: {error}");
        }
        drop(self.1.take());
    }
}

/// Builds the OTLP/HTTP exporter; it reads `OTEL_EXPORTER_OTLP_ENDPOINT` (and the other
/// standard `OTEL_*` variables) itself.
fn tracer_provider() -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| e.to_string())?;
    let resource = Resource::builder().with_service_name("tienda").build();
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// Whether each request gets a `tracing` span carrying its id, method, route and user. The
/// JSON line reads those from the request's context instead (`http::request_context`), so with
/// JSON logs and no trace export the span would only cost: creating, entering and closing it,
/// and formatting its fields, took about a fifth of what a cached read costs. The readable
/// format and the OTLP exporter read spans, so with either the span is made.
static REQUEST_SPANS: AtomicBool = AtomicBool::new(true);

/// See [`REQUEST_SPANS`].
pub fn request_spans() -> bool {
    REQUEST_SPANS.load(Ordering::Relaxed)
}

/// Installs the global subscriber. Logs go to stdout; `RUST_LOG` defaults to `info`. With
/// `otlp` on, request and database spans are exported too, and an incoming W3C `traceparent`
/// continues the caller's trace.
pub fn init(format: LogFormat, otlp: bool) -> TelemetryGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let provider = if otlp {
        crate::install_tls_provider();
        match tracer_provider() {
            Ok(provider) => Some(provider),
            Err(error) => {
                eprintln!("tienda: traces are not exported: {error}");
                None
            }
        }
    } else {
        None
    };
    let otel = provider.as_ref().map(|provider| {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        tracing_opentelemetry::layer().with_tracer(provider.tracer("tienda"))
    });
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let (result, log_guard) = match format {
        LogFormat::Json => {
            let (writer, guard) = LogWriter::start();
            let layer = fmt::layer()
                .fmt_fields(SpanFields)
                .event_format(JsonLine)
                .with_writer(writer);
            (registry.with(layer).try_init(), Some(guard))
        }
        LogFormat::Pretty => (registry.with(fmt::layer()).try_init(), None),
    };
    // A second init (tests start many apps in one process) keeps the first subscriber, and
    // what it reads.
    if result.is_ok() {
        REQUEST_SPANS.store(
            format == LogFormat::Pretty || provider.is_some(),
            Ordering::Relaxed,
        );
    }
    TelemetryGuard(provider, log_guard)
}

/// Continues the caller's trace: makes `span` a child of the W3C `traceparent` in `headers`.
pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    struct Headers<'a>(&'a axum::http::HeaderMap);
    impl opentelemetry::propagation::Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    if !headers.contains_key("traceparent") {
        return;
    }
    let context =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&Headers(headers)));
    let _ = span.set_parent(context);
}
