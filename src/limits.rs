//! Concurrency gates: at most a fixed number of an expensive operation (password hashing,
//! relevance search) run at once, and a caller waits a bounded time for its turn. Past that
//! wait it is turned away (503 with `Retry-After`) rather than queued without end, so a burst
//! costs memory and CPU proportional to the gate, not to the burst.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The gate was full for the whole wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("overloaded: no slot freed within {waited:?}")]
pub struct Overloaded {
    /// How long the caller waited.
    pub waited: Duration,
}

/// A bounded number of slots and how long a caller may wait for one; cheap to clone.
#[derive(Debug, Clone)]
pub struct Gate {
    slots: Arc<Semaphore>,
    wait: Duration,
}

impl Gate {
    /// `slots` at once (at least one); callers wait at most `wait` for a free one.
    pub fn new(slots: usize, wait: Duration) -> Self {
        Gate {
            slots: Arc::new(Semaphore::new(slots.clamp(1, Semaphore::MAX_PERMITS))),
            wait,
        }
    }

    /// A slot, held until the permit is dropped. Waiters are served first come, first served.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, Overloaded> {
        match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            // The semaphore is never closed; treat it as full rather than panic.
            Ok(Err(_)) | Err(_) => Err(Overloaded { waited: self.wait }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_gate_turns_callers_away_after_the_wait_and_frees_on_drop() {
        let gate = Gate::new(1, Duration::from_millis(50));
        let held = gate.enter().await.unwrap();
        let started = std::time::Instant::now();
        assert!(gate.enter().await.is_err());
        assert!(started.elapsed() >= Duration::from_millis(50));
        drop(held);
        assert!(gate.enter().await.is_ok());
    }
}
