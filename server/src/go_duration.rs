//! Go's duration syntax (`90s`, `1h30m`, `1.5h`, `500ms`), which etcd's flags such as
//! `--auto-compaction-retention` take, at millisecond resolution.

/// Milliseconds in `text` as Go's `time.ParseDuration` reads it; the error is Go's text.
pub fn parse_ms(text: &str) -> Result<u64, String> {
    let invalid = || format!("time: invalid duration {text:?}");
    let mut rest = text;
    let mut total = 0f64;
    if rest.is_empty() {
        return Err(invalid());
    }
    if rest == "0" {
        return Ok(0);
    }
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().map_err(|_| invalid())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let ms_per_unit = match &rest[..unit_len] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            "" => return Err(format!("time: missing unit in duration {text:?}")),
            unit => return Err(format!("time: unknown unit {unit:?} in duration {text:?}")),
        };
        rest = &rest[unit_len..];
        total += number * ms_per_unit;
    }
    Ok(total.round() as u64)
}

/// `ms` as Go prints a duration (`1h0m0s`, `5m0s`, `1.5s`, `500ms`).
pub fn format_ms(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (hours, minutes, seconds, millis) = (ms / 3_600_000, ms / 60_000 % 60, ms / 1000 % 60, ms % 1000);
    let seconds = match millis {
        0 => format!("{seconds}s"),
        _ => format!("{seconds}.{}s", format!("{millis:03}").trim_end_matches('0')),
    };
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, m) => format!("{m}m{seconds}"),
        (h, m) => format!("{h}h{m}m{seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_prints_what_go_does() {
        for (text, ms, printed) in [
            ("1h", 3_600_000, "1h0m0s"),
            ("1h30m", 5_400_000, "1h30m0s"),
            ("1.5h", 5_400_000, "1h30m0s"),
            ("90s", 90_000, "1m30s"),
            ("2s", 2000, "2s"),
            ("1.25s", 1250, "1.25s"),
            ("500ms", 500, "500ms"),
            ("0", 0, "0s"),
        ] {
            assert_eq!(parse_ms(text), Ok(ms), "{text}");
            assert_eq!(format_ms(ms), printed);
        }
        assert_eq!(parse_ms("abc"), Err(r#"time: invalid duration "abc""#.into()));
        assert_eq!(parse_ms("5"), Err(r#"time: missing unit in duration "5""#.into()));
        assert_eq!(parse_ms("5d"), Err(r#"time: unknown unit "d" in duration "5d""#.into()));
        assert_eq!(parse_ms(""), Err(r#"time: invalid duration """#.into()));
    }
}
