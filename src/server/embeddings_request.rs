//! Embedding request bodies (OpenAI `/v1/embeddings`, Ollama `/api/embed` and the legacy
//! `/api/embeddings`), checked at the edge: a wrong type or an empty input is a 400 naming
//! the field, and a field lmwb cannot honour is refused, never ignored.

use super::error::ApiError;
use super::openai::{model_of, object};
use crate::engine::embed::{EmbedError, EmbedInput};
use serde_json::{Map, Value};

/// OpenAI's limit on inputs per request.
pub const MAX_INPUTS: usize = 2048;

/// A checked embedding request.
#[derive(Debug, PartialEq)]
pub struct ValidEmbed {
    pub model: String,
    pub inputs: Vec<EmbedInput>,
    /// The input was one string or one token list: errors name `input`, not `input[0]`.
    pub single: bool,
    /// OpenAI `encoding_format: "base64"`.
    pub base64: bool,
    /// Asked-for vector length: it must equal the model's (checked once the model is found).
    pub dimensions: Option<u64>,
    /// Cut inputs past the model's limit instead of refusing them (Ollama's default).
    pub truncate: bool,
    /// Ollama's `options.num_ctx`: the request's own token limit (checked against the model's).
    pub num_ctx: Option<u64>,
}

fn dimensions_of(map: &Map<String, Value>) -> Result<Option<u64>, ApiError> {
    match map.get("dimensions") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(ApiError::invalid(
                "dimensions",
                "`dimensions` must be a positive integer",
            )),
        },
    }
}

const INPUT_SHAPES: &str =
    "a string, a list of strings, a list of token ids, or a list of token-id lists";

fn token_ids(v: &[Value], at: &str) -> Result<Vec<u32>, ApiError> {
    v.iter()
        .map(|x| {
            x.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| {
                    ApiError::invalid(
                        at,
                        format!("`{at}` must hold token ids: non-negative integers"),
                    )
                })
        })
        .collect()
}

fn not_empty(input: &EmbedInput, at: &str) -> Result<(), ApiError> {
    let empty = match input {
        EmbedInput::Text(s) => s.is_empty(),
        EmbedInput::Tokens(t) => t.is_empty(),
    };
    if empty {
        return Err(ApiError::invalid(
            at,
            format!("`{at}` is empty: every input needs some text or token ids"),
        ));
    }
    Ok(())
}

fn too_many(n: usize) -> Result<(), ApiError> {
    if n > MAX_INPUTS {
        return Err(ApiError::invalid(
            "input",
            format!("`input` has {n} items; send at most {MAX_INPUTS} per request"),
        ));
    }
    Ok(())
}

/// OpenAI's `input`: the inputs, and whether it was a single one.
fn openai_input(v: Option<&Value>) -> Result<(Vec<EmbedInput>, bool), ApiError> {
    let bad = || ApiError::invalid("input", format!("`input` must be {INPUT_SHAPES}"));
    let (inputs, single) = match v {
        None | Some(Value::Null) => return Err(ApiError::invalid("input", "`input` is required")),
        Some(Value::String(s)) => (vec![EmbedInput::Text(s.clone())], true),
        Some(Value::Array(a)) if a.is_empty() => {
            return Err(ApiError::invalid(
                "input",
                "`input` is an empty list: send at least one input",
            ))
        }
        Some(Value::Array(a)) => match &a[0] {
            Value::String(_) => {
                too_many(a.len())?;
                let texts = a.iter().enumerate().map(|(i, x)| match x {
                    Value::String(s) => Ok(EmbedInput::Text(s.clone())),
                    _ => Err(ApiError::invalid(
                        format!("input[{i}]"),
                        format!("`input[{i}]` must be a string like the other items"),
                    )),
                });
                (texts.collect::<Result<_, _>>()?, false)
            }
            Value::Number(_) => (vec![EmbedInput::Tokens(token_ids(a, "input")?)], true),
            Value::Array(_) => {
                too_many(a.len())?;
                let lists = a.iter().enumerate().map(|(i, x)| {
                    let at = format!("input[{i}]");
                    match x {
                        Value::Array(ids) => Ok(EmbedInput::Tokens(token_ids(ids, &at)?)),
                        _ => Err(ApiError::invalid(
                            &at,
                            format!("`{at}` must be a list of token ids like the other items"),
                        )),
                    }
                });
                (lists.collect::<Result<_, _>>()?, false)
            }
            _ => return Err(bad()),
        },
        Some(_) => return Err(bad()),
    };
    for (i, input) in inputs.iter().enumerate() {
        let at = if single {
            "input".to_string()
        } else {
            format!("input[{i}]")
        };
        not_empty(input, &at)?;
    }
    Ok((inputs, single))
}

/// `POST /v1/embeddings`.
pub fn openai(body: &Value) -> Result<ValidEmbed, ApiError> {
    let map = object(body)?;
    const FIELDS: &[&str] = &["model", "input", "encoding_format", "dimensions", "user"];
    if let Some(k) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ApiError::invalid(
            k.clone(),
            format!("Unrecognized request argument supplied: {k}"),
        ));
    }
    let model = model_of(map)?;
    let (inputs, single) = openai_input(map.get("input"))?;
    let base64 = match map.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) if s == "float" => false,
        Some(Value::String(s)) if s == "base64" => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "encoding_format",
                "`encoding_format` must be \"float\" or \"base64\"",
            ))
        }
    };
    if map
        .get("user")
        .is_some_and(|u| !(u.is_null() || u.is_string()))
    {
        return Err(ApiError::invalid("user", "`user` must be a string"));
    }
    Ok(ValidEmbed {
        model,
        inputs,
        single,
        base64,
        dimensions: dimensions_of(map)?,
        truncate: false,
        num_ctx: None,
    })
}

/// Ollama's options that bear on generation only: accepted on the embedding routes (Ollama
/// takes them there too) and without effect on the vectors.
const GENERATION_OPTIONS: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "typical_p",
    "tfs_z",
    "repeat_penalty",
    "repeat_last_n",
    "presence_penalty",
    "frequency_penalty",
    "mirostat",
    "mirostat_tau",
    "mirostat_eta",
    "penalize_newline",
    "seed",
    "num_predict",
    "num_keep",
    "stop",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "num_thread",
    "use_mmap",
    "use_mlock",
    "low_vram",
    "numa",
];

/// Ollama's `options`, `keep_alive`: checked; only `num_ctx` matters for embeddings.
fn ollama_common(map: &Map<String, Value>) -> Result<Option<u64>, ApiError> {
    if let Some(v) = map.get("keep_alive") {
        if !(v.is_null() || v.is_string() || v.is_number()) {
            return Err(ApiError::invalid(
                "keep_alive",
                "`keep_alive` must be a duration string (\"5m\") or a number of seconds",
            ));
        }
    }
    let opts = match map.get("options") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(o)) => o,
        Some(_) => return Err(ApiError::invalid("options", "`options` must be an object")),
    };
    let mut num_ctx = None;
    for (k, v) in opts.iter().filter(|(_, v)| !v.is_null()) {
        if k == "num_ctx" {
            num_ctx = Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::invalid(
                    "options.num_ctx",
                    "`options.num_ctx` must be a positive integer",
                )
            })?);
        } else if !GENERATION_OPTIONS.contains(&k.as_str()) {
            return Err(ApiError::invalid(
                format!("options.{k}"),
                format!("unknown option `{k}`"),
            ));
        }
    }
    Ok(num_ctx)
}

fn check_keys(map: &Map<String, Value>, allowed: &[&str]) -> Result<(), ApiError> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(ApiError::invalid(
            k.clone(),
            format!("unknown field `{k}` in the request"),
        )),
        None => Ok(()),
    }
}

/// `POST /api/embed`. No input (or an empty one) only loads the model, as in Ollama: it
/// answers with no embeddings.
pub fn ollama_embed(body: &Value) -> Result<ValidEmbed, ApiError> {
    let map = object(body)?;
    check_keys(
        map,
        &[
            "model",
            "input",
            "truncate",
            "options",
            "keep_alive",
            "dimensions",
        ],
    )?;
    let model = model_of(map)?;
    let bad = || ApiError::invalid("input", "`input` must be a string or a list of strings");
    let (inputs, single) = match map.get("input") {
        None | Some(Value::Null) => (vec![], false),
        Some(Value::String(s)) if s.is_empty() => (vec![], false),
        Some(Value::String(s)) => (vec![EmbedInput::Text(s.clone())], true),
        Some(Value::Array(a)) => {
            too_many(a.len())?;
            let mut out = Vec::with_capacity(a.len());
            for (i, x) in a.iter().enumerate() {
                let at = format!("input[{i}]");
                let Value::String(s) = x else {
                    return Err(ApiError::invalid(&at, format!("`{at}` must be a string")));
                };
                let input = EmbedInput::Text(s.clone());
                not_empty(&input, &at)?;
                out.push(input);
            }
            (out, false)
        }
        Some(_) => return Err(bad()),
    };
    let truncate = match map.get("truncate") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::invalid(
                "truncate",
                "`truncate` must be a boolean",
            ))
        }
    };
    Ok(ValidEmbed {
        model,
        inputs,
        single,
        base64: false,
        dimensions: dimensions_of(map)?,
        truncate,
        num_ctx: ollama_common(map)?,
    })
}

/// `POST /api/embeddings` (Ollama's legacy route): one `prompt`; an empty one only loads
/// the model. Ollama truncates here.
pub fn ollama_legacy(body: &Value) -> Result<ValidEmbed, ApiError> {
    let map = object(body)?;
    check_keys(map, &["model", "prompt", "options", "keep_alive"])?;
    let model = model_of(map)?;
    let inputs = match map.get("prompt") {
        None | Some(Value::Null) => vec![],
        Some(Value::String(s)) if s.is_empty() => vec![],
        Some(Value::String(s)) => vec![EmbedInput::Text(s.clone())],
        Some(_) => return Err(ApiError::invalid("prompt", "`prompt` must be a string")),
    };
    Ok(ValidEmbed {
        model,
        inputs,
        single: true,
        base64: false,
        dimensions: None,
        truncate: true,
        num_ctx: ollama_common(map)?,
    })
}

/// An embedder's refusal as a 400 naming the input at fault (`input` when there was one,
/// `input[i]` in a list, `field` standing for `input` on the legacy route).
pub fn embed_error(e: EmbedError, single: bool, field: &str) -> ApiError {
    let at = |i: usize| {
        if single {
            field.to_string()
        } else {
            format!("{field}[{i}]")
        }
    };
    let msg = e.to_string();
    match e {
        EmbedError::NoInput => ApiError::invalid(field, format!("`{field}` is empty")),
        EmbedError::Empty { index }
        | EmbedError::TokenOutOfRange { index, .. }
        | EmbedError::Tokenizer { index, .. } => ApiError::invalid(at(index), msg),
        EmbedError::TooLong { index, .. } => ApiError {
            code: Some("context_length_exceeded"),
            ..ApiError::invalid(at(index), msg)
        },
        EmbedError::Compute(_) => ApiError::server(msg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(r: Result<ValidEmbed, ApiError>) -> String {
        let e = r.expect_err("an error");
        assert_eq!(e.status, 400, "{e:?}");
        e.param.unwrap_or_default()
    }

    #[test]
    fn openai_inputs_of_every_shape() {
        let v = openai(&json!({"model": "m", "input": "hi"})).unwrap();
        assert_eq!((v.inputs.len(), v.single, v.base64), (1, true, false));
        let v = openai(&json!({"model": "m", "input": ["a", "b"], "encoding_format": "base64"}))
            .unwrap();
        assert_eq!((v.inputs.len(), v.single, v.base64), (2, false, true));
        let v = openai(&json!({"model": "m", "input": [101, 7, 102]})).unwrap();
        assert_eq!(v.inputs, vec![EmbedInput::Tokens(vec![101, 7, 102])]);
        let v = openai(&json!({"model": "m", "input": [[1], [2, 3]], "user": "u"})).unwrap();
        assert_eq!(v.inputs[1], EmbedInput::Tokens(vec![2, 3]));
    }

    #[test]
    fn openai_refusals_name_the_field() {
        let m = |extra: Value| {
            let mut b = json!({"model": "m", "input": "x"});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            openai(&b)
        };
        assert_eq!(param(m(json!({"input": ""}))), "input");
        assert_eq!(param(m(json!({"input": []}))), "input");
        assert_eq!(param(m(json!({"input": ["a", ""]}))), "input[1]");
        assert_eq!(param(m(json!({"input": ["a", 3]}))), "input[1]");
        assert_eq!(param(m(json!({"input": [[1], []]}))), "input[1]");
        assert_eq!(param(m(json!({"input": [1, -2]}))), "input");
        assert_eq!(param(m(json!({"input": 5}))), "input");
        assert_eq!(param(m(json!({"input": [{"a": 1}]}))), "input");
        assert_eq!(param(m(json!({"input": null}))), "input");
        assert_eq!(
            param(m(json!({"encoding_format": "hex"}))),
            "encoding_format"
        );
        assert_eq!(param(m(json!({"dimensions": "384"}))), "dimensions");
        assert_eq!(param(m(json!({"dimensions": 0}))), "dimensions");
        assert_eq!(param(m(json!({"user": 1}))), "user");
        assert_eq!(param(m(json!({"model": 1}))), "model");
        assert_eq!(param(m(json!({"stream": true}))), "stream");
        assert_eq!(param(openai(&json!({"input": "x"}))), "model");
        let many: Vec<&str> = vec!["a"; MAX_INPUTS + 1];
        assert_eq!(param(m(json!({ "input": many }))), "input");
    }

    #[test]
    fn ollama_bodies() {
        let v = ollama_embed(
            &json!({"model": "m", "input": ["a", "b"], "truncate": false,
            "keep_alive": "5m", "options": {"temperature": 0, "num_ctx": 128, "mirostat": null}}),
        )
        .unwrap();
        assert_eq!(
            (v.inputs.len(), v.truncate, v.num_ctx),
            (2, false, Some(128))
        );
        let v = ollama_embed(&json!({"model": "m"})).unwrap();
        assert!(v.inputs.is_empty() && v.truncate);
        assert_eq!(
            param(ollama_embed(&json!({"model": "m", "input": 3}))),
            "input"
        );
        assert_eq!(
            param(ollama_embed(&json!({"model": "m", "input": [""]}))),
            "input[0]"
        );
        assert_eq!(
            param(ollama_embed(&json!({"model": "m", "truncate": "no"}))),
            "truncate"
        );
        assert_eq!(
            param(ollama_embed(&json!({"model": "m", "options": {"nope": 1}}))),
            "options.nope"
        );
        assert_eq!(
            param(ollama_embed(&json!({"model": "m", "options": 1}))),
            "options"
        );
        assert_eq!(
            param(ollama_embed(&json!({"model": "m", "keep_alive": []}))),
            "keep_alive"
        );
        assert_eq!(
            param(ollama_embed(&json!({"model": "m", "prompt": "x"}))),
            "prompt"
        );
        let v = ollama_legacy(&json!({"model": "m", "prompt": "hi"})).unwrap();
        assert_eq!(v.inputs, vec![EmbedInput::Text("hi".into())]);
        assert_eq!(
            param(ollama_legacy(&json!({"model": "m", "prompt": 1}))),
            "prompt"
        );
    }

    #[test]
    fn embedder_refusals_map_to_400_naming_the_input() {
        let e = embed_error(
            EmbedError::TooLong {
                index: 2,
                tokens: 300,
                limit: 256,
            },
            false,
            "input",
        );
        assert_eq!(
            (e.status.as_u16(), e.param.as_deref()),
            (400, Some("input[2]"))
        );
        assert_eq!(e.code, Some("context_length_exceeded"));
        assert!(e.message.contains("256"), "{}", e.message);
        let e = embed_error(EmbedError::Empty { index: 0 }, true, "prompt");
        assert_eq!(e.param.as_deref(), Some("prompt"));
        let e = embed_error(EmbedError::Compute("boom".into()), true, "input");
        assert_eq!(e.status.as_u16(), 500);
    }
}
