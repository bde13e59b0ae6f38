//! Parsers of flag values that clap has no parser for: byte sizes
//! (`--max-request-bytes-in-flight`, the emulator's `--max-blob-bytes`) and
//! the token cache's minimum lifetime. A leaf (it imports nothing of the
//! crate), so every flag struct may use it wherever it lives — the
//! emulator's included — without depending on `config`.

use std::time::Duration;

/// Parses a byte size: an integer with an optional `B`, `KiB`, `MiB` or
/// `GiB` suffix (`33554432`, `32MiB`, `64 KiB`). `KB` or `MB` are refused
/// rather than guessed: they mean powers of ten to some and of two to others.
pub fn parse_byte_size<T: TryFrom<u64>>(text: &str) -> Result<T, String> {
    let text = text.trim();
    let digits = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a byte size (e.g. 33554432 or 32MiB)"))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB, MiB or GiB)")),
    };
    number
        .checked_mul(scale)
        .and_then(|bytes| T::try_from(bytes).ok())
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// Parses `--token-min-ttl`: a duration between 1m and 11h.
pub fn parse_token_min_ttl(value: &str) -> Result<Duration, String> {
    let ttl = humantime::parse_duration(value).map_err(|e| e.to_string())?;
    if (Duration::from_secs(60)..=Duration::from_secs(11 * 3600)).contains(&ttl) {
        Ok(ttl)
    } else {
        Err("must be between 1m and 11h: ECR's tokens last 12 hours, so a longer minimum would never cache one".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_with_binary_suffixes() {
        assert_eq!(parse_byte_size::<usize>("33554432"), Ok(33_554_432));
        assert_eq!(parse_byte_size::<usize>("32MiB"), Ok(32 << 20));
        assert_eq!(parse_byte_size::<u64>("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_byte_size::<u64>("1GiB"), Ok(1 << 30));
        assert_eq!(parse_byte_size::<u64>("12B"), Ok(12));
        assert!(
            parse_byte_size::<usize>("32MB")
                .unwrap_err()
                .contains("unknown size unit")
        );
        assert!(parse_byte_size::<u64>("MiB").is_err());
        assert!(parse_byte_size::<usize>("lots").is_err());
        assert!(parse_byte_size::<u64>("99999999999999999999GiB").is_err());
        // Fits u64 but not the target type.
        assert!(parse_byte_size::<u32>("4GiB").is_err());
    }

    #[test]
    fn the_token_ttl_lies_between_a_minute_and_eleven_hours() {
        assert_eq!(parse_token_min_ttl("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(
            parse_token_min_ttl("11h"),
            Ok(Duration::from_secs(11 * 3600))
        );
        assert!(parse_token_min_ttl("59s").is_err());
        assert!(
            parse_token_min_ttl("11h 1s")
                .unwrap_err()
                .contains("12 hours")
        );
        assert!(parse_token_min_ttl("soon").is_err());
    }
}
