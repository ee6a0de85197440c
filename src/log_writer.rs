//! Log lines to stdout without a `write(2)` on a request's path: appended to a buffer that a
//! thread of its own writes out, many lines at once. A full buffer makes the next line wait
//! rather than be dropped.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Lines held before a writer waits for the output thread: a burst's worth.
const MAX_BUFFERED: usize = 4 << 20;
/// How long the output thread lets lines gather once one has arrived: at most this late on
/// stdout, and at a few thousand lines a second, dozens per `write(2)`.
const GATHER: Duration = Duration::from_millis(2);

struct Shared {
    state: Mutex<State>,
    /// The output thread waits on this for lines.
    arrived: Condvar,
    /// Writers wait on this while the buffer is full.
    drained: Condvar,
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    output_waiting: bool,
    closed: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Stdout, written by a thread of its own (see the module's documentation).
#[derive(Clone)]
pub struct LogWriter(Arc<Shared>);

/// Writes out what is buffered and stops the output thread when dropped; lines logged after
/// that go to stdout directly.
#[must_use]
pub struct LogWriterGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogWriter {
    /// Starts the output thread. If it cannot be started, lines are written directly.
    pub fn start() -> (LogWriter, LogWriterGuard) {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            arrived: Condvar::new(),
            drained: Condvar::new(),
        });
        let output = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("tienda-log".into())
            .spawn(move || write_out(&output));
        let thread = match thread {
            Ok(thread) => Some(thread),
            Err(_) => {
                shared.lock().closed = true;
                None
            }
        };
        (LogWriter(Arc::clone(&shared)), LogWriterGuard { shared, thread })
    }
}

/// The output thread: waits for lines, lets more gather, writes them all at once.
fn write_out(shared: &Shared) {
    let mut batch = Vec::new();
    loop {
        let mut state = shared.lock();
        while state.lines.is_empty() && !state.closed {
            state.output_waiting = true;
            state = shared.arrived.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.output_waiting = false;
        if state.lines.is_empty() {
            return; // closed, and everything written
        }
        if !state.closed && state.lines.len() < MAX_BUFFERED / 2 {
            drop(state);
            std::thread::sleep(GATHER);
            state = shared.lock();
        }
        std::mem::swap(&mut state.lines, &mut batch);
        drop(state);
        shared.drained.notify_all();
        // Nowhere to report a failed write to: the log is the place errors go.
        let _ = io::stdout().lock().write_all(&batch);
        batch.clear();
        if batch.capacity() > MAX_BUFFERED {
            batch.shrink_to(MAX_BUFFERED / 4);
        }
    }
}

impl Drop for LogWriterGuard {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.arrived.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = io::stdout().lock().flush();
    }
}

/// One line's writer; the fmt layer writes each line with a single `write_all`.
pub struct LineWriter<'a>(&'a Shared);

impl Write for LineWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut state = self.0.lock();
        if state.closed {
            drop(state);
            io::stdout().lock().write_all(bytes)?;
            return Ok(bytes.len());
        }
        while state.lines.len() >= MAX_BUFFERED && !state.closed {
            state = self.0.drained.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
        state.lines.extend_from_slice(bytes);
        // Only a waiting thread needs waking: a notification is a system call.
        if state.output_waiting {
            state.output_waiting = false;
            self.0.arrived.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LineWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter(&self.0)
    }
}
