//! What each slash command does to the App. Errors become one notice line, never a crash.

use super::app::{App, Effect};
use super::slash::{parse, Slash, COMMANDS};
use crate::chat::session::{Session, VERSION};
use crate::chat::transcript::Speaker;
use crate::engine::Stats;

fn stats_text(s: &Stats) -> String {
    let mut out = format!(
        "prompt tokens {} ({} reused)\ngenerated tokens {}\nTTFT {:.0} ms\nprefill {:.1} tok/s ({:.0} ms)\ndecode {:.1} tok/s ({:.0} ms)\ntotal {:.0} ms\nfinish: {}\nKV used {} (peak {}){}\nseed {}",
        s.prompt_tokens,
        s.cached_tokens,
        s.generated_tokens,
        s.ttft_ms,
        s.prefill_tok_s,
        s.prefill_ms,
        s.decode_tok_s,
        s.decode_ms,
        s.total_ms,
        s.finish_reason.as_str(),
        s.kv_used,
        s.kv_peak,
        s.max_kv_size.map_or(String::new(), |m| format!(", window {m}")),
        s.seed
    );
    if let Some(stop) = &s.stop_string {
        out.push_str(&format!("\nstopped by {stop:?}"));
    }
    out
}

impl App {
    pub(super) fn slash(&mut self, line: &str) {
        match parse(line) {
            Ok(cmd) => {
                if let Err(e) = self.run_slash(cmd) {
                    self.chat.notice(format!("error: {e}"));
                }
            }
            Err(e) => self.chat.notice(format!("error: {e}")),
        }
    }

    fn run_slash(&mut self, cmd: Slash) -> Result<(), String> {
        match cmd {
            Slash::Help => {
                let mut text = String::from("commands:\n");
                for (c, about) in COMMANDS {
                    text.push_str(&format!("  {c:<16} {about}\n"));
                }
                text.push_str(&format!(
                    "keys: {} send · {} new line · {} stop · {} fold reasoning · {} raw view · {} help",
                    self.keymap.keys("submit"),
                    self.keymap.keys("newline"),
                    self.keymap.keys("stop"),
                    self.keymap.keys("toggle_reasoning"),
                    self.keymap.keys("toggle_raw"),
                    self.keymap.keys("help"),
                ));
                self.chat.notice(text);
            }
            Slash::Clear => self.chat.clear(),
            Slash::System(text) => {
                let msg = match &text {
                    Some(t) => format!("system prompt set: {t}"),
                    None => "system prompt removed".to_string(),
                };
                self.chat.settings.system = text;
                self.chat.notice(msg);
            }
            Slash::Settings => {
                let d = self.chat.settings.describe();
                self.chat.notice(d);
            }
            Slash::Set { key, value } => {
                let msg = self.chat.settings.set(&key, &value)?;
                self.chat.notice(msg);
            }
            Slash::Model(name) => {
                if self.models.scanning {
                    return Err(
                        "the model folders are still being scanned; try again in a moment".into(),
                    );
                }
                let i = self.models.find(&name)?;
                self.models.selected = i;
                let n = self.models.rows[i].name.clone();
                self.load(i);
                if let Some(e) = self.models.error.clone() {
                    return Err(e);
                }
                self.chat.notice(format!("loading {n}…"));
            }
            Slash::Save(path) => {
                let s = Session {
                    lmwb_session: VERSION,
                    model: self.models.active.clone(),
                    system: self.chat.settings.system.clone(),
                    sampling: self.chat.settings.sampling.clone(),
                    max_tokens: self.chat.settings.max_tokens,
                    max_kv_size: self.chat.settings.max_kv_size,
                    turns: Session::turns_from(&self.chat.transcript),
                };
                s.save(&path).map_err(|e| e.to_string())?;
                self.chat.notice(format!(
                    "saved {} turns to {}",
                    s.turns.len(),
                    path.display()
                ));
            }
            Slash::Load(path) => {
                let s = Session::load(&path).map_err(|e| e.to_string())?;
                let mut settings = self.chat.settings.clone();
                settings.system = s.system.clone();
                settings.sampling = s.sampling.clone();
                settings.max_tokens = s.max_tokens;
                settings.max_kv_size = s.max_kv_size;
                settings
                    .sampling
                    .validate()
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                self.chat.clear();
                self.chat.settings = settings;
                self.chat.transcript = s.transcript();
                let mut msg = format!("loaded {} turns from {}", s.turns.len(), path.display());
                if let Some(m) = &s.model {
                    if self.models.active.as_ref() != Some(m) {
                        msg.push_str(&format!(" (saved with {m}; /model {m} switches to it)"));
                    }
                }
                self.chat.notice(msg);
            }
            Slash::Regenerate => {
                if self.chat.busy() {
                    return Err("a reply is still streaming; press Esc to stop it first".into());
                }
                if !self.chat.rewind_to_last_user() {
                    return Err("nothing to regenerate: send a message first".into());
                }
                self.generate();
            }
            Slash::Copy(n) => {
                let blocks = self.chat.code_blocks();
                let Some(b) = blocks.get(n - 1) else {
                    return Err(match blocks.len() {
                        0 => "there are no code blocks in the replies yet".to_string(),
                        k => format!("there is no code block {n}; the replies hold {k} (/copy 1 … /copy {k})"),
                    });
                };
                let lines = b.code.lines().count();
                let lang = if b.lang.is_empty() {
                    "code"
                } else {
                    b.lang.as_str()
                };
                self.effects.push(Effect::Clipboard(b.code.clone()));
                self.chat.notice(format!(
                    "copied code block {n} ({lang}, {lines} lines) to the clipboard"
                ));
            }
            Slash::Stats => {
                let last = self
                    .chat
                    .transcript
                    .turns
                    .iter()
                    .rev()
                    .find(|t| t.speaker == Speaker::Assistant && t.stats.is_some());
                let text = match last.and_then(|t| t.stats.as_ref()) {
                    Some(s) => stats_text(s),
                    None => return Err("no reply with statistics yet".into()),
                };
                self.chat.notice(text);
            }
        }
        Ok(())
    }
}
