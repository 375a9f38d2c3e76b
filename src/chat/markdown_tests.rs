use super::*;
use ratatui::style::Modifier;

fn plain(r: &Rendered) -> Vec<String> {
    r.lines
        .iter()
        .map(|l| {
            l.spans
                .iter()
                .map(|s| s.content.as_ref())
                .collect::<String>()
        })
        .collect()
}

fn span_with<'a>(r: &'a Rendered, text: &str) -> &'a Span<'static> {
    r.lines
        .iter()
        .flat_map(|l| l.spans.iter())
        .find(|s| s.content.contains(text))
        .unwrap_or_else(|| panic!("no span with {text:?} in {:?}", plain(r)))
}

#[test]
fn headings_emphasis_and_paragraphs() {
    let r = render("# Title\n\nSome *emph* and **bold** and ~~gone~~.", 40);
    let p = plain(&r);
    assert_eq!(p, vec!["# Title", "", "Some emph and bold and gone."]);
    assert!(span_with(&r, "Title")
        .style
        .add_modifier
        .contains(Modifier::BOLD));
    assert!(span_with(&r, "emph")
        .style
        .add_modifier
        .contains(Modifier::ITALIC));
    assert!(span_with(&r, "bold")
        .style
        .add_modifier
        .contains(Modifier::BOLD));
    assert!(span_with(&r, "gone")
        .style
        .add_modifier
        .contains(Modifier::CROSSED_OUT));
}

#[test]
fn lists_nested_and_numbered() {
    let r = render("- one\n- two\n  - inner\n\n1. first\n2. second", 40);
    assert_eq!(
        plain(&r),
        vec!["• one", "• two", "  ◦ inner", "", "1. first", "2. second"]
    );
}

#[test]
fn list_items_wrap_under_their_text() {
    let r = render("- alpha beta gamma delta", 12);
    assert_eq!(plain(&r), vec!["• alpha beta", "  gamma", "  delta"]);
}

#[test]
fn quotes_and_links() {
    let r = render("> quoted text\n\nsee [docs](https://x.dev)", 40);
    let p = plain(&r);
    assert_eq!(p[0], "│ quoted text");
    assert_eq!(p[2], "see docs (https://x.dev)");
    assert!(span_with(&r, "docs")
        .style
        .add_modifier
        .contains(Modifier::UNDERLINED));
}

#[test]
fn code_block_has_label_highlighting_and_is_collected() {
    let md = "Intro\n\n```rust\nfn main() { let x = 1; }\n```\n";
    let r = render(md, 40);
    let p = plain(&r);
    assert!(p[2].starts_with("─ rust [1] ─"), "{p:?}");
    assert_eq!(p[3], "fn main() { let x = 1; }");
    // highlighted: the keyword and the rest differ in colour
    let line = &r.lines[3];
    let colors: std::collections::HashSet<_> = line.spans.iter().map(|s| s.style.fg).collect();
    assert!(colors.len() > 1, "not highlighted: {line:?}");
    assert_eq!(
        r.code_blocks,
        vec![CodeBlock {
            lang: "rust".into(),
            code: "fn main() { let x = 1; }\n".into()
        }]
    );
    assert_eq!(code_blocks(md), r.code_blocks);
}

#[test]
fn nested_fences_and_unclosed_fence() {
    let md = "````md\n```py\nprint(1)\n```\n````\n\n```python\nx = 1\nstill code";
    let blocks = code_blocks(md);
    assert_eq!(blocks.len(), 2);
    assert_eq!(blocks[0].code, "```py\nprint(1)\n```\n");
    assert_eq!(blocks[1].lang, "python");
    assert_eq!(blocks[1].code, "x = 1\nstill code");
    let p = plain(&render(md, 40));
    assert!(p.contains(&"```py".to_string()), "{p:?}");
    assert!(p.contains(&"still code".to_string()), "{p:?}");
}

#[test]
fn tables_align_and_shrink_to_fit() {
    let md = "| name | value |\n|---|---|\n| a | 1 |\n| longer name | 22 |";
    let p = plain(&render(md, 40));
    assert_eq!(
        p,
        vec![
            "name        │ value",
            "────────────┼──────",
            "a           │ 1    ",
            "longer name │ 22   "
        ]
    );
    let narrow = plain(&render(md, 14));
    for l in &narrow {
        assert!(l.width() <= 14, "{l:?} wider than 14");
    }
    assert!(narrow[3].contains('…'), "{narrow:?}");
}

#[test]
fn every_line_fits_the_width() {
    let md = "A long paragraph with averyveryverylongwordthatcannotfit and more words.\n\n\
              > quote with enough words to wrap around\n\n```\nan unbroken code line that is long\n```";
    for w in [10, 17, 25] {
        for l in plain(&render(md, w)) {
            assert!(l.width() <= w, "width {w}: {l:?}");
        }
    }
}
