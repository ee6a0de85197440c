//! The JSON log line, made cheaply: one line per request is a feature (issue 12), so what it costs
//! is paid on every request.
//!
//! The line is what `tracing_subscriber`'s JSON format (flattened event, current span) wrote:
//! `{"timestamp":..,"level":..,<event fields>,"target":..,"span":{<span fields>,"name":..}}`.
//! Written here instead because that format keeps each span's fields as a JSON object in a
//! string and, for every event, parses it back into a map to copy it into the line (and parses
//! and re-serializes it for every field recorded later, such as the route); here a span's fields
//! are kept as the JSON members they will be written as, and copied as text. Values are escaped
//! and numbers written by serde_json.
//!
//! Lines go to stdout through `log_writer::LogWriter`: appended to a buffer that a thread of its own
//! writes out, so a request never waits for a `write(2)`, and many lines share one. A full
//! buffer makes the next line wait rather than be dropped.

use std::fmt::{self, Write as _};
use std::io;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber, span};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Formats a span's fields as JSON members without the braces (`"a":1,"b":"x"`), so an event
/// copies them into its line as they are.
#[derive(Debug, Default, Clone, Copy)]
pub struct SpanFields;

impl<'writer> FormatFields<'writer> for SpanFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = Members::new(writer, true);
        fields.record(&mut visitor);
        visitor.result
    }

    /// A field recorded later (the route, the user) replaces the one recorded before, as the
    /// map the JSON format kept did.
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &span::Record<'_>,
    ) -> fmt::Result {
        let mut names = Vec::new();
        fields.record(&mut |field: &Field, _: &dyn fmt::Debug| names.push(field.name()));
        for name in names {
            remove_member(&mut current.fields, name);
        }
        let first = current.fields.is_empty();
        let mut visitor = Members::new(current.as_writer(), first);
        fields.record(&mut visitor);
        visitor.result
    }
}

/// Removes the member `name` from members written by [`Members`]. A member starts the string or
/// follows a `,`; inside a string value every `"` is escaped, so `,"name":` cannot occur there.
fn remove_member(members: &mut String, name: &str) {
    let mut key = String::with_capacity(name.len() + 4);
    key.push(',');
    let _ = write_escaped(&mut key, name);
    key.push(':');
    let start = if members.starts_with(&key[1..]) {
        0
    } else if let Some(at) = members.find(&key) {
        at
    } else {
        return;
    };
    let value_start = start + if start == 0 { key.len() - 1 } else { key.len() };
    let end = member_value_end(members.as_bytes(), value_start);
    // Keep the separating comma right: drop the one before (or, for the first member, after).
    if start == 0 {
        let end = if members.as_bytes().get(end) == Some(&b',') {
            end + 1
        } else {
            end
        };
        members.replace_range(0..end, "");
    } else {
        members.replace_range(start..end, "");
    }
}

/// Where the value starting at `at` ends: after its closing quote for a string, else at the
/// next `,` (numbers, booleans and `null` hold none).
fn member_value_end(bytes: &[u8], at: usize) -> usize {
    if bytes.get(at) == Some(&b'"') {
        let mut i = at + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return i + 1,
                _ => i += 1,
            }
        }
        bytes.len()
    } else {
        bytes[at..]
            .iter()
            .position(|b| *b == b',')
            .map_or(bytes.len(), |p| at + p)
    }
}

/// Writes the fields it visits as JSON members: `"name":value`, comma-separated.
struct Members<'a> {
    writer: Writer<'a>,
    first: bool,
    result: fmt::Result,
}

impl<'a> Members<'a> {
    fn new(writer: Writer<'a>, first: bool) -> Self {
        Members {
            writer,
            first,
            result: Ok(()),
        }
    }

    fn member(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'a>) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| value(&mut self.writer));
        }
    }

    fn key(&mut self, field: &Field) -> fmt::Result {
        if !self.first {
            self.writer.write_char(',')?;
        }
        self.first = false;
        write_escaped(&mut self.writer, field.name())?;
        self.writer.write_char(':')
    }
}

impl Visit for Members<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.member(field, |w| write_f64(w, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| w.write_str(if value { "true" } else { "false" }));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |w| write_escaped(w, value));
    }

    /// Everything else (the message, `%display` and `?debug` values, errors) is a string of its
    /// `Debug` form, as in the JSON format.
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |w| {
            w.write_char('"')?;
            write!(Escaping(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// The form tracing_subscriber's default timer writes: RFC 3339 in UTC, to the microsecond
/// (written from the parts: a format string would be parsed again for every line).
fn write_timestamp(w: &mut impl fmt::Write, now: chrono::DateTime<chrono::Utc>) -> fmt::Result {
    use chrono::{Datelike, Timelike};
    write!(
        w,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        now.year(),
        now.month(),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        now.timestamp_subsec_micros().min(999_999)
    )
}

/// A number as serde_json writes one: shortest round-trip form, `null` when not finite.
fn write_f64(w: &mut impl fmt::Write, value: f64) -> fmt::Result {
    // serde_json itself, into a buffer on the stack: no number it writes is longer.
    let mut buffer = io::Cursor::new([0u8; 40]);
    serde_json::to_writer(&mut buffer, &value).map_err(|_| fmt::Error)?;
    let written = usize::try_from(buffer.position()).map_err(|_| fmt::Error)?;
    let text = buffer.get_ref().get(..written).ok_or(fmt::Error)?;
    w.write_str(std::str::from_utf8(text).map_err(|_| fmt::Error)?)
}

/// A JSON string, quoted and escaped as serde_json escapes it.
fn write_escaped(w: &mut impl fmt::Write, value: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaping(w).write_str(value)?;
    w.write_char('"')
}

/// Escapes what is written through it for the inside of a JSON string.
struct Escaping<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaping<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bytes = s.as_bytes();
        let mut plain = 0;
        for (i, &byte) in bytes.iter().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0x08 => "\\b",
                0x0c => "\\f",
                0x00..=0x1f => "",
                _ => continue,
            };
            // Splitting before and after an ASCII byte keeps both sides valid UTF-8.
            self.0.write_str(&s[plain..i])?;
            if escape.is_empty() {
                let code = [
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(byte >> 4)],
                    HEX[usize::from(byte & 0xf)],
                ];
                self.0
                    .write_str(std::str::from_utf8(&code).map_err(|_| fmt::Error)?)?;
            } else {
                self.0.write_str(escape)?;
            }
            plain = i + 1;
        }
        self.0.write_str(&s[plain..])
    }
}

/// The `span` member of a request's line, as the request's span writes it: its fields in the
/// order they were recorded (the route at routing, the user once authenticated), then its name.
fn write_request(
    w: &mut impl fmt::Write,
    id: &str,
    method: &str,
    route: Option<&str>,
    user_id: Option<i64>,
) -> fmt::Result {
    w.write_str(",\"span\":{\"request_id\":")?;
    write_escaped(w, id)?;
    w.write_str(",\"method\":")?;
    write_escaped(w, method)?;
    if let Some(route) = route {
        w.write_str(",\"route\":")?;
        write_escaped(w, route)?;
    }
    if let Some(user_id) = user_id {
        write!(w, ",\"user_id\":{user_id}")?;
    }
    w.write_str(",\"name\":\"request\"}")
}

/// The event formatter: one JSON object per line (see the module's documentation).
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLine;

impl<S> FormatEvent<S, SpanFields> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, SpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // An event forwarded from the `log` crate carries its real level and target as fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        writer.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut writer, chrono::Utc::now())?;
        write!(writer, "\",\"level\":\"{}\"", meta.level().as_str())?;
        let mut members = Members::new(writer.by_ref(), false);
        event.record(&mut members);
        members.result?;
        writer.write_str(",\"target\":")?;
        write_escaped(&mut writer, meta.target())?;
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            writer.write_str(",\"span\":{")?;
            let extensions = span.extensions();
            if let Some(fields) = extensions.get::<FormattedFields<SpanFields>>()
                && !fields.fields.is_empty()
            {
                writer.write_str(&fields.fields)?;
                writer.write_char(',')?;
            }
            writer.write_str("\"name\":")?;
            write_escaped(&mut writer, span.name())?;
            writer.write_char('}')?;
        } else {
            // Outside any span, on a task serving a request: the request, as its span would
            // have been written (see `logs::request_spans`).
            crate::http::request_context::with_log_fields(|id, method, route, user_id| {
                write_request(&mut writer, id, method, route, user_id)
            })
            .unwrap_or(Ok(()))?;
        }
        writer.write_str("}\n")
    }
}

#[cfg(test)]
#[path = "log_line_tests.rs"]
mod tests;
