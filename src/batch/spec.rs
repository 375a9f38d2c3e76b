//! The prompt-set TOML file, parsed and checked into a [`ValidSpec`]: every error names the
//! file, the line where known, and the key.
//!
//! ```toml
//! name = "adam"                                # output folder name (default: file stem)
//! models = ["smollm2-135m-instruct.q4_1"]      # optional; --models overrides
//! [defaults]                                   # any sampling field, system, template
//! temperature = 0.0
//! [vars]                                       # {{name}} placeholders
//! text = { file = "inputs/article.md" }        # or a string; --text / --text-file set it
//! [prompts]
//! tldr = "Summarize:\n\n{{text}}"
//! strict = { text = "…", temperature = 0.2 }   # a prompt with its own settings
//! [run]
//! prompts = ["tldr", "strict,tldr"]            # "a,b" joins a and b with a blank line
//! ```

use super::settings::Overrides;
use super::vars;
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// What is wrong with a prompt-set file, and where.
#[derive(thiserror::Error, Debug, Clone, PartialEq)]
#[error("{}{}: {why}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct SpecError {
    pub path: PathBuf,
    /// 1-based line, when the error has one.
    pub line: Option<usize>,
    pub why: String,
}

/// A model named in the file (or on the command line, without a line).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub spec: String,
    pub line: Option<usize>,
}

/// One `[run]` entry: one or more prompts joined, placeholders filled.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// As written in `[run].prompts` (`"think,tldr"`), or the prompt's key.
    pub name: String,
    /// The prompt keys it joins, in order.
    pub parts: Vec<String>,
    /// The user message: the parts' templates joined by a blank line, then rendered.
    pub prompt: String,
    /// The parts' own settings, later parts winning.
    pub overrides: Overrides,
    /// Where the entry is written (the `[run]` line, or the prompt's own line).
    pub line: usize,
}

/// A prompt set that parsed and passed every check.
#[derive(Clone, Debug)]
pub struct ValidSpec {
    pub path: PathBuf,
    pub name: String,
    pub models: Vec<ModelSpec>,
    pub defaults: Overrides,
    pub entries: Vec<Entry>,
    /// Line of each key set in `[defaults]`.
    defaults_lines: HashMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Option<Spanned<String>>,
    models: Option<Vec<Spanned<String>>>,
    defaults: Option<Spanned<Overrides>>,
    vars: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
    prompts: Option<BTreeMap<Spanned<String>, Spanned<toml::Value>>>,
    run: Option<Spanned<RawRun>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    prompts: Vec<Spanned<String>>,
}

struct Prompt {
    template: String,
    overrides: Overrides,
    line: usize,
}

/// Byte offset → 1-based line.
fn line_at(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The key of the `key = value` line holding `offset`, if it is one.
fn key_on_line(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty() && !k.starts_with('[')).then(|| k.to_string())
}

/// The line of each `key =` written inside `span`.
fn key_lines(text: &str, span: Range<usize>) -> HashMap<String, usize> {
    let first = line_at(text, span.start);
    let body = &text[span.start.min(text.len())..span.end.min(text.len())];
    let mut out = HashMap::new();
    for (i, l) in body.lines().enumerate() {
        if let Some((k, _)) = l.split_once('=') {
            let k = k.trim().trim_matches('"');
            out.entry(k.to_string()).or_insert(first + i);
        }
    }
    out
}

struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: Option<Range<usize>>, why: impl Into<String>) -> SpecError {
        SpecError {
            path: self.path.to_path_buf(),
            line: span.map(|s| line_at(self.text, s.start)),
            why: why.into(),
        }
    }

    fn line(&self, span: Range<usize>) -> usize {
        line_at(self.text, span.start)
    }
}

impl ValidSpec {
    /// Read and check `path`. `text` (from `--text` / `--text-file`) replaces `[vars].text`.
    pub fn load(path: &Path, text: Option<String>) -> Result<ValidSpec, SpecError> {
        let src = std::fs::read_to_string(path).map_err(|e| SpecError {
            path: path.to_path_buf(),
            line: None,
            why: format!("cannot read the prompt-set file: {e}"),
        })?;
        Self::parse(path, &src, text)
    }

    /// Check `src`, the contents of `path` (relative `{ file = … }` paths start at its folder).
    pub fn parse(path: &Path, src: &str, text: Option<String>) -> Result<ValidSpec, SpecError> {
        let cx = Ctx { path, text: src };
        let raw: RawSpec = toml::from_str(src).map_err(|e: toml::de::Error| {
            let msg = e.message().trim().replace('\n', " ");
            let key = e.span().and_then(|s| key_on_line(src, s.start));
            match key {
                Some(k) if !msg.contains(&k) => cx.err(e.span(), format!("`{k}`: {msg}")),
                _ => cx.err(e.span(), msg),
            }
        })?;

        let name = match &raw.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                return Err(cx.err(Some(n.span()), "`name` is empty; give the set a name"))
            }
            Some(n) => n.get_ref().trim().to_string(),
            None => path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "batch".into()),
        };
        let mut models = Vec::new();
        for m in raw.models.iter().flatten() {
            if m.get_ref().trim().is_empty() {
                return Err(cx.err(Some(m.span()), "`models` has an empty name"));
            }
            models.push(ModelSpec {
                spec: m.get_ref().trim().to_string(),
                line: Some(cx.line(m.span())),
            });
        }
        let (defaults, defaults_lines) = match raw.defaults {
            Some(d) => {
                let lines = key_lines(src, d.span());
                (d.into_inner(), lines)
            }
            None => Default::default(),
        };

        let vars = read_vars(&cx, raw.vars.unwrap_or_default(), text)?;
        let prompts = read_prompts(&cx, raw.prompts.unwrap_or_default())?;
        let entries = match raw.run {
            Some(run) => run_entries(&cx, run, &prompts, &vars)?,
            None => {
                // Every prompt on its own, in the order of the file.
                let mut keys: Vec<(&String, usize)> =
                    prompts.iter().map(|(k, p)| (k, p.line)).collect();
                keys.sort_by_key(|&(_, line)| line);
                keys.into_iter()
                    .map(|(k, line)| entry(&cx, k, vec![k.clone()], line, &prompts, &vars))
                    .collect::<Result<_, _>>()?
            }
        };
        Ok(ValidSpec {
            path: path.to_path_buf(),
            name,
            models,
            defaults,
            entries,
            defaults_lines,
        })
    }

    /// The line that set `key` for `entry` (its prompt's own value, else `[defaults]`).
    pub fn line_of(&self, key: &str, entry: &Entry) -> Option<usize> {
        if entry.overrides.sets(key) {
            Some(entry.line)
        } else {
            self.defaults_lines.get(key).copied()
        }
    }

    /// An error at `line` of this file.
    pub fn error(&self, line: Option<usize>, why: impl Into<String>) -> SpecError {
        SpecError {
            path: self.path.clone(),
            line,
            why: why.into(),
        }
    }
}

fn read_vars(
    cx: &Ctx,
    raw: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
    text: Option<String>,
) -> Result<BTreeMap<String, String>, SpecError> {
    let base = cx.path.parent().unwrap_or(Path::new("."));
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let key = k.get_ref().clone();
        if key == "text" && text.is_some() {
            continue;
        }
        let span = Some(k.span());
        let value = match v.into_inner() {
            toml::Value::String(s) => s,
            toml::Value::Table(mut t) => {
                let file = match t.remove("file") {
                    Some(toml::Value::String(f)) if t.is_empty() => f,
                    _ => {
                        return Err(cx.err(
                            span,
                            format!(
                                "[vars].{key}: a variable is a string or {{ file = \"path\" }}"
                            ),
                        ))
                    }
                };
                let p = base.join(&file);
                std::fs::read_to_string(&p).map_err(|e| {
                    cx.err(
                        span,
                        format!("[vars].{key}: cannot read {}: {e}", p.display()),
                    )
                })?
            }
            other => {
                return Err(cx.err(
                    span,
                    format!(
                        "[vars].{key}: a variable is a string or {{ file = \"path\" }}, not a {}",
                        other.type_str()
                    ),
                ))
            }
        };
        out.insert(key, value);
    }
    if let Some(t) = text {
        out.insert("text".into(), t);
    }
    Ok(out)
}

fn read_prompts(
    cx: &Ctx,
    raw: BTreeMap<Spanned<String>, Spanned<toml::Value>>,
) -> Result<BTreeMap<String, Prompt>, SpecError> {
    if raw.is_empty() {
        return Err(cx.err(
            None,
            "no prompts: add a [prompts] table, e.g. tldr = \"Summarize:\\n\\n{{text}}\"",
        ));
    }
    let mut out = BTreeMap::new();
    for (k, v) in raw {
        let key = k.get_ref().clone();
        let span = Some(k.span());
        let (template, overrides) = match v.into_inner() {
            toml::Value::String(s) => (s, Overrides::default()),
            toml::Value::Table(mut t) => {
                let text = match t.remove("text") {
                    Some(toml::Value::String(s)) => s,
                    _ => {
                        return Err(cx.err(
                            span,
                            format!("[prompts].{key}: a prompt table needs `text = \"…\"`"),
                        ))
                    }
                };
                let o = Overrides::deserialize(toml::Value::Table(t))
                    .map_err(|e| cx.err(span.clone(), format!("[prompts].{key}: {e}")))?;
                (text, o)
            }
            other => {
                return Err(cx.err(
                    span,
                    format!(
                        "[prompts].{key}: a prompt is a string or a table with `text`, not a {}",
                        other.type_str()
                    ),
                ))
            }
        };
        if template.trim().is_empty() {
            return Err(cx.err(span, format!("[prompts].{key}: the prompt is empty")));
        }
        let line = cx.line(k.span());
        out.insert(
            key,
            Prompt {
                template,
                overrides,
                line,
            },
        );
    }
    Ok(out)
}

fn run_entries(
    cx: &Ctx,
    run: Spanned<RawRun>,
    prompts: &BTreeMap<String, Prompt>,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<Entry>, SpecError> {
    let run_span = run.span();
    let list = run.into_inner().prompts;
    if list.is_empty() {
        return Err(cx.err(
            Some(run_span),
            "[run].prompts is empty; list prompt names, or remove [run] to run every prompt",
        ));
    }
    let mut out: Vec<Entry> = Vec::new();
    for e in list {
        let line = cx.line(e.span());
        let written = e.get_ref().trim().to_string();
        let parts: Vec<String> = written.split(',').map(|p| p.trim().to_string()).collect();
        for p in &parts {
            if p.is_empty() {
                return Err(cx.err(
                    Some(e.span()),
                    format!("[run].prompts: `{written}` has an empty prompt name"),
                ));
            }
            if !prompts.contains_key(p) {
                let known: Vec<&str> = prompts.keys().map(String::as_str).collect();
                return Err(cx.err(
                    Some(e.span()),
                    format!(
                        "[run].prompts: `{written}` names prompt `{p}`, which [prompts] does not define (defined: {})",
                        known.join(", ")
                    ),
                ));
            }
        }
        let name = parts.join(",");
        if out.iter().any(|o| o.name == name) {
            return Err(cx.err(
                Some(e.span()),
                format!("[run].prompts: `{name}` is listed twice"),
            ));
        }
        out.push(entry(cx, &name, parts, line, prompts, vars)?);
    }
    Ok(out)
}

fn entry(
    cx: &Ctx,
    name: &str,
    parts: Vec<String>,
    line: usize,
    prompts: &BTreeMap<String, Prompt>,
    vars: &BTreeMap<String, String>,
) -> Result<Entry, SpecError> {
    let mut overrides = Overrides::default();
    let mut templates = Vec::with_capacity(parts.len());
    for p in &parts {
        let prompt = &prompts[p];
        if let Some(v) = vars::missing(&prompt.template, vars).first() {
            let hint = if *v == "text" {
                "; define it in [vars], or pass --text / --text-file"
            } else {
                "; define it in [vars]"
            };
            return Err(SpecError {
                path: cx.path.to_path_buf(),
                line: Some(prompt.line),
                why: format!("[prompts].{p}: `{{{{{v}}}}}` has no value{hint}"),
            });
        }
        overrides = overrides.then(&prompt.overrides);
        templates.push(prompt.template.as_str());
    }
    Ok(Entry {
        name: name.to_string(),
        prompt: vars::render(&templates.join("\n\n"), vars),
        parts,
        overrides,
        line,
    })
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
