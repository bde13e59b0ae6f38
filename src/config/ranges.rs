//! Ranges of the duration flags of `ecr-facade serve`, checked once at
//! startup, when the settings are built: humantime accepts `500000000000years`, and a duration that
//! overflows an `Instant` would otherwise panic on every call instead of
//! being refused once. Counts are bounded where clap parses them.
//!
//! A new duration flag gets a row in [`DURATIONS`]; a unit test fails until
//! it has one.

use std::time::Duration;

use super::ServeArgs;

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// One duration flag: how to read it and the range it must lie in.
struct DurationRange {
    flag: &'static str,
    value: fn(&ServeArgs) -> Option<Duration>,
    min: Duration,
    max: Duration,
}

/// Every duration flag of `serve` (`--token-min-ttl` is checked by its
/// parser, with its own reason).
const DURATIONS: &[DurationRange] = &[
    DurationRange {
        flag: "--connect-timeout",
        value: |args| Some(args.connect_timeout),
        min: Duration::from_millis(1),
        max: Duration::from_secs(10 * 60),
    },
    DurationRange {
        flag: "--attempt-timeout",
        value: |args| Some(args.attempt_timeout),
        min: Duration::from_millis(1),
        max: HOUR,
    },
    DurationRange {
        flag: "--operation-timeout",
        value: |args| Some(args.operation_timeout),
        min: Duration::from_millis(1),
        max: HOUR,
    },
    DurationRange {
        flag: "--rpc-timeout",
        value: |args| Some(args.rpc_timeout),
        min: Duration::from_millis(1),
        max: DAY,
    },
    DurationRange {
        flag: "--http2-keepalive-interval",
        value: |args| Some(args.http2_keepalive_interval),
        min: SECOND,
        max: DAY,
    },
    DurationRange {
        flag: "--http2-keepalive-timeout",
        value: |args| Some(args.http2_keepalive_timeout),
        min: SECOND,
        max: HOUR,
    },
    DurationRange {
        flag: "--max-connection-age",
        value: |args| args.max_connection_age,
        min: SECOND,
        max: Duration::from_secs(365 * 24 * 3600),
    },
    DurationRange {
        flag: "--drain-timeout",
        value: |args| Some(args.drain_timeout),
        min: Duration::ZERO,
        max: DAY,
    },
    DurationRange {
        flag: "--max-transfer-timeout",
        value: |args| Some(args.limits.max_transfer_timeout),
        min: Duration::from_millis(1),
        max: DAY,
    },
    DurationRange {
        flag: "--send-timeout",
        value: |args| Some(args.limits.send_timeout),
        min: Duration::from_millis(1),
        max: HOUR,
    },
    DurationRange {
        flag: "--handshake-timeout",
        value: |args| Some(args.limits.handshake_timeout),
        min: Duration::from_millis(1),
        max: HOUR,
    },
    DurationRange {
        flag: "--transfer-idle-timeout",
        value: |args| Some(args.transfer_idle_timeout),
        min: Duration::from_millis(1),
        max: HOUR,
    },
    DurationRange {
        flag: "--download-url-ttl",
        value: |args| Some(args.emulator_args.download_url_ttl),
        min: SECOND,
        max: Duration::from_secs(7 * 24 * 3600),
    },
];

/// Duration flags of `serve` checked elsewhere, with the reason.
#[cfg(test)]
const CHECKED_ELSEWHERE: &[&str] = &[
    // Its parser refuses values outside 1m..11h, with ECR's token lifetime as the reason.
    "--token-min-ttl",
];

/// A flag outside its range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag} must be between {} and {}", humantime::format_duration(*.min), humantime::format_duration(*.max))]
pub struct RangeError {
    flag: &'static str,
    min: Duration,
    max: Duration,
}

impl ServeArgs {
    /// Refuses the first duration flag outside its range; called once, by
    /// [`ServeArgs::settings`].
    pub(super) fn check_ranges(&self) -> Result<(), RangeError> {
        for range in DURATIONS {
            let Some(value) = (range.value)(self) else {
                continue;
            };
            if !(range.min..=range.max).contains(&value) {
                return Err(RangeError {
                    flag: range.flag,
                    min: range.min,
                    max: range.max,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_serve as serve;

    #[test]
    fn the_defaults_are_in_range() {
        assert_eq!(serve(&[]).check_ranges(), Ok(()));
    }

    #[test]
    fn every_duration_flag_is_checked_at_its_bounds() {
        for range in DURATIONS {
            let at = |value: Duration| {
                let text = humantime::format_duration(value).to_string();
                let text = if text == "0s" { "0ms".to_owned() } else { text };
                serve(&[range.flag, &text]).check_ranges()
            };
            assert_eq!(at(range.min), Ok(()), "{} at its minimum", range.flag);
            assert_eq!(at(range.max), Ok(()), "{} at its maximum", range.flag);
            let past = at(range.max + Duration::from_millis(1)).unwrap_err();
            assert_eq!(past.flag, range.flag);
            if let Some(below) = range.min.checked_sub(Duration::from_nanos(1)) {
                assert!(at(below).is_err(), "{} below its minimum", range.flag);
            }
        }
    }

    /// A new duration flag without a row fails here: every flag of `serve`
    /// whose default is a duration (or that `DURATIONS` already names) must
    /// have a row or a reason in `CHECKED_ELSEWHERE`.
    #[test]
    fn every_duration_flag_of_serve_has_a_row() {
        use clap::CommandFactory;
        let cli = crate::config::Cli::command();
        let serve = cli.find_subcommand("serve").unwrap();
        let mut durations = Vec::new();
        for arg in serve.get_arguments() {
            let (Some(long), [default]) = (arg.get_long(), arg.get_default_values()) else {
                continue;
            };
            let default = default.to_str().unwrap();
            if !default.chars().all(|c| c.is_ascii_digit())
                && humantime::parse_duration(default).is_ok()
            {
                durations.push(format!("--{long}"));
            }
        }
        assert!(durations.len() >= 10, "{durations:?}");
        for flag in &durations {
            assert!(
                DURATIONS.iter().any(|r| r.flag == flag)
                    || CHECKED_ELSEWHERE.contains(&flag.as_str()),
                "{flag} is a duration flag without a range in DURATIONS"
            );
        }
    }

    #[test]
    fn an_absurd_timeout_is_refused_with_the_flag_and_range() {
        let error = serve(&["--rpc-timeout", "500000000000years"])
            .check_ranges()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "--rpc-timeout must be between 1ms and 1day"
        );
        let error = serve(&["--http2-keepalive-interval", "0s"])
            .check_ranges()
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "--http2-keepalive-interval must be between 1s and 1day"
        );
    }
}
