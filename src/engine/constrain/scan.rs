//! The lexical parts of JSON, byte by byte: strings (escapes, UTF-8, length in code
//! points), numbers, and literal sets (`enum`, `const`, `true`/`false`/`null`).

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Str {
    Normal,
    Escape,
    /// `\u`: this many hex digits left; `d`: the first was `d`/`D` (a surrogate may follow).
    Hex {
        left: u8,
        d: bool,
    },
    /// Inside a UTF-8 sequence: `left` continuation bytes, the next in `lo..=hi`.
    Utf8 {
        left: u8,
        lo: u8,
        hi: u8,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Num {
    Start,
    Minus,
    Zero,
    Int,
    Dot,
    Frac,
    E,
    ESign,
    Exp,
}

pub(super) fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\t')
}

pub(super) fn num_next(int: bool, st: Num, b: u8) -> Option<Num> {
    use Num::*;
    let digit = b.is_ascii_digit();
    Some(match (st, b) {
        (Start, b'-') => Minus,
        (Start | Minus, b'0') => Zero,
        (Start | Minus, _) if digit => Int,
        (Int, _) if digit => Int,
        (Zero | Int, b'.') if !int => Dot,
        (Zero | Int | Frac, b'e' | b'E') if !int => E,
        (Dot | Frac, _) if digit => Frac,
        (E, b'+' | b'-') => ESign,
        (E | ESign | Exp, _) if digit => Exp,
        _ => return None,
    })
}

pub(super) fn num_accepting(st: Num) -> bool {
    matches!(st, Num::Zero | Num::Int | Num::Frac | Num::Exp)
}

/// The next state of a string, or `None` when `b` cannot come next; `Some(None)` closes it.
pub(super) fn str_next(min: u32, max: u32, len: &mut u32, st: Str, b: u8) -> Option<Option<Str>> {
    let char_start = |len: &mut u32| {
        if *len >= max {
            return false;
        }
        *len += 1;
        true
    };
    let next = match st {
        Str::Normal => match b {
            b'"' if *len >= min => return Some(None),
            b'"' => return None,
            b'\\' if char_start(len) => Str::Escape,
            0x00..=0x1F => return None,
            0x20..=0x7F if char_start(len) => Str::Normal,
            0xC2..=0xF4 if char_start(len) => {
                let (left, lo, hi) = match b {
                    0xC2..=0xDF => (1, 0x80, 0xBF),
                    0xE0 => (2, 0xA0, 0xBF),
                    0xED => (2, 0x80, 0x9F),
                    0xE1..=0xEF => (2, 0x80, 0xBF),
                    0xF0 => (3, 0x90, 0xBF),
                    0xF4 => (3, 0x80, 0x8F),
                    _ => (3, 0x80, 0xBF),
                };
                Str::Utf8 { left, lo, hi }
            }
            _ => return None,
        },
        Str::Escape => match b {
            b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => Str::Normal,
            b'u' => Str::Hex { left: 4, d: false },
            _ => return None,
        },
        Str::Hex { left, d } => {
            if !b.is_ascii_hexdigit() {
                return None;
            }
            // No surrogates (\uD800–\uDFFF): JSON parsers refuse a lone one.
            if d && left == 3 && matches!(b.to_ascii_lowercase(), b'8'..=b'9' | b'a'..=b'f') {
                return None;
            }
            match left {
                1 => Str::Normal,
                _ => Str::Hex {
                    left: left - 1,
                    d: left == 4 && b.eq_ignore_ascii_case(&b'd'),
                },
            }
        }
        Str::Utf8 { left, lo, hi } => {
            if !(lo..=hi).contains(&b) {
                return None;
            }
            match left {
                1 => Str::Normal,
                _ => Str::Utf8 {
                    left: left - 1,
                    lo: 0x80,
                    hi: 0xBF,
                },
            }
        }
    };
    Some(Some(next))
}

/// Whether literal `j` still matches the `pos` bytes literal `rep` matched.
pub(super) fn alive(lits: &[Vec<u8>], rep: usize, j: usize, pos: usize) -> bool {
    lits[j].len() >= pos && lits[j][..pos] == lits[rep][..pos]
}

/// A literal of `lits[lo..=hi]` that matches the `pos` bytes `rep` matched, then `b`.
pub(super) fn extend(
    lits: &[Vec<u8>],
    lo: usize,
    hi: usize,
    rep: usize,
    pos: usize,
    b: u8,
) -> Option<usize> {
    (lo..=hi.min(lits.len().saturating_sub(1)))
        .find(|&j| alive(lits, rep, j, pos) && lits[j].get(pos) == Some(&b))
}

pub(super) fn lit_complete(lits: &[Vec<u8>], rep: usize, pos: usize) -> bool {
    (0..lits.len()).any(|j| lits[j].len() == pos && alive(lits, rep, j, pos))
}

pub(super) fn lit_longer(lits: &[Vec<u8>], rep: usize, pos: usize) -> bool {
    (0..lits.len()).any(|j| lits[j].len() > pos && alive(lits, rep, j, pos))
}
