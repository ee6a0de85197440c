//! An import file cut into records (CSV records, JSON Lines lines), none of them held in memory
//! past [`ROW_MAX_BYTES`]: a longer record is reported as too long and the rest of it is passed
//! over as it streams by, so one 500 MiB line costs what a valid row costs.

use std::io::{self, BufRead};

use csv_core::ReadRecordResult;

/// The most bytes one record may take in the file (a CSV record, its quotes and separators
/// included, or a JSON Lines line; the line break that ends it not counted).
///
/// The longest valid product holds 200 + 5000 characters of name and description. Spelled the
/// longest way a real exporter spells them, JSON's `\uD83D\uDE00` escapes (Python's `json.dumps`
/// escapes everything outside ASCII by default), a character takes 12 bytes: 62,400 bytes. The
/// sku (64 characters, 6 bytes each as `\u002D`), price, stock, keys and punctuation add under
/// 600. CSV is cheaper: 4 bytes a character in UTF-8, or 2 for a doubled quote. So no valid row
/// reaches 63 KiB; twice that leaves room for padding white space and long spellings of numbers
/// (`19.9900`), and a row buffer of this size is nothing beside a worker's memory.
pub const ROW_MAX_BYTES: usize = 128 * 1024;

/// What reading the next record found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A record starting on `line`, held whole.
    Record {
        /// Where it starts.
        line: u64,
    },
    /// A record starting on `line`, longer than [`ROW_MAX_BYTES`]: nothing of it is kept.
    TooLong {
        /// Where it starts.
        line: u64,
    },
    /// The end of the file.
    End,
}

/// How much of the file the CSV parser is handed at once while it passes over a long record.
const SCRATCH: usize = 8 * 1024;

/// CSV records read with `csv_core` (the parser the `csv` crate wraps, same RFC 4180 rules),
/// into a buffer that never grows past [`ROW_MAX_BYTES`]. The `csv` crate's own reader grows
/// its record to whatever the file holds, a quote left open included.
pub struct CsvRecords<R> {
    input: R,
    core: csv_core::Reader,
    fields: Vec<u8>,
    ends: Vec<usize>,
    count: usize,
    scratch: Vec<u8>,
    scratch_ends: Vec<usize>,
    quotes: u64,
    ended: bool,
}

impl<R: BufRead> CsvRecords<R> {
    /// Records of `input`, the first (the header) on line 1.
    pub fn new(input: R) -> Self {
        CsvRecords {
            input,
            core: csv_core::Reader::new(),
            fields: vec![0; ROW_MAX_BYTES + 1],
            ends: vec![0; 16],
            count: 0,
            scratch: vec![0; SCRATCH],
            scratch_ends: vec![0; SCRATCH],
            quotes: 0,
            ended: false,
        }
    }

    /// The fields of the record [`CsvRecords::read`] last returned as [`Next::Record`].
    pub fn fields(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends[..self.count]
            .iter()
            .map(|&end| {
                let field = &self.fields[start..end];
                start = end;
                field
            })
            .collect()
    }

    /// Whether the quotes read so far are odd in number: at the end of the file, a quoted field
    /// was left open (the parser takes it as running to the end).
    pub fn quote_open(&self) -> bool {
        self.quotes % 2 == 1
    }

    /// Reads the next record.
    pub fn read(&mut self) -> io::Result<Next> {
        self.count = 0;
        if self.ended {
            return Ok(Next::End);
        }
        // Blank lines are no record; passed over here, they count neither towards the next
        // record's size nor as its line.
        self.skip_line_breaks()?;
        let line = self.core.line();
        let (mut taken, mut nout, mut nend) = (0usize, 0usize, 0usize);
        loop {
            let too_long = taken > ROW_MAX_BYTES;
            let input = self.input.fill_buf()?;
            let (result, nin) = if too_long {
                let (result, nin, _, _) =
                    self.core
                        .read_record(input, &mut self.scratch, &mut self.scratch_ends);
                (result, nin)
            } else {
                // Never more than one byte past the limit, so the buffer never outgrows it; never
                // an empty slice either, which the parser would take for the end of the file.
                let input = &input[..input.len().min(ROW_MAX_BYTES + 1 - taken)];
                let (result, nin, out, end) =
                    self.core
                        .read_record(input, &mut self.fields[nout..], &mut self.ends[nend..]);
                nout += out;
                nend += end;
                (result, nin)
            };
            self.quotes += input[..nin].iter().filter(|b| **b == b'"').count() as u64;
            self.input.consume(nin);
            taken += nin;
            match result {
                ReadRecordResult::InputEmpty | ReadRecordResult::OutputFull => {}
                ReadRecordResult::OutputEndsFull => {
                    if !too_long {
                        // At most one end per byte read: bounded by the limit too.
                        self.ends.resize(self.ends.len() * 2, 0);
                    }
                }
                ReadRecordResult::Record if too_long => return Ok(Next::TooLong { line }),
                ReadRecordResult::Record => {
                    self.count = nend;
                    return Ok(Next::Record { line });
                }
                ReadRecordResult::End => {
                    self.ended = true;
                    return Ok(if too_long {
                        Next::TooLong { line }
                    } else {
                        Next::End
                    });
                }
            }
        }
    }

    fn skip_line_breaks(&mut self) -> io::Result<()> {
        loop {
            let input = self.input.fill_buf()?;
            let breaks = input.iter().take_while(|b| matches!(b, b'\r' | b'\n')).count();
            if breaks == 0 {
                return Ok(());
            }
            let newlines = input[..breaks].iter().filter(|b| **b == b'\n').count() as u64;
            self.core.set_line(self.core.line() + newlines);
            self.input.consume(breaks);
        }
    }
}

/// JSON Lines lines, each at most [`ROW_MAX_BYTES`] of it held.
pub struct JsonLines<R> {
    input: R,
    line: u64,
}

impl<R: BufRead> JsonLines<R> {
    /// Lines of `input`, the first on line 1.
    pub fn new(input: R) -> Self {
        JsonLines { input, line: 0 }
    }

    /// Reads the next line into `buffer` (replacing what it held, the line break included), or
    /// passes over it when it is longer than the limit, leaving `buffer` empty.
    pub fn read(&mut self, buffer: &mut Vec<u8>) -> io::Result<Next> {
        buffer.clear();
        let mut taken = 0usize;
        loop {
            let input = self.input.fill_buf()?;
            if input.is_empty() {
                return Ok(match taken {
                    0 => Next::End,
                    _ => self.finish(taken, buffer),
                });
            }
            let newline = input.iter().position(|b| *b == b'\n');
            let length = newline.map_or(input.len(), |at| at + 1);
            let content = newline.map_or(length, |at| at);
            if taken + content > ROW_MAX_BYTES {
                buffer.clear();
            } else {
                buffer.extend_from_slice(&input[..length]);
            }
            taken += content;
            self.input.consume(length);
            if newline.is_some() {
                return Ok(self.finish(taken, buffer));
            }
        }
    }

    fn finish(&mut self, taken: usize, buffer: &mut Vec<u8>) -> Next {
        self.line += 1;
        if taken > ROW_MAX_BYTES {
            buffer.clear();
            Next::TooLong { line: self.line }
        } else {
            Next::Record { line: self.line }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv_records(bytes: &[u8]) -> Vec<(Next, Vec<Vec<u8>>)> {
        let mut records = CsvRecords::new(std::io::BufReader::with_capacity(1000, bytes));
        let mut out = Vec::new();
        loop {
            let next = records.read().unwrap();
            out.push((next, records.fields().iter().map(|f| f.to_vec()).collect()));
            if next == Next::End {
                return out;
            }
        }
    }

    #[test]
    fn csv_records_at_the_limit_are_kept_and_one_byte_more_is_too_long() {
        let at = "x".repeat(ROW_MAX_BYTES - 2);
        let over = "y".repeat(ROW_MAX_BYTES - 1);
        let text = format!("a,b\n{at},c\n{over},d\r\ne,f");
        let records = csv_records(text.as_bytes());
        assert_eq!(records[1].0, Next::Record { line: 2 });
        assert_eq!(records[1].1, vec![at.into_bytes(), b"c".to_vec()]);
        assert_eq!(records[2], (Next::TooLong { line: 3 }, vec![]));
        assert_eq!(records[3].0, Next::Record { line: 4 });
        assert_eq!(records[4].0, Next::End);
    }

    #[test]
    fn blank_lines_count_as_lines_and_not_towards_a_record() {
        let text = format!("a\n{}b\n\r\n\nc", "\n".repeat(ROW_MAX_BYTES * 2));
        let records = csv_records(text.as_bytes());
        let lines: Vec<Next> = records.iter().map(|r| r.0).collect();
        let blank = ROW_MAX_BYTES as u64 * 2;
        assert_eq!(
            lines,
            vec![
                Next::Record { line: 1 },
                Next::Record { line: 2 + blank },
                Next::Record { line: 5 + blank },
                Next::End
            ]
        );
    }

    #[test]
    fn a_json_line_at_the_limit_is_kept_and_one_byte_more_is_passed_over() {
        let at = "x".repeat(ROW_MAX_BYTES);
        let text = format!("{at}\r\n{at}z\n\nlast");
        let mut lines = JsonLines::new(std::io::BufReader::with_capacity(1000, text.as_bytes()));
        let mut buffer = Vec::new();
        // JSON Lines ends a line at `\n` alone: the `\r` before it is the line's.
        assert_eq!(lines.read(&mut buffer).unwrap(), Next::TooLong { line: 1 });
        assert!(buffer.is_empty());
        assert_eq!(lines.read(&mut buffer).unwrap(), Next::TooLong { line: 2 });
        assert_eq!(lines.read(&mut buffer).unwrap(), Next::Record { line: 3 });
        assert_eq!(buffer, b"\n");
        assert_eq!(lines.read(&mut buffer).unwrap(), Next::Record { line: 4 });
        assert_eq!(buffer, b"last");
        assert_eq!(lines.read(&mut buffer).unwrap(), Next::End);
        let whole = format!("{at}\n");
        let mut lines = JsonLines::new(whole.as_bytes());
        assert_eq!(lines.read(&mut buffer).unwrap(), Next::Record { line: 1 });
        assert_eq!(buffer.len(), ROW_MAX_BYTES + 1);
    }
}
