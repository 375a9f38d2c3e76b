use super::*;

const HARMONY: &str = "<|channel|>analysis<|message|>User asks 2+2. Simple: 4 — done.<|end|>\
<|start|>assistant<|channel|>commentary to=functions.calc <|constrain|>json<|message|>{\"x\":1}<|call|>\
<|start|>assistant<|channel|>final<|message|>The answer is **4** ✓.<|return|>";

fn by_channel(pieces: &[Piece]) -> (String, String, String) {
    let mut f = String::new();
    let mut a = String::new();
    let mut c = String::new();
    for p in pieces {
        match p.channel {
            Channel::Final => f.push_str(&p.text),
            Channel::Analysis => a.push_str(&p.text),
            Channel::Commentary => c.push_str(&p.text),
        }
    }
    (f, a, c)
}

fn stream(chunks: &[&str]) -> Vec<Piece> {
    let mut p = ChannelParser::new();
    let mut out = Vec::new();
    for c in chunks {
        out.extend(p.push(c));
    }
    out.extend(p.finish());
    out
}

#[test]
fn harmony_whole() {
    let (f, a, c) = by_channel(&stream(&[HARMONY]));
    assert_eq!(a, "User asks 2+2. Simple: 4 — done.");
    assert_eq!(c, "{\"x\":1}");
    assert_eq!(f, "The answer is **4** ✓.");
}

#[test]
fn harmony_cut_at_every_offset() {
    let whole = by_channel(&stream(&[HARMONY]));
    for i in (0..=HARMONY.len()).filter(|&i| HARMONY.is_char_boundary(i)) {
        let got = by_channel(&stream(&[&HARMONY[..i], &HARMONY[i..]]));
        assert_eq!(got, whole, "cut at byte {i}");
    }
    // and one character at a time
    let chars: Vec<String> = HARMONY.chars().map(String::from).collect();
    let refs: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(by_channel(&stream(&refs)), whole);
}

#[test]
fn think_cut_at_every_offset() {
    let text = "<think>\nLet me see: a < b, so <b> wins.\n</think>\n\nB is bigger.";
    for i in 0..=text.len() {
        let (f, a, c) = by_channel(&stream(&[&text[..i], &text[i..]]));
        assert_eq!(a, "\nLet me see: a < b, so <b> wins.\n", "cut at {i}");
        assert_eq!(f, "\n\nB is bigger.", "cut at {i}");
        assert_eq!(c, "");
    }
}

#[test]
fn unclosed_think_stays_reasoning() {
    let s = split("<think>still thinking about it");
    assert_eq!(s.answer, "");
    assert_eq!(s.reasoning_text(), "still thinking about it");
    assert!(s.unclosed);
    let closed = split("<think>x</think>y");
    assert!(!closed.unclosed);
    assert_eq!(closed.answer, "y");
}

#[test]
fn unclosed_harmony_message_and_truncated_header() {
    let s = split("<|channel|>analysis<|message|>half a thou");
    assert_eq!(s.reasoning_text(), "half a thou");
    assert!(s.unclosed);
    // A header cut off before <|message|> yields nothing, and never panics.
    let s = split("<|start|>assistant<|channel|>ana");
    assert_eq!(s.answer, "");
    assert!(s.reasoning.is_empty());
}

#[test]
fn stray_tags_are_dropped_and_text_is_kept() {
    let s = split("answer</think> more<|message|>!");
    assert_eq!(s.answer, "answer more!");
    assert!(s.reasoning.is_empty());
    assert!(!s.unclosed);
}

#[test]
fn plain_text_with_angle_brackets_passes_through() {
    let text = "if a<b and b>c then <thin ice> <|not a tag|> <";
    let s = split(text);
    assert_eq!(s.answer, text);
    // A trailing `<` is held back while streaming, then released at the end.
    let mut p = ChannelParser::new();
    let first = p.push("x <|chan");
    assert_eq!(by_channel(&first).0, "x ");
    assert_eq!(by_channel(&p.finish()).0, "<|chan");
}

#[test]
fn overlong_header_is_given_back_as_text() {
    let long = format!("<|start|>{}", "y".repeat(300));
    let s = split(&long);
    assert_eq!(s.answer, "y".repeat(300));
}

#[test]
fn header_without_channel_is_final() {
    let s = split("<|start|>assistant<|message|>hi<|end|>");
    assert_eq!(s.answer, "hi");
}

#[test]
fn unknown_channel_is_commentary() {
    let s = split("<|channel|>notes<|message|>n<|end|>ok");
    assert_eq!(s.answer, "ok");
    assert_eq!(s.reasoning[0].channel, Channel::Commentary);
}
