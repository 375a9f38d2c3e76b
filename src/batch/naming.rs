//! Output file names: `<safe prompt>--<safe model>`, safe on every OS (sanitize-filename with
//! its Windows rules on every platform), bounded in length, and unique within a plan.

use sha2::{Digest, Sha256};

/// Longest safe part (prompt or model) in bytes; a longer one is cut and tagged with a hash.
/// Two parts, the separator, a collision tag and `.error.txt` stay well under 255 bytes.
pub const MAX_PART: usize = 96;

/// First `n` hex digits of the sha256 of `s`.
pub fn short_hash(s: &str, n: usize) -> String {
    let d = Sha256::digest(s.as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    hex[..n].to_string()
}

/// `name` as one path component that every OS accepts: no separators, `..`, control
/// characters, Windows-reserved names (CON, NUL, COM1…) or trailing dots and spaces; no
/// leading `.` or `-`; whitespace as `_`; `,` (joined prompts) as `+`; at most
/// [`MAX_PART`] bytes (a longer name keeps its start and gets `~<hash>` of the whole).
pub fn safe(name: &str) -> String {
    let spaced: String = name
        .trim()
        .chars()
        .map(|c| match c {
            ',' => '+',
            c if c.is_whitespace() => '_',
            c => c,
        })
        .collect();
    let opts = sanitize_filename::Options {
        windows: true,
        truncate: false,
        replacement: "_",
    };
    let mut s = sanitize_filename::sanitize_with_options(&spaced, opts.clone());
    // Leading dots hide a file; a leading dash reads as a flag.
    let lead = s.len() - s.trim_start_matches(['.', '-']).len();
    if lead > 0 {
        s.replace_range(..lead, &"_".repeat(lead));
    }
    if s.is_empty() {
        s.push('_');
    }
    if s.len() > MAX_PART {
        let mut end = MAX_PART - 9;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s = format!("{}~{}", &s[..end], short_hash(name, 8));
        // The cut may end in a dot or space; sanitize again (it only shortens).
        s = sanitize_filename::sanitize_with_options(&s, opts);
    }
    s
}

/// The file stem of one item.
pub fn stem(prompt: &str, model: &str) -> String {
    format!("{}--{}", safe(prompt), safe(model))
}

/// Make `stems` unique, comparing without case (as macOS and Windows file systems do). The
/// first of equal stems keeps its name; each later one gets `~<hash of its prompt and
/// model>`, so names never depend on anything but the item itself and the items before it.
/// Returns `(index, message)` for every renamed item.
pub fn disambiguate(stems: &mut [String], keys: &[(&str, &str)]) -> Vec<(usize, String)> {
    let mut seen = std::collections::HashSet::new();
    let mut notes = Vec::new();
    for i in 0..stems.len() {
        if seen.insert(stems[i].to_lowercase()) {
            continue;
        }
        let (p, m) = keys[i];
        let mut tagged = format!("{}~{}", stems[i], short_hash(&format!("{p}\0{m}"), 8));
        let mut n = 2;
        while !seen.insert(tagged.to_lowercase()) {
            tagged = format!("{}~{}-{n}", stems[i], short_hash(&format!("{p}\0{m}"), 8));
            n += 1;
        }
        notes.push((
            i,
            format!(
                "prompt `{p}` × model `{m}` would be named {}.md like an item before it; it is named {tagged}.md",
                stems[i]
            ),
        ));
        stems[i] = tagged;
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn portable(s: &str) {
        assert!(!s.is_empty());
        assert!(s.len() <= MAX_PART, "{} bytes: {s}", s.len());
        assert!(
            sanitize_filename::is_sanitized_with_options(
                s,
                sanitize_filename::OptionsForCheck {
                    windows: true,
                    truncate: true
                }
            ),
            "{s:?}"
        );
        assert!(!s.starts_with('.') && !s.starts_with('-'), "{s:?}");
        assert!(!s.contains('/') && !s.contains('\\'), "{s:?}");
    }

    #[test]
    fn separators_and_dots_never_leave_the_folder() {
        for (raw, want) in [
            ("a/b", "a_b"),
            ("a\\b", "a_b"),
            ("../etc/passwd", "___etc_passwd"),
            ("..", "_"),
            (".", "_"),
            (".hidden", "_hidden"),
            ("-rf", "_rf"),
            ("", "_"),
        ] {
            assert_eq!(safe(raw), want, "{raw:?}");
            portable(&safe(raw));
        }
    }

    #[test]
    fn windows_reserved_names_and_trailing_dots() {
        for raw in ["CON", "con", "NUL", "nul.txt", "COM1", "LPT9", "PRN", "AUX"] {
            assert_eq!(safe(raw), "_", "{raw}");
        }
        assert_eq!(safe("console"), "console");
        assert_eq!(safe("name. "), "name_");
        assert_eq!(safe("a:b*c?d\"e<f>g|h"), "a_b_c_d_e_f_g_h");
    }

    #[test]
    fn control_characters_and_whitespace() {
        assert_eq!(safe("a\u{0}b\nc\td\u{7}e\u{9b}f"), "a_b_c_d_e_f");
        assert_eq!(safe("two words"), "two_words");
        assert_eq!(safe("think,tldr"), "think+tldr");
    }

    #[test]
    fn unicode_is_kept() {
        assert_eq!(safe("résumé"), "résumé");
        assert_eq!(safe("日本語の要約"), "日本語の要約");
        assert_eq!(safe("emoji 🚀"), "emoji_🚀");
    }

    #[test]
    fn long_names_are_cut_with_a_hash_on_char_boundaries() {
        let a = "x".repeat(300);
        let b = format!("{}y", "x".repeat(299));
        let (sa, sb) = (safe(&a), safe(&b));
        portable(&sa);
        portable(&sb);
        assert_ne!(sa, sb, "two long names that share a prefix stay apart");
        assert!(sa.starts_with(&"x".repeat(80)));
        let wide = "é".repeat(300);
        portable(&safe(&wide));
        // The whole file name stays under the 255-byte limit of common file systems.
        let file = format!("{}~12345678.error.txt", stem(&a, &wide));
        assert!(file.len() < 255, "{}", file.len());
        // Deterministic.
        assert_eq!(safe(&a), sa);
    }

    #[test]
    fn collisions_get_stable_distinct_names() {
        let keys = [("a/b", "m"), ("a_b", "m"), ("A_B", "m"), ("c", "m")];
        let mut stems: Vec<String> = keys.iter().map(|(p, m)| stem(p, m)).collect();
        assert_eq!(stems[0], stems[1]);
        let notes = disambiguate(&mut stems, &keys);
        assert_eq!(stems[0], "a_b--m", "the first keeps its name");
        assert_eq!(stems[3], "c--m");
        let lower: std::collections::HashSet<String> =
            stems.iter().map(|s| s.to_lowercase()).collect();
        assert_eq!(lower.len(), 4, "{stems:?}");
        assert_eq!(notes.iter().map(|n| n.0).collect::<Vec<_>>(), [1, 2]);
        assert!(notes[0].1.contains("a_b--m.md"), "{}", notes[0].1);
        // Same input, same names.
        let mut again: Vec<String> = keys.iter().map(|(p, m)| stem(p, m)).collect();
        disambiguate(&mut again, &keys);
        assert_eq!(again, stems);
    }
}
