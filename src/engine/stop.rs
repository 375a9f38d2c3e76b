//! Stop strings that must never reach the user, even when the model spells them across tokens.
//!
//! [`StopMatcher`] sits between the detokenizer and the output: it emits only text that can no
//! longer be the start of a stop string and holds the rest back until the next push decides.
//! When several stops match, the one that completes first in the text wins (as if the text had
//! arrived one character at a time), so the result never depends on how the text was cut into
//! pushes; among stops completing at the same place, the one starting first wins.

/// What one [`StopMatcher::push`] lets through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StopStep {
    /// Text safe to show now (before any match).
    pub emit: String,
    /// A stop string matched: generation should end; nothing more will be emitted.
    pub stopped: bool,
    /// The stop string that matched.
    pub matched: Option<String>,
}

/// Incremental stop-string matcher over streamed text.
#[derive(Debug, Clone, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
    stopped: bool,
}

impl StopMatcher {
    /// A matcher for `stops`; empty strings are ignored. With no stops it passes text through.
    pub fn new(stops: Vec<String>) -> Self {
        let mut stops: Vec<String> = stops.into_iter().filter(|s| !s.is_empty()).collect();
        stops.dedup();
        Self {
            stops,
            held: String::new(),
            stopped: false,
        }
    }

    /// Whether a stop string has matched.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Feeds newly generated text; returns what can be emitted and whether a stop matched.
    pub fn push(&mut self, text: &str) -> StopStep {
        if self.stopped {
            return StopStep {
                stopped: true,
                ..StopStep::default()
            };
        }
        self.held.push_str(text);
        if let Some((start, stop)) = self.first_match() {
            let mut emit = std::mem::take(&mut self.held);
            emit.truncate(start);
            self.stopped = true;
            return StopStep {
                emit,
                stopped: true,
                matched: Some(stop),
            };
        }
        let keep = self.partial_start();
        let rest = self.held.split_off(keep);
        StopStep {
            emit: std::mem::replace(&mut self.held, rest),
            stopped: false,
            matched: None,
        }
    }

    /// Releases the held-back text at the end of generation (nothing once stopped).
    pub fn finish(&mut self) -> String {
        if self.stopped {
            self.held.clear();
        }
        std::mem::take(&mut self.held)
    }

    /// The complete match that ends first (ties: the one starting first): (start, stop).
    fn first_match(&self) -> Option<(usize, String)> {
        self.stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()).map(|at| (at + s.len(), at, s)))
            .min_by_key(|&(end, start, _)| (end, start))
            .map(|(_, start, s)| (start, s.clone()))
    }

    /// Where the longest held suffix that is a proper prefix of some stop begins
    /// (`held.len()` when none): everything before it can never be part of a match.
    fn partial_start(&self) -> usize {
        let longest = self.stops.iter().map(String::len).max().unwrap_or(0);
        let earliest = self.held.len().saturating_sub(longest.saturating_sub(1));
        self.held
            .char_indices()
            .map(|(i, _)| i)
            .filter(|&i| i >= earliest)
            .find(|&i| self.stops.iter().any(|s| s.starts_with(&self.held[i..])))
            .unwrap_or(self.held.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(stops: &[&str]) -> StopMatcher {
        StopMatcher::new(stops.iter().map(|s| s.to_string()).collect())
    }

    /// Pushes every piece; returns (all emitted text incl. finish, matched stop).
    fn run(stops: &[&str], pieces: &[&str]) -> (String, Option<String>) {
        let mut m = matcher(stops);
        let mut out = String::new();
        for p in pieces {
            let step = m.push(p);
            out += &step.emit;
            if step.stopped {
                assert_eq!(m.finish(), "");
                return (out, step.matched);
            }
        }
        out += &m.finish();
        (out, None)
    }

    #[test]
    fn no_stops_pass_through() {
        let mut m = matcher(&[]);
        assert_eq!(m.push("hello").emit, "hello");
        assert_eq!(matcher(&["", ""]).push("x").emit, "x");
        assert_eq!(m.finish(), "");
    }

    #[test]
    fn stop_split_across_pushes_is_never_emitted() {
        let mut m = matcher(&["</s>"]);
        assert_eq!(m.push("Hi </").emit, "Hi ");
        let step = m.push("s>tail");
        assert_eq!(
            step,
            StopStep {
                emit: String::new(),
                stopped: true,
                matched: Some("</s>".into())
            }
        );
        assert_eq!(m.push("more").emit, "");
        assert!(m.is_stopped());
        assert_eq!(
            run(&["STOP"], &["a S", "T", "OPb"]),
            ("a ".into(), Some("STOP".into()))
        );
        assert_eq!(
            run(&["STOP"], &["aS", "TO", "P"]),
            ("a".into(), Some("STOP".into()))
        );
    }

    #[test]
    fn held_prefix_released_in_order() {
        let mut m = matcher(&["abc"]);
        assert_eq!(m.push("xab").emit, "x");
        assert_eq!(m.push("d").emit, "abd");
        assert_eq!(m.push("ab").emit, "");
        assert_eq!(m.finish(), "ab");
        // A held prefix that fails may itself contain the start of another candidate.
        assert_eq!(run(&["aab"], &["a", "a", "a", "c"]), ("aaac".into(), None));
        assert_eq!(
            run(&["aab"], &["a", "a", "a", "b"]),
            ("a".into(), Some("aab".into()))
        );
    }

    #[test]
    fn overlapping_and_multiple_stops() {
        // The stop that completes first wins, however the text was split.
        assert_eq!(
            run(&["abc", "ab"], &["xabc"]),
            ("x".into(), Some("ab".into()))
        );
        assert_eq!(
            run(&["abc", "ab"], &["x", "a", "b", "c"]),
            ("x".into(), Some("ab".into()))
        );
        assert_eq!(
            run(&["abcd", "bc"], &["abcd"]),
            ("a".into(), Some("bc".into()))
        );
        assert_eq!(
            run(&["abcd", "bc"], &["a", "b", "c", "d"]),
            ("a".into(), Some("bc".into()))
        );
        assert_eq!(
            run(&["\n\n", "User:"], &["Sure.", " User", ":"]),
            ("Sure. ".into(), Some("User:".into()))
        );
        assert_eq!(
            run(&["\n\n", "User:"], &["Sure.\n", "\nUser:"]),
            ("Sure.".into(), Some("\n\n".into()))
        );
    }

    #[test]
    fn stop_at_the_very_beginning() {
        assert_eq!(
            run(&["###"], &["###", "rest"]),
            ("".into(), Some("###".into()))
        );
        assert_eq!(
            run(&["###"], &["#", "#", "#"]),
            ("".into(), Some("###".into()))
        );
    }

    #[test]
    fn unicode_is_char_boundary_safe() {
        assert_eq!(
            run(&["終わり"], &["日本語の", "終", "わ", "り", "です"]),
            ("日本語の".into(), Some("終わり".into()))
        );
        assert_eq!(
            run(&["終わり"], &["終わ", "った"]),
            ("終わった".into(), None)
        );
        assert_eq!(
            run(&["🤖!"], &["go 🤖", "🤖", "!"]),
            ("go 🤖".into(), Some("🤖!".into()))
        );
        // A stop sharing only the first byte of a multibyte char never splits it.
        let mut m = matcher(&["é"]);
        assert_eq!(m.push("è").emit, "è");
        assert_eq!(m.push("aé").emit, "a");
    }
}
