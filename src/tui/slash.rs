//! Slash commands typed in the chat input, parsed into a typed command, and the chat
//! settings `/set` and `/system` change.

use crate::engine::sampler::SamplingParams;
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq)]
pub enum Slash {
    Help,
    Clear,
    /// Set (or with no text, clear) the system prompt.
    System(Option<String>),
    /// `/set` alone: list the settings.
    Settings,
    Set {
        key: String,
        value: String,
    },
    Model(String),
    Save(PathBuf),
    Load(PathBuf),
    Regenerate,
    /// Copy code block N (1-based, numbered across the transcript).
    Copy(usize),
    Stats,
}

/// Every command with its arguments and what it does (for `/help` and `?`).
pub const COMMANDS: [(&str, &str); 10] = [
    ("/help", "list these commands"),
    (
        "/clear",
        "start a new conversation (the model stays loaded)",
    ),
    ("/system TEXT", "set the system prompt (no TEXT: remove it)"),
    (
        "/set KEY VALUE",
        "set a sampling parameter (/set with no arguments lists them)",
    ),
    ("/model NAME", "load another model by name"),
    ("/save FILE", "save the conversation as JSON"),
    ("/load FILE", "load a conversation saved with /save"),
    ("/regenerate", "answer the last message again"),
    ("/copy N", "copy code block N to the clipboard (OSC 52)"),
    ("/stats", "the last reply's statistics in full"),
];

/// Parse a line starting with `/`. Errors are one line, naming what to type instead.
pub fn parse(line: &str) -> Result<Slash, String> {
    let line = line.trim();
    let (cmd, rest) = match line.split_once(char::is_whitespace) {
        Some((c, r)) => (c, r.trim()),
        None => (line, ""),
    };
    let need = |what: &str, arg: &str| -> Result<String, String> {
        if rest.is_empty() {
            Err(format!("{cmd} needs {what}: {cmd} {arg}"))
        } else {
            Ok(rest.to_string())
        }
    };
    let none = |s: Slash| -> Result<Slash, String> {
        if rest.is_empty() {
            Ok(s)
        } else {
            Err(format!("{cmd} takes no arguments"))
        }
    };
    match cmd {
        "/help" | "/?" => none(Slash::Help),
        "/clear" => none(Slash::Clear),
        "/system" => Ok(Slash::System((!rest.is_empty()).then(|| rest.to_string()))),
        "/set" if rest.is_empty() => Ok(Slash::Settings),
        "/set" => match rest.split_once(char::is_whitespace) {
            Some((k, v)) => Ok(Slash::Set {
                key: k.to_string(),
                value: v.trim().to_string(),
            }),
            None => Err(format!("/set {rest} needs a value: /set {rest} VALUE")),
        },
        "/model" => need("a name", "NAME").map(Slash::Model),
        "/save" => need("a file", "FILE").map(|f| Slash::Save(PathBuf::from(f))),
        "/load" => need("a file", "FILE").map(|f| Slash::Load(PathBuf::from(f))),
        "/regenerate" | "/regen" => none(Slash::Regenerate),
        "/copy" => {
            let n = need("a code block number", "N")?;
            match n.parse::<usize>() {
                Ok(n) if n > 0 => Ok(Slash::Copy(n)),
                _ => Err(format!(
                    "/copy needs a code block number (1, 2, …), not `{n}`"
                )),
            }
        }
        "/stats" => none(Slash::Stats),
        other => Err(format!("unknown command {other}; /help lists the commands")),
    }
}

/// What a chat request is sent with.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatSettings {
    pub system: Option<String>,
    pub sampling: SamplingParams,
    pub max_tokens: Option<usize>,
    pub max_kv_size: Option<usize>,
}

fn num<T: std::str::FromStr>(key: &str, v: &str, what: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("/set {key}: `{v}` is not {what}"))
}

/// 0, "none" or "off" mean no limit.
fn limit(key: &str, v: &str) -> Result<Option<usize>, String> {
    if matches!(v, "none" | "off") {
        return Ok(None);
    }
    let n: usize = num(key, v, "a whole number (0 or none: no limit)")?;
    Ok((n > 0).then_some(n))
}

impl ChatSettings {
    /// Apply `/set KEY VALUE`; returns the confirmation line.
    pub fn set(&mut self, key: &str, value: &str) -> Result<String, String> {
        let key = key.replace('-', "_").to_ascii_lowercase();
        let mut s = self.sampling.clone();
        let f = |v: &str| num::<f32>(&key, v, "a number");
        let u = |v: &str| num::<usize>(&key, v, "a whole number");
        match key.as_str() {
            "temperature" => s.temperature = f(value)?,
            "top_p" => s.top_p = f(value)?,
            "top_k" => s.top_k = u(value)?,
            "min_p" => s.min_p = f(value)?,
            "repeat_penalty" => s.repeat_penalty = f(value)?,
            "repeat_last_n" => s.repeat_last_n = u(value)?,
            "presence_penalty" => s.presence_penalty = f(value)?,
            "frequency_penalty" => s.frequency_penalty = f(value)?,
            "seed" => {
                s.seed = match value {
                    "none" | "random" => None,
                    v => Some(num(&key, v, "a whole number (or none)")?),
                }
            }
            "max_tokens" => {
                self.max_tokens = limit(&key, value)?;
                return Ok(format!("max_tokens = {}", show(self.max_tokens)));
            }
            "max_kv_size" => {
                let v = limit(&key, value)?;
                if v.is_some_and(|n| n < 8) {
                    return Err(
                        "/set max_kv_size: the window must be at least 8 (0 or none: no window)"
                            .into(),
                    );
                }
                self.max_kv_size = v;
                return Ok(format!("max_kv_size = {}", show(self.max_kv_size)));
            }
            _ => {
                return Err(format!(
                    "/set: unknown key `{key}`; keys: {}",
                    crate::engine::sampler::SETTING_KEYS.join(", ")
                ))
            }
        }
        s.validate().map_err(|e| format!("/set {key}: {e}"))?;
        self.sampling = s;
        Ok(format!("{key} = {value}"))
    }

    /// Every setting, one `key = value` per line.
    pub fn describe(&self) -> String {
        let s = &self.sampling;
        let seed = s.seed.map_or("none".to_string(), |x| x.to_string());
        format!(
            "temperature = {}\ntop_p = {}\ntop_k = {}\nmin_p = {}\nrepeat_penalty = {}\nrepeat_last_n = {}\npresence_penalty = {}\nfrequency_penalty = {}\nseed = {seed}\nmax_tokens = {}\nmax_kv_size = {}",
            s.temperature,
            s.top_p,
            s.top_k,
            s.min_p,
            s.repeat_penalty,
            s.repeat_last_n,
            s.presence_penalty,
            s.frequency_penalty,
            show(self.max_tokens),
            show(self.max_kv_size)
        )
    }
}

fn show(v: Option<usize>) -> String {
    v.map_or("none".to_string(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command_and_rejects_bad_ones() {
        assert_eq!(parse("/help"), Ok(Slash::Help));
        assert_eq!(
            parse("/system  Be brief. "),
            Ok(Slash::System(Some("Be brief.".into())))
        );
        assert_eq!(parse("/system"), Ok(Slash::System(None)));
        assert_eq!(
            parse("/set top_p 0.5"),
            Ok(Slash::Set {
                key: "top_p".into(),
                value: "0.5".into()
            })
        );
        assert_eq!(parse("/copy 2"), Ok(Slash::Copy(2)));
        assert_eq!(parse("/save a b.json"), Ok(Slash::Save("a b.json".into())));
        assert!(parse("/copy x").unwrap_err().contains("not `x`"));
        assert!(parse("/copy 0").is_err());
        assert!(parse("/model").unwrap_err().contains("/model NAME"));
        assert!(parse("/set temperature")
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse("/clear now")
            .unwrap_err()
            .contains("takes no arguments"));
        assert!(parse("/frobnicate")
            .unwrap_err()
            .contains("unknown command /frobnicate"));
    }

    #[test]
    fn set_validates_values() {
        let mut c = ChatSettings {
            system: None,
            sampling: SamplingParams::default(),
            max_tokens: Some(512),
            max_kv_size: None,
        };
        assert_eq!(c.set("top-p", "0.5").unwrap(), "top_p = 0.5");
        assert_eq!(c.sampling.top_p, 0.5);
        let e = c.set("top_p", "1.5").unwrap_err();
        assert!(e.contains("top_p"), "{e}");
        assert_eq!(c.sampling.top_p, 0.5, "a rejected value changes nothing");
        assert!(c
            .set("temperature", "hot")
            .unwrap_err()
            .contains("not a number"));
        assert!(c
            .set("warmth", "1")
            .unwrap_err()
            .contains("unknown key `warmth`"));
        c.set("max_tokens", "0").unwrap();
        assert_eq!(c.max_tokens, None);
        assert!(c.set("max_kv_size", "4").is_err());
        c.set("seed", "42").unwrap();
        assert_eq!(c.sampling.seed, Some(42));
        assert!(c.describe().contains("seed = 42"));
    }
}
