//! Syntax highlighting of fenced code blocks with syntect's bundled grammars and themes.

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Span;
use std::sync::OnceLock;
use syntect::easy::HighlightLines;
use syntect::highlighting::{FontStyle, Theme, ThemeSet};
use syntect::parsing::{SyntaxReference, SyntaxSet};

struct Assets {
    syntaxes: SyntaxSet,
    theme: Theme,
}

fn assets() -> &'static Assets {
    static ASSETS: OnceLock<Assets> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let mut themes = ThemeSet::load_defaults();
        let theme = themes
            .themes
            .remove("base16-ocean.dark")
            .unwrap_or_default();
        Assets {
            syntaxes: SyntaxSet::load_defaults_newlines(),
            theme,
        }
    })
}

/// Load the grammars now (they take a few tens of milliseconds) instead of on first use.
pub fn warm_up() {
    assets();
}

fn syntax_for<'a>(set: &'a SyntaxSet, lang: &str) -> Option<&'a SyntaxReference> {
    let lang = lang.trim().split([' ', ',', '{']).next().unwrap_or("");
    if lang.is_empty() {
        return None;
    }
    set.find_syntax_by_token(lang)
        .or_else(|| set.find_syntax_by_name(lang))
        .or_else(|| match lang.to_ascii_lowercase().as_str() {
            "sh" | "bash" | "shell" | "zsh" | "console" => set.find_syntax_by_extension("sh"),
            "ts" | "typescript" | "tsx" | "jsx" => set.find_syntax_by_extension("js"),
            "toml" | "ini" | "cfg" => set.find_syntax_by_extension("ini"),
            _ => None,
        })
}

/// True when a grammar for `lang` is bundled.
pub fn knows(lang: &str) -> bool {
    syntax_for(&assets().syntaxes, lang).is_some()
}

/// One span list per line of `code`, coloured for `lang`; plain text when the language is
/// unknown.
pub fn highlight(code: &str, lang: &str) -> Vec<Vec<Span<'static>>> {
    let a = assets();
    let Some(syntax) = syntax_for(&a.syntaxes, lang) else {
        return code
            .lines()
            .map(|l| {
                vec![Span::styled(
                    l.to_string(),
                    Style::default().fg(Color::Gray),
                )]
            })
            .collect();
    };
    let mut h = HighlightLines::new(syntax, &a.theme);
    let mut out = Vec::new();
    for line in syntect::util::LinesWithEndings::from(code) {
        let spans = match h.highlight_line(line, &a.syntaxes) {
            Ok(regions) => regions
                .into_iter()
                .map(|(st, text)| {
                    let mut style = Style::default().fg(Color::Rgb(
                        st.foreground.r,
                        st.foreground.g,
                        st.foreground.b,
                    ));
                    if st.font_style.contains(FontStyle::BOLD) {
                        style = style.add_modifier(Modifier::BOLD);
                    }
                    if st.font_style.contains(FontStyle::ITALIC) {
                        style = style.add_modifier(Modifier::ITALIC);
                    }
                    Span::styled(text.trim_end_matches(['\n', '\r']).to_string(), style)
                })
                .filter(|s| !s.content.is_empty())
                .collect(),
            Err(_) => vec![Span::raw(line.trim_end_matches(['\n', '\r']).to_string())],
        };
        out.push(spans);
    }
    out
}
