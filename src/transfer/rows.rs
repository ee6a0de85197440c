//! Import files read row by row: the CSV header (or JSON Lines keys) checked, each row turned
//! into a product draft by the API's own parser (`http::dto::product::draft_fields`), so a row
//! obeys exactly the rules a POST body does. A CSV row is handed over as the JSON object it
//! stands for: text cells as strings, the stock as the number it spells, empty cells as null.

use std::io::{BufReader, Read};

use super::records::{CsvRecords, JsonLines, Next, ROW_MAX_BYTES};
use crate::domain::import::{COLUMNS, FileFormat, ImportMode, ImportRow, REQUIRED_COLUMNS, RowError};
use crate::http::dto::product::draft_fields;
use crate::http::error::ApiError;
use crate::http::json_body::JsonObject;

/// Why a file is refused before any row is read (422, before any job exists).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// No header row (nothing but white space).
    #[error("the file is empty: a CSV import starts with a header row")]
    Empty,
    /// The header is not UTF-8 or not CSV.
    #[error("the header row is malformed: {0}")]
    Malformed(String),
    /// A column the import does not know.
    #[error("unknown column `{0}`")]
    Unknown(String),
    /// A column named twice.
    #[error("column `{0}` appears twice")]
    Duplicate(String),
    /// A column every row needs is missing.
    #[error("column `{0}` is required")]
    Missing(&'static str),
}

impl HeaderError {
    /// The field and code a problem names.
    pub fn field_and_code(&self) -> (String, &'static str) {
        match self {
            HeaderError::Empty => ("header".into(), "empty_file"),
            HeaderError::Malformed(_) => ("header".into(), "malformed_header"),
            HeaderError::Unknown(name) => (name.clone(), "unknown_column"),
            HeaderError::Duplicate(name) => (name.clone(), "duplicate_column"),
            HeaderError::Missing(name) => ((*name).into(), "missing_column"),
        }
    }
}

/// The columns of a CSV header, checked: each known, none twice, the required ones (and `sku` for
/// an upsert) present.
pub fn parse_header(fields: &[&[u8]], mode: ImportMode) -> Result<Vec<&'static str>, HeaderError> {
    let mut columns = Vec::with_capacity(fields.len());
    for (i, raw) in fields.iter().enumerate() {
        let raw = if i == 0 { strip_bom(raw) } else { raw };
        let name = std::str::from_utf8(raw)
            .map_err(|_| HeaderError::Malformed("the header row is not UTF-8".into()))?
            .trim();
        let known = COLUMNS
            .iter()
            .find(|c| **c == name)
            .ok_or_else(|| HeaderError::Unknown(name.chars().take(64).collect()))?;
        if columns.contains(known) {
            return Err(HeaderError::Duplicate(name.to_owned()));
        }
        columns.push(*known);
    }
    if columns.is_empty() || (columns.len() == 1 && fields.first().is_some_and(|f| f.is_empty())) {
        return Err(HeaderError::Empty);
    }
    let required = REQUIRED_COLUMNS.iter().chain(if mode == ImportMode::Upsert {
        &["sku"][..]
    } else {
        &[][..]
    });
    for column in required {
        if !columns.contains(column) {
            return Err(HeaderError::Missing(column));
        }
    }
    Ok(columns)
}

fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// Checks the start of an upload: for CSV, its header row must be complete in `head` (or `head`
/// is the whole file). JSON Lines has no header: its keys are checked row by row.
pub fn check_head(format: FileFormat, mode: ImportMode, head: &[u8]) -> Result<(), HeaderError> {
    if format == FileFormat::Jsonl {
        return if strip_bom(head).iter().all(u8::is_ascii_whitespace) {
            Err(HeaderError::Empty)
        } else {
            Ok(())
        };
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(head);
    let mut record = csv::ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => {
            let fields: Vec<&[u8]> = record.iter().collect();
            parse_header(&fields, mode).map(|_| ())
        }
        Ok(false) => Err(HeaderError::Empty),
        Err(error) => Err(HeaderError::Malformed(error.to_string())),
    }
}

/// A row as read: a valid product, or what is wrong with it.
#[derive(Debug)]
pub enum Parsed {
    /// A valid row.
    Valid(ImportRow),
    /// An invalid row's problems.
    Invalid(Vec<RowError>),
}

fn row_error(line: u64, field: &str, code: &str, message: &str) -> RowError {
    RowError {
        line,
        field: field.to_owned(),
        code: code.to_owned(),
        message: message.to_owned(),
    }
}

/// Parses one row's JSON object with the API's parser.
fn parse_object(line: u64, text: &[u8], mode: ImportMode) -> Parsed {
    let object = match JsonObject::read(text) {
        Ok(object) => object,
        Err(ApiError::Validation(errors)) => {
            return Parsed::Invalid(
                errors
                    .listed()
                    .iter()
                    .map(|e| row_error(line, "row", e.code, "must be a JSON object"))
                    .collect(),
            );
        }
        Err(_) => {
            return Parsed::Invalid(vec![row_error(
                line,
                "row",
                "malformed_json",
                "is not valid JSON",
            )]);
        }
    };
    match draft_fields(object) {
        Ok(draft) if mode == ImportMode::Upsert && draft.sku.is_none() => Parsed::Invalid(vec![row_error(
            line,
            "sku",
            "required",
            "is required: an upsert matches rows by sku",
        )]),
        Ok(draft) => Parsed::Valid(ImportRow { line, draft }),
        Err(errors) => Parsed::Invalid(
            errors
                .listed()
                .iter()
                .map(|e| row_error(line, &e.field, e.code, &e.message))
                .collect(),
        ),
    }
}

/// The JSON object a CSV record stands for.
fn csv_object(columns: &[&'static str], fields: &[&str]) -> String {
    let mut object = serde_json::Map::new();
    for (column, value) in columns.iter().zip(fields) {
        let value = if value.is_empty() {
            serde_json::Value::Null
        } else if *column == "stock" {
            match serde_json::from_str::<serde_json::Number>(value) {
                Ok(number) => serde_json::Value::Number(number),
                Err(_) => serde_json::Value::String((*value).to_owned()),
            }
        } else {
            serde_json::Value::String((*value).to_owned())
        };
        object.insert((*column).to_owned(), value);
    }
    serde_json::Value::Object(object).to_string()
}

/// Reads every data row of `reader`, in order, calling `emit` with each batch of at most
/// `batch` rows (with the index of the first); rows before index `skip` are read but not
/// emitted (a resumed run). Stops early when `emit` returns false. The number of data rows.
///
/// A record longer than [`ROW_MAX_BYTES`] is one invalid row (`row_too_long`), passed over
/// without being held, and counts as a row like any other, so a resumed run lands on the same
/// row.
pub fn read_rows<R: Read>(
    reader: R,
    format: FileFormat,
    mode: ImportMode,
    skip: u64,
    batch: usize,
    mut emit: impl FnMut(Vec<Parsed>) -> bool,
) -> Result<u64, HeaderError> {
    let mut pending: Vec<Parsed> = Vec::with_capacity(batch);
    let mut index = 0u64;
    let mut push = |parsed: Parsed, pending: &mut Vec<Parsed>| -> bool {
        index += 1;
        if index <= skip {
            return true;
        }
        pending.push(parsed);
        if pending.len() >= batch {
            return emit(std::mem::take(pending));
        }
        true
    };
    let input = BufReader::with_capacity(64 * 1024, reader);
    match format {
        FileFormat::Csv => {
            let mut records = CsvRecords::new(input);
            let columns = match records.read() {
                Ok(Next::Record { .. }) => parse_header(&records.fields(), mode)?,
                Ok(Next::TooLong { .. }) => {
                    return Err(HeaderError::Malformed(format!(
                        "the header row is longer than {ROW_MAX_BYTES} bytes"
                    )));
                }
                Ok(Next::End) => return Err(HeaderError::Empty),
                Err(error) => return Err(HeaderError::Malformed(error.to_string())),
            };
            // One row held back: only at the end is it known whether a quote was left open.
            let mut held: Option<(u64, Parsed)> = None;
            let mut last_line = 1;
            loop {
                let (line, parsed) = match records.read() {
                    Ok(Next::Record { line }) => (line, csv_row(line, &columns, &records.fields(), mode)),
                    Ok(Next::TooLong { line }) => (line, Parsed::Invalid(vec![too_long(line)])),
                    Ok(Next::End) => break,
                    Err(_) => {
                        if let Some((_, parsed)) = held.take() {
                            push(parsed, &mut pending);
                        }
                        push(
                            Parsed::Invalid(vec![row_error(
                                last_line,
                                "row",
                                "unreadable",
                                "cannot be read",
                            )]),
                            &mut pending,
                        );
                        break;
                    }
                };
                last_line = line;
                if let Some((_, previous)) = held.replace((line, parsed))
                    && !push(previous, &mut pending)
                {
                    return Ok(index);
                }
            }
            if let Some((line, parsed)) = held.take() {
                let parsed = if records.quote_open() {
                    let mut errors = match parsed {
                        Parsed::Invalid(errors) if errors.iter().any(|e| e.code == ROW_TOO_LONG) => errors,
                        _ => Vec::new(),
                    };
                    errors.push(row_error(
                        line,
                        "row",
                        "unterminated_quote",
                        "a quoted field is not closed before the end of the file",
                    ));
                    Parsed::Invalid(errors)
                } else {
                    parsed
                };
                push(parsed, &mut pending);
            }
        }
        FileFormat::Jsonl => {
            let mut lines = JsonLines::new(input);
            let mut buffer = Vec::new();
            loop {
                let line = match lines
                    .read(&mut buffer)
                    .map_err(|e| HeaderError::Malformed(e.to_string()))?
                {
                    Next::Record { line } => line,
                    Next::TooLong { line } => {
                        if !push(Parsed::Invalid(vec![too_long(line)]), &mut pending) {
                            return Ok(index);
                        }
                        continue;
                    }
                    Next::End => break,
                };
                let mut text: &[u8] = &buffer;
                if line == 1 {
                    text = strip_bom(text);
                }
                if text.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let parsed = match std::str::from_utf8(text) {
                    Ok(_) => parse_object(line, text, mode),
                    Err(_) => {
                        Parsed::Invalid(vec![row_error(line, "row", "invalid_encoding", "is not UTF-8")])
                    }
                };
                if !push(parsed, &mut pending) {
                    return Ok(index);
                }
            }
        }
    }
    if !pending.is_empty() {
        emit(pending);
    }
    Ok(index)
}

/// The code of a record longer than [`ROW_MAX_BYTES`].
const ROW_TOO_LONG: &str = "row_too_long";

fn too_long(line: u64) -> RowError {
    row_error(
        line,
        "row",
        ROW_TOO_LONG,
        &format!("is longer than {ROW_MAX_BYTES} bytes, more than any valid product takes"),
    )
}

fn csv_row(line: u64, columns: &[&'static str], record: &[&[u8]], mode: ImportMode) -> Parsed {
    if record.len() != columns.len() {
        return Parsed::Invalid(vec![row_error(
            line,
            "row",
            "field_count",
            &format!("has {} fields; the header has {}", record.len(), columns.len()),
        )]);
    }
    let mut fields = Vec::with_capacity(columns.len());
    for (column, raw) in columns.iter().zip(record.iter()) {
        match std::str::from_utf8(raw) {
            Ok(text) => fields.push(text),
            Err(_) => {
                return Parsed::Invalid(vec![row_error(line, column, "invalid_encoding", "is not UTF-8")]);
            }
        }
    }
    parse_object(line, csv_object(columns, &fields).as_bytes(), mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(text: &str, format: FileFormat) -> Vec<Parsed> {
        let mut rows = Vec::new();
        read_rows(text.as_bytes(), format, ImportMode::Upsert, 0, 2, |batch| {
            rows.extend(batch);
            true
        })
        .unwrap();
        rows
    }

    fn codes(parsed: &Parsed) -> Vec<(u64, String, String)> {
        match parsed {
            Parsed::Valid(_) => vec![],
            Parsed::Invalid(errors) => errors
                .iter()
                .map(|e| (e.line, e.field.clone(), e.code.clone()))
                .collect(),
        }
    }

    #[test]
    fn header_must_name_known_columns_once_and_the_required_ones() {
        let head = |h: &str| check_head(FileFormat::Csv, ImportMode::Upsert, h.as_bytes());
        assert_eq!(head("sku,name,price,stock\n"), Ok(()));
        assert_eq!(head("\u{FEFF}sku,name,price,stock\n"), Ok(()));
        assert_eq!(
            head("sku,name,price,stock,colour\n"),
            Err(HeaderError::Unknown("colour".into()))
        );
        assert_eq!(
            head("sku,name,name,price,stock\n"),
            Err(HeaderError::Duplicate("name".into()))
        );
        assert_eq!(head("name,price,stock\n"), Err(HeaderError::Missing("sku")));
        assert_eq!(head(""), Err(HeaderError::Empty));
    }

    #[test]
    fn rows_carry_their_line_and_each_problem() {
        let rows = read_all(
            "sku,name,description,price,stock\nA,\"Tee, red\",\"two\nlines\",19.99,3\nB,,x,19.999,-1\nC,x,y,1\n",
            FileFormat::Csv,
        );
        assert!(
            matches!(&rows[0], Parsed::Valid(row) if row.line == 2 && row.draft.name.as_str() == "Tee, red")
        );
        let second = codes(&rows[1]);
        assert!(
            second.contains(&(4, "name".into(), "null_not_allowed".into())),
            "{second:?}"
        );
        assert!(second.contains(&(4, "price".into(), "too_many_decimals".into())));
        assert!(second.contains(&(4, "stock".into(), "out_of_range".into())));
        assert_eq!(codes(&rows[2]), vec![(5, "row".into(), "field_count".into())]);
    }

    #[test]
    fn an_open_quote_at_the_end_and_bad_bytes_are_row_errors() {
        let rows = read_all("sku,name,price,stock\nA,\"open,1,2\n", FileFormat::Csv);
        assert_eq!(
            codes(&rows[0]),
            vec![(2, "row".into(), "unterminated_quote".into())]
        );
        let mut bytes = b"sku,name,price,stock\nA,".to_vec();
        bytes.extend_from_slice(b"\xff\xfe,1,2\n");
        let mut rows = Vec::new();
        read_rows(&bytes[..], FileFormat::Csv, ImportMode::Upsert, 0, 10, |b| {
            rows.extend(b);
            true
        })
        .unwrap();
        assert_eq!(
            codes(&rows[0]),
            vec![(2, "name".into(), "invalid_encoding".into())]
        );
    }

    #[test]
    fn json_lines_use_the_api_rules_and_skip_resumes() {
        let text = "{\"sku\":\"A\",\"name\":\"a\",\"price\":1,\"stock\":1}\n\n{\"sku\":\"B\",\"name\":\"b\",\"price\":1,\"stock\":1,\"id\":3}\nnot json\n";
        let rows = read_all(text, FileFormat::Jsonl);
        assert!(matches!(&rows[0], Parsed::Valid(row) if row.line == 1));
        assert_eq!(codes(&rows[1]), vec![(3, "id".into(), "read_only".into())]);
        assert_eq!(codes(&rows[2]), vec![(4, "row".into(), "malformed_json".into())]);
        let mut resumed = Vec::new();
        let total = read_rows(
            text.as_bytes(),
            FileFormat::Jsonl,
            ImportMode::Upsert,
            2,
            10,
            |b| {
                resumed.extend(b);
                true
            },
        )
        .unwrap();
        assert_eq!((total, resumed.len()), (3, 1));
    }

    fn read_bytes(bytes: &[u8], format: FileFormat, skip: u64) -> (u64, Vec<Parsed>) {
        let mut rows = Vec::new();
        let total = read_rows(bytes, format, ImportMode::Upsert, skip, 3, |batch| {
            rows.extend(batch);
            true
        })
        .unwrap();
        (total, rows)
    }

    fn lines(rows: &[Parsed]) -> Vec<(u64, Vec<String>)> {
        rows.iter()
            .map(|parsed| match parsed {
                Parsed::Valid(row) => (row.line, vec![]),
                Parsed::Invalid(errors) => (errors[0].line, errors.iter().map(|e| e.code.clone()).collect()),
            })
            .collect()
    }

    fn valid(line: u64) -> (u64, Vec<String>) {
        (line, vec![])
    }

    fn invalid(line: u64, codes: &[&str]) -> (u64, Vec<String>) {
        (line, codes.iter().map(|c| (*c).to_owned()).collect())
    }

    fn jsonl_row(sku: &str) -> String {
        format!("{{\"sku\":\"{sku}\",\"name\":\"n\",\"price\":1,\"stock\":1}}\n")
    }

    /// A JSON Lines file: a good row, a 1 MiB line (a valid row's start, then a description
    /// that never ends), a good row.
    fn jsonl_with_a_long_line() -> Vec<u8> {
        let mut file = jsonl_row("A");
        file.push_str("{\"sku\":\"L\",\"name\":\"n\",\"price\":1,\"stock\":1,\"description\":\"");
        file.push_str(&"x".repeat(1 << 20));
        file.push_str("\"}\n\n");
        file.push_str(&jsonl_row("B"));
        file.into_bytes()
    }

    #[test]
    fn a_json_line_over_the_limit_is_one_invalid_row_and_the_next_keep_their_lines() {
        let (total, rows) = read_bytes(&jsonl_with_a_long_line(), FileFormat::Jsonl, 0);
        assert_eq!(total, 3);
        assert_eq!(
            lines(&rows),
            vec![valid(1), invalid(2, &["row_too_long"]), valid(4)]
        );
        let Parsed::Invalid(errors) = &rows[1] else {
            panic!("the long line is invalid")
        };
        assert_eq!(errors[0].field, "row");
        assert!(
            errors[0].message.contains("131072 bytes"),
            "{}",
            errors[0].message
        );
    }

    #[test]
    fn a_csv_record_over_the_limit_is_one_invalid_row_and_the_next_keep_their_lines() {
        // The long record's quoted description spans three lines; the next rows are counted
        // after them.
        let long = format!(
            "L,n,\"{}\n\"\"two\"\"\n{}\",1,1",
            "x".repeat(1 << 20),
            "y".repeat(10)
        );
        let file =
            format!("sku,name,description,price,stock\nA,a,,1,1\n{long}\r\n\nB,b,\"q\nq\",1,1\nC,c,,1,1\n");
        let (total, rows) = read_bytes(file.as_bytes(), FileFormat::Csv, 0);
        assert_eq!(total, 4);
        assert_eq!(
            lines(&rows),
            vec![valid(2), invalid(3, &["row_too_long"]), valid(7), valid(9)]
        );
    }

    #[test]
    fn a_quote_left_open_past_the_limit_is_one_invalid_row_then_the_end() {
        let file = format!(
            "sku,name,price,stock\nA,a,1,1\nB,\"open,1,1\n{}C,c,1,1\n",
            "more\n".repeat(100_000)
        );
        let (total, rows) = read_bytes(file.as_bytes(), FileFormat::Csv, 0);
        assert_eq!(total, 2);
        assert_eq!(
            lines(&rows),
            vec![valid(2), invalid(3, &["row_too_long", "unterminated_quote"])]
        );
    }

    #[test]
    fn a_record_after_blank_lines_carries_its_own_line() {
        let (_, rows) = read_bytes(b"sku,name,price,stock\n\n\r\nA,a,1,1\n", FileFormat::Csv, 0);
        assert_eq!(lines(&rows), vec![valid(4)]);
    }

    #[test]
    fn a_resumed_run_lands_on_the_same_row_past_a_long_one() {
        let long = format!("L,n,{},1\n", "9".repeat(1 << 20));
        let csv = format!("sku,name,price,stock\nA,a,1,1\n{long}B,b,1,1\nC,c,1,1\n");
        for (bytes, format) in [
            (csv.into_bytes(), FileFormat::Csv),
            (jsonl_with_a_long_line(), FileFormat::Jsonl),
        ] {
            let (_, whole) = read_bytes(&bytes, format, 0);
            for skip in 0..whole.len() as u64 {
                let (total, resumed) = read_bytes(&bytes, format, skip);
                assert_eq!(total, whole.len() as u64);
                assert_eq!(
                    lines(&resumed),
                    lines(&whole[skip as usize..]),
                    "{format:?} from {skip}"
                );
            }
        }
    }
}
