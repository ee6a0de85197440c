//! A stored file read as a plain `Read`, chunk by chunk from the database, for the parsers that
//! run on a blocking thread: memory holds one chunk whatever the file's size.

use std::io::Read;
use std::sync::{Arc, Mutex};

use tokio::runtime::Handle;

use crate::store::{Store, StoreError};

/// Reads file `file_id` from its first chunk. Runs only on a blocking thread (it waits on the
/// runtime for each chunk). A database error ends the reading; it is kept in `failure`.
pub struct ChunkReader {
    store: Store,
    runtime: Handle,
    file_id: i64,
    next: i64,
    chunk: Vec<u8>,
    at: usize,
    /// The database error that ended the reading, if one did.
    pub failure: Arc<Mutex<Option<StoreError>>>,
}

impl ChunkReader {
    /// A reader of `file_id` (call from the runtime; read from a blocking thread).
    pub fn new(store: Store, file_id: i64) -> Self {
        ChunkReader {
            store,
            runtime: Handle::current(),
            file_id,
            next: 0,
            chunk: Vec::new(),
            at: 0,
            failure: Arc::new(Mutex::new(None)),
        }
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at >= self.chunk.len() {
            let next = self
                .runtime
                .block_on(self.store.read_chunk(self.file_id, self.next));
            match next {
                Ok(Some(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                    self.next += 1;
                }
                Ok(None) => return Ok(0),
                Err(error) => {
                    let message = error.to_string();
                    if let Ok(mut slot) = self.failure.lock() {
                        *slot = Some(error);
                    }
                    return Err(std::io::Error::other(message));
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}
