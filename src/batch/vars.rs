//! `{{name}}` placeholders in prompt templates.

use std::collections::BTreeMap;

fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
}

/// The placeholders in `template`, in order, each `(start, end, name)` (byte offsets of the
/// whole `{{ … }}`). `{{` not followed by a name and `}}` is left as text.
fn placeholders(template: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = template[from..].find("{{") {
        let start = from + i;
        let Some(j) = template[start + 2..].find("}}") else {
            break;
        };
        let end = start + 2 + j + 2;
        let name = template[start + 2..end - 2].trim();
        if is_name(name) {
            out.push((start, end, name));
            from = end;
        } else {
            from = start + 2;
        }
    }
    out
}

/// Every placeholder name `template` uses that `vars` has no value for.
pub fn missing<'a>(template: &'a str, vars: &BTreeMap<String, String>) -> Vec<&'a str> {
    let mut out: Vec<&str> = placeholders(template)
        .into_iter()
        .map(|(_, _, n)| n)
        .filter(|n| !vars.contains_key(*n))
        .collect();
    out.dedup();
    out
}

/// `template` with every placeholder replaced (unknown ones are left as written; check
/// [`missing`] first).
pub fn render(template: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut at = 0;
    for (start, end, name) in placeholders(template) {
        out.push_str(&template[at..start]);
        match vars.get(name) {
            Some(v) => out.push_str(v),
            None => out.push_str(&template[start..end]),
        }
        at = end;
    }
    out.push_str(&template[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn replaces_names_with_or_without_spaces_and_leaves_the_rest() {
        let v = vars(&[("text", "T"), ("lang", "fr")]);
        assert_eq!(
            render("a {{text}} b {{ lang }} {{}} {{ not a name }} {x}", &v),
            "a T b fr {{}} {{ not a name }} {x}"
        );
        // A value is never rendered again.
        let v = vars(&[("text", "{{lang}}"), ("lang", "fr")]);
        assert_eq!(render("{{text}}", &v), "{{lang}}");
        assert_eq!(render("{{text", &v), "{{text");
    }

    #[test]
    fn missing_names_each_once() {
        let v = vars(&[("text", "T")]);
        assert_eq!(missing("{{text}} {{txt}}{{txt}}", &v), ["txt"]);
        assert!(missing("no placeholders", &v).is_empty());
    }
}
