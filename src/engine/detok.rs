//! UTF-8-safe incremental detokenization of generated token ids.
//!
//! Decoding token by token is wrong twice over: a character may span several byte tokens
//! (emoji, CJK through byte fallback), and SentencePiece decoders drop the leading space of
//! the first token decoded. [`Detokenizer`] uses the prefix/read offset technique of
//! text-generation-inference and vLLM: it decodes a short window of earlier tokens with and
//! without the new ones and emits only the difference, holding text back while it ends in
//! U+FFFD (an incomplete UTF-8 sequence). Special tokens are skipped.

use super::tokenizer::{Tokenizer, TokenizerError};

const REPLACEMENT: char = '\u{FFFD}';

/// Turns a stream of token ids into text pieces that are always complete UTF-8.
#[derive(Debug, Clone, Default)]
pub struct Detokenizer {
    /// Context ids (prompt tail) followed by the pushed ids.
    ids: Vec<u32>,
    /// How many leading ids are context, not output.
    context: usize,
    /// Start of the window decoded as context for the next piece.
    prefix_offset: usize,
    /// End of what has been emitted.
    read_offset: usize,
}

impl Detokenizer {
    /// A detokenizer whose first pieces are decoded after `prompt_tail` (a few last prompt
    /// ids, may be empty), so that e.g. a SentencePiece `▁Paris` after a prompt yields " Paris".
    pub fn new(prompt_tail: &[u32]) -> Self {
        Self {
            ids: prompt_tail.to_vec(),
            context: prompt_tail.len(),
            prefix_offset: 0,
            read_offset: prompt_tail.len(),
        }
    }

    /// Adds one generated id; returns the text it completes (often empty while a multibyte
    /// character is still incomplete). An id outside the vocabulary is an error and is dropped.
    pub fn push(&mut self, tok: &Tokenizer, id: u32) -> Result<String, TokenizerError> {
        self.ids.push(id);
        match self.step(tok, false) {
            Ok(text) => Ok(text),
            Err(e) => {
                self.ids.pop();
                Err(e)
            }
        }
    }

    /// Returns whatever is still held back (possibly ending in U+FFFD) at the end of generation.
    pub fn flush(&mut self, tok: &Tokenizer) -> String {
        self.step(tok, true).unwrap_or_default()
    }

    /// The ids pushed so far (without the prompt tail).
    pub fn all_ids(&self) -> &[u32] {
        &self.ids[self.context..]
    }

    fn step(&mut self, tok: &Tokenizer, force: bool) -> Result<String, TokenizerError> {
        if self.read_offset == self.ids.len() {
            return Ok(String::new());
        }
        let prefix = tok.decode(&self.ids[self.prefix_offset..self.read_offset], true)?;
        let full = tok.decode(&self.ids[self.prefix_offset..], true)?;
        if !force && (full.len() <= prefix.len() || full.ends_with(REPLACEMENT)) {
            return Ok(String::new());
        }
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        Ok(new_suffix(&full, &prefix).to_string())
    }
}

/// The part of `full` after `prefix`; if a decoder rewrote the prefix, what follows their
/// longest common prefix (cut at a char boundary).
fn new_suffix<'a>(full: &'a str, prefix: &str) -> &'a str {
    if let Some(rest) = full.strip_prefix(prefix) {
        return rest;
    }
    let common = full
        .char_indices()
        .zip(prefix.chars())
        .find(|((_, a), b)| a != b)
        .map_or(full.len().min(prefix.len()), |((i, _), _)| i);
    &full[common..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tokenizer::test_support::{smollm, tiny_spm};

    /// Pushes the ids one by one; returns the pieces, flush included.
    fn pieces(tok: &Tokenizer, context: &[u32], ids: &[u32]) -> Vec<String> {
        let mut d = Detokenizer::new(context);
        let mut out: Vec<String> = ids.iter().map(|&id| d.push(tok, id).unwrap()).collect();
        out.push(d.flush(tok));
        assert_eq!(d.all_ids(), ids);
        out
    }

    #[test]
    fn multibyte_text_streams_without_replacement_chars() {
        let tok = smollm();
        for text in [
            "日本語のテキスト",
            "emoji 🤖🚀 test",
            "naïve café — déjà vu",
            "fn main() {\n    println!(\"hi\");\n}\n",
        ] {
            let ids = tok.encode(text, false).unwrap();
            let out = pieces(tok, &[], &ids);
            assert!(out.iter().all(|p| !p.contains(REPLACEMENT)), "{out:?}");
            assert_eq!(out.concat(), text);
            assert_eq!(out.last().unwrap(), "", "nothing left for flush");
        }
        // Held-back bytes are really held: the first half of 🤖 yields nothing.
        let ids = tok.encode("🤖", false).unwrap();
        assert!(ids.len() > 1);
        assert_eq!(Detokenizer::new(&[]).push(tok, ids[0]).unwrap(), "");
    }

    #[test]
    fn specials_are_skipped_and_flush_releases_incomplete_bytes() {
        let tok = smollm();
        let ids = tok
            .encode("<|im_start|>assistant\nHi!<|im_end|>", false)
            .unwrap();
        assert_eq!(pieces(tok, &[], &ids).concat(), "assistant\nHi!");
        let robot = tok.encode("🤖", false).unwrap();
        let mut d = Detokenizer::new(&[]);
        assert_eq!(d.push(tok, robot[0]).unwrap(), "");
        assert!(d.flush(tok).ends_with(REPLACEMENT));
        assert!(matches!(
            d.push(tok, 1 << 30),
            Err(TokenizerError::UnknownId { .. })
        ));
        assert_eq!(d.all_ids(), &robot[..1]);
    }

    #[test]
    fn prompt_tail_keeps_spm_leading_space() {
        let tok = tiny_spm(&[
            ("▁", -1.0),
            ("h", -2.0),
            ("i", -2.0),
            ("▁h", -3.0),
            ("▁hi", -4.0),
        ]);
        let prompt = tok.encode("hi", false).unwrap();
        let gen = tok.encode("hi hi", false).unwrap();
        assert_eq!(pieces(&tok, &prompt, &gen).concat(), " hi hi");
        assert_eq!(pieces(&tok, &[], &gen).concat(), "hi hi");
        // Byte-fallback pieces of one character come out together.
        let e = tok.encode("é", false).unwrap();
        assert_eq!(pieces(&tok, &prompt, &e[1..]), ["", "é", ""]);
    }

    #[test]
    fn suffix_after_rewritten_prefix() {
        assert_eq!(new_suffix("abc", "ab"), "c");
        assert_eq!(new_suffix("aé x", "a\u{FFFD}"), "é x");
        assert_eq!(new_suffix("ab", "abc"), "");
    }
}
