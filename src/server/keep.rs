//! How long a model stays loaded after a request: Ollama's `keep_alive` (a Go duration
//! string such as `"5m"` or `"1h30m"`, or a number of seconds; negative: for good; 0:
//! unload at once), LM Studio's `ttl` (seconds), and `lmwb serve --ttl`.

use serde_json::Value;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    Forever,
    /// `For(Duration::ZERO)`: unload as soon as the request ends.
    For(Duration),
}

impl Keep {
    /// A number of seconds; negative means for good.
    pub fn from_secs(secs: f64) -> Keep {
        if secs < 0.0 {
            Keep::Forever
        } else {
            Keep::For(Duration::from_secs_f64(secs.min(1e10)))
        }
    }

    /// Ollama's `keep_alive`: `null` → `None` (the server's default); a string duration or
    /// a number of seconds otherwise.
    pub fn from_json(v: &Value) -> Result<Option<Keep>, String> {
        match v {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(Some(Keep::from_secs(n.as_f64().unwrap_or(0.0)))),
            Value::String(s) => Keep::parse(s).map(Some),
            _ => Err(
                "must be a duration string (\"5m\", \"1h30m\", \"-1\") or a number of seconds"
                    .into(),
            ),
        }
    }

    /// `"5m"`, `"1h30m"`, `"90s"`, `"1.5h"`, `"300"` (seconds), `"-1"` or `"forever"`.
    pub fn parse(text: &str) -> Result<Keep, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("forever") {
            return Ok(Keep::Forever);
        }
        if let Ok(secs) = t.parse::<f64>() {
            if secs.is_finite() {
                return Ok(Keep::from_secs(secs));
            }
        }
        let (negative, rest) = match t.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, t.strip_prefix('+').unwrap_or(t)),
        };
        let secs = go_duration(rest).ok_or_else(|| {
            format!("`{text}` is not a duration: write e.g. \"30s\", \"5m\", \"1h30m\", \"-1\" (for good) or \"0\" (unload at once)")
        })?;
        Ok(if negative && secs > 0.0 {
            Keep::Forever
        } else {
            Keep::from_secs(secs)
        })
    }
}

/// Seconds in a Go duration without sign: one or more `<decimal><unit>` with units ns, us,
/// µs, ms, s, m, h.
fn go_duration(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ollama_keep_alive_values_read_as_ollama_reads_them() {
        let secs = |s: u64| Some(Keep::For(Duration::from_secs(s)));
        for (v, want) in [
            (json!("5m"), secs(300)),
            (json!("1h30m"), secs(5400)),
            (json!("90s"), secs(90)),
            (json!("1.5h"), secs(5400)),
            (json!("300"), secs(300)),
            (json!(300), secs(300)),
            (json!(0), secs(0)),
            (json!("0"), secs(0)),
            (json!("0s"), secs(0)),
            (json!(-1), Some(Keep::Forever)),
            (json!("-1"), Some(Keep::Forever)),
            (json!("-1m"), Some(Keep::Forever)),
            (json!("forever"), Some(Keep::Forever)),
            (json!(null), None),
        ] {
            assert_eq!(Keep::from_json(&v).unwrap(), want, "{v}");
        }
        assert_eq!(
            Keep::parse("250ms").unwrap(),
            Keep::For(Duration::from_millis(250))
        );
    }

    #[test]
    fn bad_durations_are_refused_with_an_example() {
        for v in [
            json!("5 minutes"),
            json!("m5"),
            json!(""),
            json!("1x"),
            json!(true),
        ] {
            let e = Keep::from_json(&v).unwrap_err();
            assert!(e.contains("5m"), "{v}: {e}");
        }
    }
}
