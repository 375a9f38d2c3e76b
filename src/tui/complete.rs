//! Tab completion of a file path typed in a text field (the Batch tab's prompt set):
//! folders and `.toml` files, as a shell completes them.

use std::path::{Path, PathBuf};

/// Complete `text`: the longest unambiguous completion, and the names to choose from when
/// there are several (folders end in `/`). Nothing matches: the text as it was, no names.
pub fn complete_path(text: &str) -> (String, Vec<String>) {
    let (dir_text, prefix) = match text.rfind('/') {
        Some(i) => (&text[..=i], &text[i + 1..]),
        None => ("", text),
    };
    let dir = if dir_text.is_empty() {
        PathBuf::from(".")
    } else {
        crate::config::expand_home(dir_text)
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(prefix) || (name.starts_with('.') && !prefix.starts_with('.')) {
                return None;
            }
            let is_dir = e.path().is_dir();
            (is_dir || is_toml(&e.path())).then(|| if is_dir { name + "/" } else { name })
        })
        .collect();
    names.sort();
    match names.len() {
        0 => (text.to_string(), vec![]),
        1 => (format!("{dir_text}{}", names[0]), vec![]),
        _ => {
            let common = common_prefix(&names);
            (format!("{dir_text}{common}"), names)
        }
    }
}

fn is_toml(p: &Path) -> bool {
    p.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("toml"))
}

fn common_prefix(names: &[String]) -> String {
    let first = &names[0];
    let mut end = first.len();
    for n in &names[1..] {
        end = first
            .char_indices()
            .zip(n.chars())
            .find(|((_, a), b)| a != b)
            .map_or(end.min(n.len()), |((i, _), _)| i.min(end));
    }
    first[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_folders_and_toml_files_as_a_shell_does() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().display().to_string();
        std::fs::create_dir(d.path().join("prompts")).unwrap();
        std::fs::write(d.path().join("prompts/summaries.toml"), "").unwrap();
        std::fs::write(d.path().join("prompts/summaries-long.toml"), "").unwrap();
        std::fs::write(d.path().join("prompts/notes.txt"), "").unwrap();
        std::fs::write(d.path().join(".hidden.toml"), "").unwrap();

        let (t, c) = complete_path(&format!("{root}/pr"));
        assert_eq!((t, c), (format!("{root}/prompts/"), vec![]));
        let (t, c) = complete_path(&format!("{root}/prompts/"));
        assert_eq!(t, format!("{root}/prompts/summaries"));
        assert_eq!(c, ["summaries-long.toml", "summaries.toml"], "no .txt");
        let (t, c) = complete_path(&format!("{root}/prompts/summaries."));
        assert_eq!((t, c), (format!("{root}/prompts/summaries.toml"), vec![]));
        let (t, c) = complete_path(&format!("{root}/nothing"));
        assert_eq!((t, c.len()), (format!("{root}/nothing"), 0));
        let (_, c) = complete_path(&format!("{root}/"));
        assert_eq!(c, Vec::<String>::new(), "one folder, hidden files left out");
    }
}
