//! The one duration syntax of every flag, the harness's and the
//! simulator's (`--timeout`, `--discover-timeout`, `sim --fault delay:`):
//! `300ms`, `2s`, `1.5s`, `1m`, `8h`; a bare number is seconds. Here, beside
//! the wire model, because both binaries' command lines use it and the
//! simulator may import nothing else.

use std::fmt;
use std::time::Duration;

/// `300ms`, `2s`, `1.5s`, `1m`, `8h`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 800ms, 5s)"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        u => return Err(format!("{s:?}: unknown unit {u:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is out of range"))
}

/// [`parse_duration`], refused unless above 0 and at most `max` (written
/// `max_text` in the message): a flag's range, so a value in the wrong
/// unit (`--timeout 5000`, meant as milliseconds) is refused, not waited.
pub fn parse_within(s: &str, max: Duration, max_text: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() || d > max {
        return Err(format!(
            "{} is out of range (above 0, at most {max_text}; a bare number is seconds)",
            s.trim()
        ));
    }
    Ok(d)
}

/// A flag's duration, written back in the syntax it is parsed from. A
/// flag's default is then written once, as the constant it comes from,
/// and `--help` still shows it: `default_value_t = FlagDuration(CONST)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagDuration(pub Duration);

impl FlagDuration {
    /// [`parse_duration`], as a clap value parser.
    pub fn parse(s: &str) -> Result<FlagDuration, String> {
        parse_duration(s).map(FlagDuration)
    }
}

impl fmt::Display for FlagDuration {
    /// Whole seconds as `5s`, whole milliseconds as `800ms`, else
    /// fractional seconds: [`parse_duration`] reads each back exactly.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        match d.subsec_nanos() {
            0 => write!(f, "{}s", d.as_secs()),
            n if n % 1_000_000 == 0 => write!(f, "{}ms", d.as_millis()),
            _ => write!(f, "{}s", d.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_duration_is_written_as_it_is_read() {
        for (d, text) in [
            (Duration::from_secs(5), "5s"),
            (Duration::from_millis(300), "300ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_secs(3600), "3600s"),
            (Duration::from_micros(2500), "0.0025s"),
        ] {
            assert_eq!(FlagDuration(d).to_string(), text);
            assert_eq!(FlagDuration::parse(text), Ok(FlagDuration(d)), "{text}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_duration("3h"), Ok(Duration::from_secs(3 * 3600)));
        assert!(parse_duration("3d").is_err());
    }
}
