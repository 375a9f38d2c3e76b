//! Key names ("ctrl-q", "alt-enter", "?") ↔ terminal key events, and the keymap that turns
//! a key into an [`Action`] for the tab in front.

use super::action::{bindings, Action, Scope};
use crate::config::KeyList;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use std::collections::BTreeMap;

/// A key with its modifiers, normalised (shift is implied by the character itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chord {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Chord {
    pub fn from_event(ev: &KeyEvent) -> Chord {
        let mut mods =
            ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match ev.code {
            KeyCode::Char(c) => {
                mods.remove(KeyModifiers::SHIFT);
                // ctrl-letters arrive lower-case on most terminals, upper-case on some
                if mods.contains(KeyModifiers::CONTROL) {
                    KeyCode::Char(c.to_ascii_lowercase())
                } else {
                    KeyCode::Char(c)
                }
            }
            KeyCode::BackTab => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::BackTab
            }
            other => other,
        };
        Chord { code, mods }
    }

    /// Parse a key name such as `ctrl-q`, `alt-enter`, `f1`, `?`, `pageup`.
    pub fn parse(name: &str) -> Result<Chord, String> {
        let mut mods = KeyModifiers::NONE;
        let mut rest = name;
        loop {
            let lower = rest.to_ascii_lowercase();
            let (m, len) = if lower.starts_with("ctrl-") {
                (KeyModifiers::CONTROL, 5)
            } else if lower.starts_with("alt-") {
                (KeyModifiers::ALT, 4)
            } else if lower.starts_with("shift-") {
                (KeyModifiers::SHIFT, 6)
            } else {
                break;
            };
            if rest.len() == len {
                break;
            }
            mods |= m;
            rest = &rest[len..];
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) => {
                mods.remove(KeyModifiers::SHIFT);
                KeyCode::Char(if mods.contains(KeyModifiers::CONTROL) {
                    c.to_ascii_lowercase()
                } else {
                    c
                })
            }
            _ => match rest.to_ascii_lowercase().as_str() {
                "enter" | "return" => KeyCode::Enter,
                "esc" | "escape" => KeyCode::Esc,
                "tab" => KeyCode::Tab,
                "backtab" => KeyCode::BackTab,
                "backspace" => KeyCode::Backspace,
                "delete" | "del" => KeyCode::Delete,
                "insert" | "ins" => KeyCode::Insert,
                "home" => KeyCode::Home,
                "end" => KeyCode::End,
                "pageup" | "pgup" => KeyCode::PageUp,
                "pagedown" | "pgdn" => KeyCode::PageDown,
                "up" => KeyCode::Up,
                "down" => KeyCode::Down,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "space" => KeyCode::Char(' '),
                f if f.starts_with('f') && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) => {
                    KeyCode::F(f[1..].parse().unwrap_or(1))
                }
                _ => {
                    return Err(format!(
                        "`{name}` is not a key; write e.g. ctrl-q, alt-enter, f1, pageup, esc or a single character"
                    ))
                }
            },
        };
        if code == KeyCode::BackTab {
            mods.remove(KeyModifiers::SHIFT);
        }
        Ok(Chord { code, mods })
    }

    /// The name a user would write in config.toml.
    pub fn name(&self) -> String {
        let mut s = String::new();
        if self.mods.contains(KeyModifiers::CONTROL) {
            s.push_str("ctrl-");
        }
        if self.mods.contains(KeyModifiers::ALT) {
            s.push_str("alt-");
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            s.push_str("shift-");
        }
        match self.code {
            KeyCode::Char(' ') => s.push_str("space"),
            KeyCode::Char(c) => s.push(c),
            KeyCode::F(n) => s.push_str(&format!("f{n}")),
            KeyCode::PageUp => s.push_str("pageup"),
            KeyCode::PageDown => s.push_str("pagedown"),
            KeyCode::BackTab => s.push_str("shift-tab"),
            other => s.push_str(&format!("{other:?}").to_ascii_lowercase()),
        }
        s
    }
}

struct Bound {
    chord: Chord,
    scope: Scope,
    action: Action,
}

/// Keys → actions, from `[keymap]`.
pub struct Keymap {
    bound: Vec<Bound>,
    /// Action name → key names, in binding order (for help and the footer).
    names: BTreeMap<&'static str, Vec<String>>,
}

impl Keymap {
    /// Build from the config table; every action must be bound, every key must parse, and no
    /// key may mean two things in one tab.
    pub fn from_config(table: &BTreeMap<String, KeyList>) -> Result<Keymap, String> {
        let mut bound: Vec<Bound> = Vec::new();
        let mut names = BTreeMap::new();
        for b in bindings() {
            let keys = table
                .get(b.name)
                .ok_or_else(|| format!("keymap: `{}` has no key; bind one in [keymap]", b.name))?;
            let mut shown = Vec::new();
            for k in keys.keys() {
                let chord = Chord::parse(k).map_err(|e| format!("keymap.{}: {e}", b.name))?;
                if let Some(other) = bound.iter().find(|o| {
                    o.chord == chord
                        && (o.scope == b.scope
                            || o.scope == Scope::Global
                            || b.scope == Scope::Global)
                }) {
                    let other_name = bindings()
                        .into_iter()
                        .find(|x| x.action == other.action && x.scope == other.scope)
                        .map_or("?", |x| x.name);
                    return Err(format!(
                        "keymap: `{k}` is bound to both `{other_name}` and `{}`; give one of them another key",
                        b.name
                    ));
                }
                bound.push(Bound {
                    chord,
                    scope: b.scope,
                    action: b.action.clone(),
                });
                shown.push(chord.name());
            }
            names.insert(b.name, shown);
        }
        Ok(Keymap { bound, names })
    }

    /// The action `key` means in `scope` (a tab's own bindings, then the global ones).
    pub fn lookup(&self, scope: Scope, key: &KeyEvent) -> Option<Action> {
        let chord = Chord::from_event(key);
        self.bound
            .iter()
            .find(|b| b.chord == chord && b.scope == scope)
            .or_else(|| {
                self.bound
                    .iter()
                    .find(|b| b.chord == chord && b.scope == Scope::Global)
            })
            .map(|b| b.action.clone())
    }

    /// The keys bound to an action, joined for display ("ctrl-q/ctrl-c").
    pub fn keys(&self, name: &str) -> String {
        self.names
            .get(name)
            .map(|v| v.join("/"))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn key(code: KeyCode, mods: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, mods)
    }

    #[test]
    fn defaults_bind_every_action_without_conflicts() {
        let km = Keymap::from_config(&Config::defaults().keymap).unwrap();
        assert_eq!(
            km.lookup(Scope::Chat, &key(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Some(Action::Quit)
        );
        assert_eq!(
            km.lookup(Scope::Models, &key(KeyCode::Enter, KeyModifiers::NONE)),
            Some(Action::Load)
        );
        assert_eq!(
            km.lookup(Scope::Chat, &key(KeyCode::Enter, KeyModifiers::ALT)),
            Some(Action::Newline)
        );
        assert_eq!(
            km.lookup(Scope::Chat, &key(KeyCode::Char('?'), KeyModifiers::SHIFT)),
            Some(Action::Help)
        );
        assert_eq!(
            km.lookup(Scope::Chat, &key(KeyCode::BackTab, KeyModifiers::SHIFT)),
            Some(Action::PrevTab)
        );
        assert_eq!(
            km.lookup(Scope::Chat, &key(KeyCode::Char('u'), KeyModifiers::NONE)),
            None
        );
        assert_eq!(km.keys("quit"), "ctrl-q/ctrl-c");
    }

    #[test]
    fn key_names_round_trip() {
        for n in [
            "ctrl-q",
            "alt-enter",
            "f1",
            "?",
            "pageup",
            "esc",
            "space",
            "ctrl-home",
            "alt-1",
        ] {
            assert_eq!(Chord::parse(n).unwrap().name(), n);
        }
        assert_eq!(
            Chord::parse("ctrl-Q").unwrap(),
            Chord::parse("ctrl-q").unwrap()
        );
    }

    #[test]
    fn bad_keymaps_say_what_is_wrong() {
        let mut t = Config::defaults().keymap;
        t.insert("quit".into(), KeyList::One("ctrl-".into()));
        let e = Keymap::from_config(&t).err().unwrap();
        assert!(
            e.contains("keymap.quit") && e.contains("`ctrl-` is not a key"),
            "{e}"
        );

        let mut t = Config::defaults().keymap;
        t.insert("stop".into(), KeyList::One("ctrl-r".into()));
        let e = Keymap::from_config(&t).err().unwrap();
        assert!(
            e.contains("`ctrl-r` is bound to both `stop` and `toggle_reasoning`")
                || e.contains("both `toggle_reasoning` and `stop`"),
            "{e}"
        );

        let mut t = Config::defaults().keymap;
        t.remove("help");
        let e = Keymap::from_config(&t).err().unwrap();
        assert!(e.contains("`help` has no key"), "{e}");
    }
}
