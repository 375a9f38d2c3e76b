//! The exact bytes of every token, as the model's decoder would produce them, computed once
//! per model: log probabilities report them (a byte-level BPE token may be half a UTF-8
//! character) and constrained decoding checks them against a grammar.
//!
//! - byte-level BPE (`gpt2` GGUF vocabularies, `ByteLevel` decoders): each char of the piece
//!   maps back to one byte (GPT-2's printable byte alphabet);
//! - SentencePiece: `▁` is a space and `<0xNN>` is the byte NN (the leading space the
//!   decoder strips at the very start of a text is kept: the token does carry it);
//! - anything else: the token decoded alone.
//!
//! Special (control) tokens map to their text (`<|im_end|>`); [`TokenBytes::is_special`]
//! tells them apart, since the detokenizer leaves them out of the output text.

use super::Tokenizer;

/// Every token's bytes in one buffer.
#[derive(Debug, Clone, Default)]
pub struct TokenBytes {
    data: Vec<u8>,
    /// `ends[id]`: where token `id`'s bytes end in `data` (they start at `ends[id - 1]`).
    ends: Vec<u32>,
    special: Vec<bool>,
}

/// GPT-2's map from bytes to printable chars, inverted: char → byte.
fn byte_level_decoder() -> std::collections::HashMap<char, u8> {
    let mut printable: Vec<u8> = (b'!'..=b'~').collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut map = std::collections::HashMap::with_capacity(256);
    let mut extra = 0u32;
    for b in 0..=255u8 {
        let c = if printable.contains(&b) {
            char::from(b)
        } else {
            extra += 1;
            char::from_u32(255 + extra).unwrap_or('?')
        };
        map.insert(c, b);
    }
    map
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    ByteLevel,
    SentencePiece,
    Other,
}

fn kind(tok: &Tokenizer) -> Kind {
    match tok.pre() {
        "spm" => return Kind::SentencePiece,
        "tokenizer.json" => {}
        _ => return Kind::ByteLevel,
    }
    let decoder = serde_json::to_string(&tok.inner().get_decoder()).unwrap_or_default();
    if decoder.contains("ByteLevel") {
        Kind::ByteLevel
    } else if decoder.contains("ByteFallback") || decoder.contains('▁') {
        Kind::SentencePiece
    } else {
        Kind::Other
    }
}

fn spm_bytes(piece: &str, out: &mut Vec<u8>) {
    let hex = piece
        .strip_prefix("<0x")
        .and_then(|h| h.strip_suffix('>'))
        .filter(|h| h.len() == 2)
        .and_then(|h| u8::from_str_radix(h, 16).ok());
    match hex {
        Some(b) => out.push(b),
        None => out.extend_from_slice(piece.replace('▁', " ").as_bytes()),
    }
}

impl TokenBytes {
    /// The table for `tok`'s whole vocabulary.
    pub fn new(tok: &Tokenizer) -> TokenBytes {
        let n = tok.vocab_size();
        let kind = kind(tok);
        let byte_level = (kind == Kind::ByteLevel).then(byte_level_decoder);
        let specials = tok.special_ids();
        let mut t = TokenBytes {
            data: Vec::with_capacity(n * 6),
            ends: Vec::with_capacity(n),
            special: Vec::with_capacity(n),
        };
        for id in 0..n as u32 {
            let special = specials.binary_search(&id).is_ok();
            let piece = tok.token_to_piece(id).unwrap_or_default();
            let added = tok.inner().get_added_tokens_decoder().contains_key(&id);
            match (&byte_level, kind) {
                _ if special || added => t.data.extend_from_slice(piece.as_bytes()),
                (Some(map), _) => {
                    for c in piece.chars() {
                        match map.get(&c) {
                            Some(&b) => t.data.push(b),
                            None => t
                                .data
                                .extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
                        }
                    }
                }
                (None, Kind::SentencePiece) => spm_bytes(&piece, &mut t.data),
                _ => {
                    let text = tok.decode(&[id], false).unwrap_or_default();
                    t.data.extend_from_slice(text.as_bytes());
                }
            }
            t.ends.push(t.data.len() as u32);
            t.special.push(special);
        }
        t
    }

    /// Token `id`'s bytes (empty for an id outside the vocabulary).
    pub fn get(&self, id: u32) -> &[u8] {
        let i = id as usize;
        let Some(&end) = self.ends.get(i) else {
            return &[];
        };
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start as usize..end as usize]
    }

    /// Whether `id` is a special (control) token, left out of the output text.
    pub fn is_special(&self, id: u32) -> bool {
        self.special.get(id as usize).copied().unwrap_or(false)
    }

    /// Number of tokens in the table.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tokenizer::test_support::{smollm, tiny_spm};

    #[test]
    fn byte_level_tokens_give_their_exact_bytes() {
        let tok = smollm();
        let t = TokenBytes::new(tok);
        assert_eq!(t.len(), tok.vocab_size());
        assert_eq!(t.get(19556), b"Hello");
        assert_eq!(t.get(38699), b" Hello");
        assert!(t.is_special(2) && t.get(2) == b"<|im_end|>");
        // Every non-special token's bytes decode to the tokenizer's own text when valid UTF-8.
        for id in (0..tok.vocab_size() as u32).step_by(97) {
            if t.is_special(id) {
                continue;
            }
            if let Ok(s) = std::str::from_utf8(t.get(id)) {
                assert_eq!(s, tok.decode(&[id], false).unwrap(), "token {id}");
            }
        }
        // Text encoded then mapped back byte by byte is the text, emoji included.
        let text = "Grüße 🌍 {\"a\": [1, 2.5e-3]}\n";
        let ids = tok.encode(text, false).unwrap();
        let bytes: Vec<u8> = ids.iter().flat_map(|&i| t.get(i).to_vec()).collect();
        assert_eq!(bytes, text.as_bytes());
        assert_eq!(t.get(u32::MAX), b"");
    }

    #[test]
    fn sentencepiece_pieces_map_spaces_and_byte_tokens() {
        let tok = tiny_spm(&[("▁hi", 1.0)]);
        let t = TokenBytes::new(&tok);
        assert_eq!(t.get(3 + 0x41), b"A"); // <0x41>
        assert_eq!(t.get(3 + 0xE2), [0xE2]);
        assert_eq!(t.get(3 + 256), b" hi");
        assert!(t.is_special(1) && !t.is_special(3 + 256));
    }
}
