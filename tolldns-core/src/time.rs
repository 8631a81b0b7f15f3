//! Receipt windows (wall clock) and settlement epochs (slots).
//!
//! A receipt window is `window_id = floor(unix_ms / (window_len_s * 1000))`; its length travels
//! in every receipt. A settlement epoch is the on-chain program's: `epoch_id` covers slots
//! `[epoch_id * len, (epoch_id + 1) * len)`. A watcher maps a window to the epoch whose time
//! range contains the window's start.

use core::fmt;

/// Length of a receipt window in seconds; never zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WindowLen(u32);

impl WindowLen {
    /// The default window: 60 seconds.
    pub const DEFAULT: Self = Self(60);

    /// A window length of `secs` seconds.
    ///
    /// # Errors
    ///
    /// [`TimeError::ZeroLength`] for zero.
    pub const fn new(secs: u32) -> Result<Self, TimeError> {
        if secs == 0 {
            Err(TimeError::ZeroLength)
        } else {
            Ok(Self(secs))
        }
    }

    /// Seconds.
    pub const fn secs(self) -> u32 {
        self.0
    }

    /// Milliseconds (cannot overflow: `u32::MAX * 1000 < u64::MAX`).
    pub const fn millis(self) -> u64 {
        // u32::MAX * 1000 fits in u64.
        (self.0 as u64).saturating_mul(1000)
    }
}

impl Default for WindowLen {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A receipt window: `floor(unix_ms / window_len_ms)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct WindowId(pub u64);

impl WindowId {
    /// The window containing the instant `unix_ms` (milliseconds since the Unix epoch).
    pub const fn containing(unix_ms: u64, len: WindowLen) -> Self {
        // `len.millis()` is never zero.
        match unix_ms.checked_div(len.millis()) {
            Some(v) => Self(v),
            None => Self(0),
        }
    }

    /// The raw id.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// First millisecond of the window.
    ///
    /// # Errors
    ///
    /// [`TimeError::Overflow`] when the start does not fit in a `u64`.
    pub const fn start_ms(self, len: WindowLen) -> Result<u64, TimeError> {
        match self.0.checked_mul(len.millis()) {
            Some(v) => Ok(v),
            None => Err(TimeError::Overflow),
        }
    }

    /// First millisecond after the window (exclusive end).
    ///
    /// # Errors
    ///
    /// [`TimeError::Overflow`] when the end does not fit in a `u64`.
    pub const fn end_ms(self, len: WindowLen) -> Result<u64, TimeError> {
        match self.start_ms(len) {
            Ok(start) => match start.checked_add(len.millis()) {
                Some(v) => Ok(v),
                None => Err(TimeError::Overflow),
            },
            Err(e) => Err(e),
        }
    }

    /// Whether `unix_ms` lies in the window widened by `skew_ms` on both sides.
    ///
    /// # Errors
    ///
    /// [`TimeError::Overflow`] when the window's bounds do not fit in a `u64`.
    pub const fn contains_with_skew(
        self,
        len: WindowLen,
        unix_ms: u64,
        skew_ms: u64,
    ) -> Result<bool, TimeError> {
        let start = match self.start_ms(len) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        let end = match self.end_ms(len) {
            Ok(v) => v,
            Err(e) => return Err(e),
        };
        Ok(unix_ms >= start.saturating_sub(skew_ms) && unix_ms < end.saturating_add(skew_ms))
    }

    /// The next window.
    ///
    /// # Errors
    ///
    /// [`TimeError::Overflow`] at `u64::MAX`.
    pub const fn next(self) -> Result<Self, TimeError> {
        match self.0.checked_add(1) {
            Some(v) => Ok(Self(v)),
            None => Err(TimeError::Overflow),
        }
    }
}

impl fmt::Display for WindowId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Arithmetic on windows or epochs failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeError {
    /// A window or epoch length of zero.
    ZeroLength,
    /// A bound does not fit in a `u64`.
    Overflow,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ZeroLength => "window or epoch length must not be zero",
            Self::Overflow => "window or epoch bound does not fit in 64 bits",
        })
    }
}

impl core::error::Error for TimeError {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn windows() {
        let len = WindowLen::new(60).unwrap();
        assert_eq!(WindowLen::new(0), Err(TimeError::ZeroLength));
        let w = WindowId::containing(119_999, len);
        assert_eq!(w, WindowId(1));
        assert_eq!(w.start_ms(len), Ok(60_000));
        assert_eq!(w.end_ms(len), Ok(120_000));
        assert_eq!(WindowId::containing(120_000, len), WindowId(2));
        assert_eq!(w.contains_with_skew(len, 59_000, 1_000), Ok(true));
        assert_eq!(w.contains_with_skew(len, 58_999, 1_000), Ok(false));
        assert_eq!(w.contains_with_skew(len, 120_999, 1_000), Ok(true));
        assert_eq!(w.contains_with_skew(len, 121_000, 1_000), Ok(false));
        assert_eq!(WindowId(u64::MAX).start_ms(len), Err(TimeError::Overflow));
        assert_eq!(WindowId(u64::MAX).next(), Err(TimeError::Overflow));
    }

    proptest! {
        #[test]
        fn instant_lies_in_its_window(ms in 0u64..u64::MAX / 2, secs in 1u32..100_000) {
            let len = WindowLen::new(secs).unwrap();
            let w = WindowId::containing(ms, len);
            prop_assert!(w.start_ms(len).unwrap() <= ms);
            prop_assert!(ms < w.end_ms(len).unwrap());
            prop_assert!(w.contains_with_skew(len, ms, 0).unwrap());
        }

    }
}
