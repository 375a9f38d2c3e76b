//! Remote backends: the `[[backends]]` tables of config.toml, checked once at load.
//!
//! ```toml
//! [[backends]]
//! name = "vllm"                          # what `-m vllm/MODEL` starts with
//! base_url = "http://gpu-box:8000/v1"    # as the OpenAI SDK takes it
//! api_key_env = "VLLM_API_KEY"           # the key is read from this variable, never the file
//! kind = "openai"                        # or "ollama" (base_url http://host:11434)
//! ```

use serde::Deserialize;

/// The API a backend speaks.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// `/v1/chat/completions` and `/v1/completions` (LM Studio, llama-server, vLLM, TGI,
    /// `lmwb serve`, OpenAI itself).
    #[default]
    Openai,
    /// Ollama's `/api/chat` and `/api/generate`.
    Ollama,
}

impl BackendKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Openai => "openai",
            BackendKind::Ollama => "ollama",
        }
    }
}

/// One `[[backends]]` table as written.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    pub name: String,
    pub base_url: String,
    /// The environment variable holding the API key (sent as `Authorization: Bearer`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub kind: BackendKind,
    /// Send the samplers OpenAI itself does not know (`top_k`, `min_p`, `repeat_penalty`)
    /// when they matter. llama-server, vLLM, LM Studio and `lmwb serve` take them; set it to
    /// false for api.openai.com.
    #[serde(default = "yes")]
    pub sampling_extensions: bool,
    /// Seconds to wait for a connection (default 10).
    #[serde(default = "ten")]
    pub connect_timeout: f64,
}

fn yes() -> bool {
    true
}

fn ten() -> f64 {
    10.0
}

impl BackendConfig {
    /// The base URL with no trailing slash; an OpenAI URL with no path gets `/v1`, as every
    /// OpenAI-compatible server serves its API there.
    pub fn base(&self) -> String {
        let b = self.base_url.trim_end_matches('/').to_string();
        let after_scheme = b.split_once("://").map(|(_, r)| r).unwrap_or(&b);
        if self.kind == BackendKind::Openai && !after_scheme.contains('/') {
            format!("{b}/v1")
        } else {
            b
        }
    }

    /// The API key, when `api_key_env` names a variable that is set.
    pub fn api_key(&self) -> Result<Option<String>, String> {
        let Some(var) = &self.api_key_env else {
            return Ok(None);
        };
        match std::env::var(var) {
            Ok(k) if !k.trim().is_empty() => Ok(Some(k.trim().to_string())),
            _ => Err(format!(
                "backend `{}` takes its API key from ${var}, which is not set; export {var}=KEY, or remove api_key_env from its [[backends]] table",
                self.name
            )),
        }
    }
}

/// Check every backend: a usable name (unique, no `/`), an http(s) URL.
pub fn check(backends: &[BackendConfig]) -> Result<(), String> {
    for (i, b) in backends.iter().enumerate() {
        let at = format!("[[backends]] #{} (`{}`)", i + 1, b.name);
        if b.name.is_empty() || b.name.contains('/') || b.name.chars().any(char::is_whitespace) {
            return Err(format!(
                "{at}: `name` must be a non-empty word without `/` or spaces (it is what `-m NAME/MODEL` starts with)"
            ));
        }
        if backends[..i].iter().any(|o| o.name == b.name) {
            return Err(format!(
                "{at}: another backend has the same name; names must be unique"
            ));
        }
        let url = reqwest::Url::parse(&b.base_url).map_err(|e| {
            format!(
                "{at}: base_url `{}` is not a URL ({e}); write e.g. http://localhost:8080/v1",
                b.base_url
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "{at}: base_url `{}` must be an http:// or https:// URL with a host",
                b.base_url
            ));
        }
        if !(b.connect_timeout.is_finite() && b.connect_timeout > 0.0) {
            return Err(format!(
                "{at}: connect_timeout must be a number of seconds above 0"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(name: &str, url: &str, kind: BackendKind) -> BackendConfig {
        BackendConfig {
            name: name.into(),
            base_url: url.into(),
            api_key_env: None,
            kind,
            sampling_extensions: true,
            connect_timeout: 10.0,
        }
    }

    #[test]
    fn base_urls_get_v1_only_when_they_have_no_path() {
        let o = BackendKind::Openai;
        assert_eq!(b("a", "http://h:1", o).base(), "http://h:1/v1");
        assert_eq!(b("a", "http://h:1/", o).base(), "http://h:1/v1");
        assert_eq!(b("a", "http://h:1/v1/", o).base(), "http://h:1/v1");
        assert_eq!(
            b("a", "https://h/api/openai", o).base(),
            "https://h/api/openai"
        );
        assert_eq!(
            b("a", "http://h:11434/", BackendKind::Ollama).base(),
            "http://h:11434"
        );
    }

    #[test]
    fn bad_backends_are_named() {
        let o = BackendKind::Openai;
        let e = check(&[b("a/b", "http://h", o)]).unwrap_err();
        assert!(e.contains("a/b") && e.contains("`/`"), "{e}");
        let e = check(&[b("a", "http://h", o), b("a", "http://g", o)]).unwrap_err();
        assert!(e.contains("#2") && e.contains("unique"), "{e}");
        let e = check(&[b("a", "localhost:8080", o)]).unwrap_err();
        assert!(e.contains("localhost:8080"), "{e}");
        let e = check(&[b("a", "ftp://h", o)]).unwrap_err();
        assert!(e.contains("http://"), "{e}");
        assert!(check(&[b("a", "http://h:1/v1", o), b("c", "https://x", o)]).is_ok());
    }

    #[test]
    fn a_missing_key_variable_says_which() {
        let mut c = b("a", "http://h", BackendKind::Openai);
        c.api_key_env = Some("LMWB_TEST_SURELY_UNSET_KEY".into());
        let e = c.api_key().unwrap_err();
        assert!(e.contains("$LMWB_TEST_SURELY_UNSET_KEY"), "{e}");
    }
}
