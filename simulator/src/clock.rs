//! The simulator's clock: wall time plus an offset the admin API can move, so tests can make
//! time pass (expire tokens, advance `_lastUpdated`) without waiting.

use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A clock that reads wall time shifted by an adjustable offset (milliseconds).
#[derive(Debug, Default)]
pub struct Clock {
    offset_ms: AtomicI64,
}

impl Clock {
    /// The current simulated time.
    pub fn now(&self) -> OffsetDateTime {
        let offset = time::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed));
        OffsetDateTime::now_utc() + offset
    }

    /// Moves simulated time forward (or back, when negative) by `seconds`.
    pub fn advance(&self, seconds: i64) {
        self.offset_ms
            .fetch_add(seconds.saturating_mul(1000), Ordering::Relaxed);
    }

    /// Sets simulated time to `instant`.
    pub fn set(&self, instant: OffsetDateTime) {
        let delta = instant - OffsetDateTime::now_utc();
        self.offset_ms
            .store(delta.whole_milliseconds() as i64, Ordering::Relaxed);
    }
}

/// A FHIR `instant` (RFC 3339, UTC, millisecond precision).
pub fn fhir_instant(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    t.format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_now() {
        let clock = Clock::default();
        let before = clock.now();
        clock.advance(3600);
        assert!(clock.now() - before >= time::Duration::seconds(3599));
    }

    #[test]
    fn instants_are_rfc3339_utc() {
        let t = time::macros::datetime!(2024-05-06 07:08:09.123456 UTC);
        assert_eq!(fhir_instant(t), "2024-05-06T07:08:09.123Z");
    }
}
