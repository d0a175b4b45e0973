//! Timestamps (RFC 3339, UTC) through humantime.

use std::time::SystemTime;

/// `2026-11-28T12:00:00.000Z`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// `2026-11-28T12:00:00Z`.
pub fn rfc3339_secs(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// The current time as `2026-11-28T12:00:00Z`.
pub fn now_rfc3339() -> String {
    rfc3339_secs(SystemTime::now())
}

/// Civil UTC fields of `t`: (year, month, day, hour, minute, second).
pub fn civil(t: SystemTime) -> (i64, u32, u32, u32, u32, u32) {
    let s = rfc3339_secs(t);
    let num = |r: std::ops::Range<usize>| s.get(r).and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
    (
        i64::from(num(0..4)),
        num(5..7),
        num(8..10),
        num(11..13),
        num(14..16),
        num(17..19),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn formats() {
        let t = UNIX_EPOCH + Duration::from_millis(1_795_867_200_123);
        assert_eq!(rfc3339_millis(t), "2026-11-28T12:00:00.123Z");
        assert_eq!(rfc3339_secs(t), "2026-11-28T12:00:00Z");
        assert_eq!(civil(t), (2026, 11, 28, 12, 0, 0));
        assert_eq!(rfc3339_secs(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
