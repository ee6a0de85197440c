//! Windowed attempt counters in a fixed amount of memory, for the login and registration
//! throttles.
//!
//! Each key (an email or a client address) is counted in two slots of a fixed table, picked by
//! a hash keyed with a random secret of this process (the key itself is not kept); its count is the smaller of the two (a
//! count-min sketch). Nothing is ever evicted and the table never grows, so memory is bounded by
//! its size whatever clients send. Two keys sharing a slot add up there: a collision can only
//! over-count, never forget an attempt, so it cannot be used to get more attempts than the limit.
//! An innocent key is refused early only when both its slots are full of other keys' attempts;
//! the keyed hash means nobody can aim collisions at a chosen key, and filling a fraction `f` of
//! the table takes `f x slots x limit / 2` counted attempts (each costing the attacker a password
//! hash on our side or a per-client budget), for a chance of `f²` of a wrong refusal.
//!
//! Each slot has its own fixed window, started by the first attempt counted in it. Attempts of
//! a key that shares a slot are in that slot's count, so within any window of a slot no key gets
//! more than the limit: the guarantee of a fixed-window counter.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::time::{Duration, Instant};

/// Slots per table: 2^17 x 12 bytes = 1.5 MiB at most. The columns are zeroed integers, which
/// the allocator gets from the kernel as untouched pages: memory is used only where slots are.
const SLOTS: usize = 1 << 17;

/// Where a counted attempt went, so that releasing it undoes exactly that increment (and
/// nothing, if the slot's window has restarted since).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    slots: [(usize, u64); 2],
}

/// One table of windowed counters. The caller serialises access (one lock over its tables).
pub struct Table {
    window: Duration,
    hasher: RandomState,
    started: Instant,
    /// Attempts counted in each slot's current window.
    counts: Vec<u32>,
    /// When each slot's window ends, in milliseconds since the table was made.
    ends_ms: Vec<u64>,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Table")
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// One attempt to count: a key of a table, and the count it may reach.
pub struct Attempt<'a> {
    /// The table counting this kind of attempt (per email, per client...).
    pub table: &'a mut Table,
    /// What is counted: an email or a client address, as bytes.
    pub key: &'a [u8],
    /// Attempts allowed in the window.
    pub limit: u64,
}

impl Table {
    /// Counters that forget attempts older than `window`.
    pub fn new(window: Duration) -> Self {
        Table {
            window,
            // SipHash with keys drawn at random for this process.
            hasher: RandomState::new(),
            started: Instant::now(),
            counts: vec![0; SLOTS],
            ends_ms: vec![0; SLOTS],
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn indices(&self, key: &[u8]) -> [usize; 2] {
        let hash = self.hasher.hash_one(key);
        let first = (hash as usize) % SLOTS;
        let mut second = ((hash >> 32) as usize) % SLOTS;
        if second == first {
            second = (second + 1) % SLOTS;
        }
        [first, second]
    }

    /// The key's count (the smaller of its slots') and how long until a slot of it restarts.
    fn read(&mut self, indices: [usize; 2], now: u64) -> (u64, u64) {
        let mut count = u64::MAX;
        let mut frees_in = u64::MAX;
        for index in indices {
            if self.ends_ms[index] <= now && self.counts[index] != 0 {
                self.counts[index] = 0;
            }
            count = count.min(u64::from(self.counts[index]));
            frees_in = frees_in.min(self.ends_ms[index].saturating_sub(now));
        }
        (count, frees_in)
    }

    fn add(&mut self, indices: [usize; 2], now: u64) -> Counted {
        let window = (self.window.as_millis() as u64).max(1);
        let mut counted = Counted { slots: [(0, 0); 2] };
        for (n, index) in indices.into_iter().enumerate() {
            if self.counts[index] == 0 {
                self.ends_ms[index] = now + window;
            }
            self.counts[index] = self.counts[index].saturating_add(1);
            counted.slots[n] = (index, self.ends_ms[index]);
        }
        counted
    }

    /// Undoes a counted attempt (a login that succeeded), unless its slot's window has ended
    /// meanwhile (then the attempt is already forgotten).
    pub fn release(&mut self, counted: Counted) {
        for (index, ends_ms) in counted.slots {
            if self.ends_ms.get(index) == Some(&ends_ms) {
                self.counts[index] = self.counts[index].saturating_sub(1);
            }
        }
    }
}

/// Counts one attempt against every key, or none: if any key is at its limit, nothing is
/// counted (a refusal neither costs a place nor extends a window) and the answer is how long
/// until every key is below its limit again.
pub fn reserve(attempts: &mut [Attempt<'_>]) -> Result<Vec<Counted>, Duration> {
    let mut wait = None::<u64>;
    let mut plans = Vec::with_capacity(attempts.len());
    for attempt in attempts.iter_mut() {
        let now = attempt.table.now_ms();
        let indices = attempt.table.indices(attempt.key);
        let (count, frees_in) = attempt.table.read(indices, now);
        if count >= attempt.limit {
            wait = Some(wait.unwrap_or(0).max(frees_in.max(1)));
        }
        plans.push((indices, now));
    }
    if let Some(wait) = wait {
        return Err(Duration::from_millis(wait));
    }
    Ok(attempts
        .iter_mut()
        .zip(plans)
        .map(|(attempt, (indices, now))| attempt.table.add(indices, now))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(table: &mut Table, key: &[u8], limit: u64) -> Result<Counted, Duration> {
        reserve(&mut [Attempt { table, key, limit }]).map(|c| c[0])
    }

    #[test]
    fn the_limit_holds_per_key_and_refusals_count_nothing() {
        let mut table = Table::new(Duration::from_secs(60));
        let mut other = Table::new(Duration::from_secs(60));
        for _ in 0..3 {
            assert!(one(&mut table, b"a", 3).is_ok());
        }
        for _ in 0..10 {
            let wait = one(&mut table, b"a", 3).unwrap_err();
            assert!(
                wait > Duration::from_secs(58) && wait <= Duration::from_secs(60),
                "{wait:?}"
            );
        }
        assert!(one(&mut table, b"b", 3).is_ok());
        // Both keys or neither: "a" is full, so "c" in the other table is not counted either.
        let both = reserve(&mut [
            Attempt {
                table: &mut other,
                key: b"c",
                limit: 1,
            },
            Attempt {
                table: &mut table,
                key: b"a",
                limit: 3,
            },
        ]);
        assert!(both.is_err());
        assert!(one(&mut other, b"c", 1).is_ok());
        assert!(one(&mut other, b"c", 1).is_err());
    }

    #[test]
    fn a_released_attempt_frees_its_place_and_windows_end() {
        let mut table = Table::new(Duration::from_millis(200));
        one(&mut table, b"k", 2).unwrap();
        let second = one(&mut table, b"k", 2).unwrap();
        assert!(one(&mut table, b"k", 2).is_err());
        table.release(second);
        let third = one(&mut table, b"k", 2).unwrap();
        assert!(one(&mut table, b"k", 2).is_err());
        std::thread::sleep(Duration::from_millis(250));
        // The window ended: a release from the old window must not lower the new count.
        one(&mut table, b"k", 2).unwrap();
        table.release(third);
        one(&mut table, b"k", 2).unwrap();
        assert!(one(&mut table, b"k", 2).is_err());
    }

    #[test]
    fn a_million_keys_fit_in_the_same_memory_and_are_never_forgotten() {
        let mut table = Table::new(Duration::from_secs(60));
        for _ in 0..5 {
            one(&mut table, b"victim", 5).unwrap();
        }
        for n in 0u32..1_000_000 {
            let _ = one(&mut table, &n.to_le_bytes(), 5);
        }
        assert!(
            one(&mut table, b"victim", 5).is_err(),
            "flooding never frees the victim's count"
        );
        assert_eq!((table.counts.len(), table.ends_ms.len()), (SLOTS, SLOTS));
    }
}
