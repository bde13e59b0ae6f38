//! The emulator's one clock: seconds since the Unix epoch, as ECR's
//! timestamps (JSON numbers with milliseconds) and download-URL expiries use
//! them.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, millisecond precision (ECR timestamps).
pub fn now_secs() -> f64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (since.as_millis() as f64) / 1000.0
}
