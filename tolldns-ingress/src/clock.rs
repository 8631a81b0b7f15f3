//! Time for the query pipeline and the upstream pool: the logic reads the clock it was given,
//! never the system clock directly, so tests drive time instead of sleeping.
//!
//! [`SystemClock`] is the default everywhere; [`ManualClock`] is the test double, which only
//! moves when [`ManualClock::advance`] is called.

use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of the current time: a monotonic instant for durations and deadlines, and the wall
/// clock in milliseconds since the Unix epoch for what is recorded or compared across hosts.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current monotonic instant.
    fn now(&self) -> Instant;
    /// Milliseconds since the Unix epoch (wall clock).
    fn unix_ms(&self) -> u64;
}

/// The operating system's clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }
}

/// A clock that stands still until advanced: both readings move together, by exactly the
/// durations given to [`advance`](Self::advance).
#[derive(Debug)]
pub struct ManualClock {
    start: Instant,
    start_ms: u64,
    elapsed: Mutex<Duration>,
}

impl ManualClock {
    /// A clock reading `start` and `start_ms` (milliseconds since the Unix epoch).
    pub fn new(start: Instant, start_ms: u64) -> Self {
        Self {
            start,
            start_ms,
            elapsed: Mutex::new(Duration::ZERO),
        }
    }

    /// A clock starting at the system's current readings.
    pub fn starting_now() -> Self {
        Self::new(Instant::now(), SystemClock.unix_ms())
    }

    /// Moves both readings forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut elapsed = self.elapsed.lock().unwrap_or_else(PoisonError::into_inner);
        *elapsed = elapsed.saturating_add(by);
    }

    /// Time advanced since construction.
    pub fn elapsed(&self) -> Duration {
        *self.elapsed.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let elapsed = self.elapsed();
        self.start.checked_add(elapsed).unwrap_or(self.start)
    }

    fn unix_ms(&self) -> u64 {
        let ms = u64::try_from(self.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.start_ms.saturating_add(ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let t0 = Instant::now();
        let clock = ManualClock::new(t0, 1_000);
        assert_eq!((clock.now(), clock.unix_ms()), (t0, 1_000));
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now(), t0 + Duration::from_millis(1_500));
        assert_eq!(clock.unix_ms(), 2_500);
        assert_eq!(clock.elapsed(), Duration::from_millis(1_500));
    }

    #[test]
    fn system_clock_reads_the_wall_clock() {
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis();
        let ms = u128::from(SystemClock.unix_ms());
        assert!(ms >= before);
        assert!(SystemClock.now() <= Instant::now());
    }
}
