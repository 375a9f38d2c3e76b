//! The embedding routes on the server's [`EmbeddingClient`]s: OpenAI `/v1/embeddings`
//! (floats or base64), Ollama `/api/embed` and its legacy `/api/embeddings`. The forward
//! runs on a blocking thread, inside the server's concurrency limit.

use super::embeddings_request::{self as request, embed_error, ValidEmbed};
use super::error::{body_rejection, parse_json, ApiError, ApiJson};
use super::{ServedEmbedder, ServerState};
use crate::engine::embed::{EmbeddingClient, Embeddings};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

type Shared = State<Arc<ServerState>>;
type RawBody = Result<Bytes, BytesRejection>;

/// An embedding model as `/v1/models` lists it.
pub fn openai_model(e: &ServedEmbedder) -> Value {
    json!({"id": e.id, "object": "model", "created": e.created, "owned_by": "lmwb"})
}

/// `dimensions` other than the model's own: refused (lmwb does not shorten vectors).
fn check_dimensions(v: &ValidEmbed, e: &ServedEmbedder) -> Result<(), ApiError> {
    let dims = e.embedder.dims();
    match v.dimensions {
        Some(d) if d != dims as u64 => Err(ApiError {
            code: Some("unsupported_parameter"),
            ..ApiError::invalid(
                "dimensions",
                format!(
                    "`dimensions` = {d} is not supported: `{}` makes {dims}-dimensional vectors and lmwb does not shorten them; leave `dimensions` out or set it to {dims}",
                    e.id
                ),
            )
        }),
        _ => Ok(()),
    }
}

/// Ollama's `options.num_ctx` below the model's limit: refused (lmwb cuts only at the
/// model's own limit).
fn check_num_ctx(v: &ValidEmbed, e: &ServedEmbedder) -> Result<(), ApiError> {
    let max = e.embedder.max_tokens();
    match v.num_ctx {
        Some(n) if n < max as u64 => Err(ApiError {
            code: Some("unsupported_parameter"),
            ..ApiError::invalid(
                "options.num_ctx",
                format!(
                    "`options.num_ctx` = {n} is below the {max} tokens `{}` reads, and lmwb does not cut inputs shorter than the model's limit; leave it out",
                    e.id
                ),
            )
        }),
        _ => Ok(()),
    }
}

/// Embed off the async runtime, holding a place in the server's limiter while it runs.
async fn run(
    s: &ServerState,
    e: &ServedEmbedder,
    v: ValidEmbed,
    field: &str,
) -> Result<Embeddings, ApiError> {
    if v.inputs.is_empty() {
        return Ok(Embeddings {
            vectors: vec![],
            prompt_tokens: 0,
        });
    }
    let slot = s.limiter.admit().await?;
    let client: Arc<dyn EmbeddingClient> = e.embedder.clone();
    let (inputs, truncate) = (v.inputs, v.truncate);
    let result = tokio::task::spawn_blocking(move || client.embed(&inputs, truncate))
        .await
        .map_err(|err| {
            tracing::error!(%err, "the embedding task failed");
            ApiError::server("internal error: the embedding task failed (see lmwb's log)")
        })?;
    drop(slot);
    let out = result.map_err(|err| embed_error(err, v.single, field))?;
    s.metrics.add_prompt_tokens(out.prompt_tokens);
    super::request_log::note_prompt_tokens(out.prompt_tokens);
    Ok(out)
}

/// A vector as OpenAI's base64: its little-endian f32 bytes.
pub fn base64_of(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

// Typed bodies, so vectors serialize as f32 (`0.0904762`), not widened to f64 digits.

#[derive(Serialize)]
#[serde(untagged)]
enum Vector<'a> {
    Floats(&'a [f32]),
    Base64(String),
}

#[derive(Serialize)]
struct Item<'a> {
    object: &'static str,
    index: usize,
    embedding: Vector<'a>,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: usize,
    total_tokens: usize,
}

#[derive(Serialize)]
struct OpenAiBody<'a> {
    object: &'static str,
    data: Vec<Item<'a>>,
    model: &'a str,
    usage: Usage,
}

#[derive(Serialize)]
struct OllamaBody<'a> {
    model: &'a str,
    embeddings: &'a [Vec<f32>],
    total_duration: u64,
    load_duration: u64,
    prompt_eval_count: usize,
}

#[derive(Serialize)]
struct LegacyBody<'a> {
    embedding: &'a [f32],
}

/// `POST /v1/embeddings`.
pub async fn openai(State(s): Shared, ApiJson(body): ApiJson<Value>) -> Result<Response, ApiError> {
    let v = request::openai(&body)?;
    let e = s.find_embedder(&v.model)?;
    check_dimensions(&v, &e)?;
    let base64 = v.base64;
    let out = run(&s, &e, v, "input").await?;
    let data = out
        .vectors
        .iter()
        .enumerate()
        .map(|(index, vec)| Item {
            object: "embedding",
            index,
            embedding: if base64 {
                Vector::Base64(base64_of(vec))
            } else {
                Vector::Floats(vec)
            },
        })
        .collect();
    let n = out.prompt_tokens;
    Ok(Json(OpenAiBody {
        object: "list",
        data,
        model: &e.id,
        usage: Usage {
            prompt_tokens: n,
            total_tokens: n,
        },
    })
    .into_response())
}

fn ns(t: Instant) -> u64 {
    t.elapsed().as_nanos() as u64
}

async fn ollama_embed(s: Arc<ServerState>, body: RawBody) -> Result<Response, ApiError> {
    let t = Instant::now();
    let v = request::ollama_embed(&parse_json(&body.map_err(body_rejection)?)?)?;
    let e = s.find_embedder(&v.model)?;
    check_dimensions(&v, &e)?;
    check_num_ctx(&v, &e)?;
    let out = run(&s, &e, v, "input").await?;
    Ok(Json(OllamaBody {
        model: &e.id,
        embeddings: &out.vectors,
        total_duration: ns(t),
        load_duration: 0,
        prompt_eval_count: out.prompt_tokens,
    })
    .into_response())
}

async fn ollama_legacy(s: Arc<ServerState>, body: RawBody) -> Result<Response, ApiError> {
    let v = request::ollama_legacy(&parse_json(&body.map_err(body_rejection)?)?)?;
    let e = s.find_embedder(&v.model)?;
    check_num_ctx(&v, &e)?;
    let out = run(&s, &e, v, "prompt").await?;
    let embedding = out.vectors.first().map_or(&[][..], Vec::as_slice);
    Ok(Json(LegacyBody { embedding }).into_response())
}

/// `POST /api/embed`, errors in Ollama's shape.
pub async fn ollama(State(s): Shared, body: RawBody) -> Response {
    ollama_embed(s, body)
        .await
        .unwrap_or_else(super::ollama::error_response)
}

/// `POST /api/embeddings` (legacy), errors in Ollama's shape.
pub async fn ollama_embeddings(State(s): Shared, body: RawBody) -> Response {
    ollama_legacy(s, body)
        .await
        .unwrap_or_else(super::ollama::error_response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_is_little_endian_f32() {
        use base64::Engine as _;
        let s = super::base64_of(&[1.0, -2.5]);
        let bytes = base64::engine::general_purpose::STANDARD.decode(s).unwrap();
        assert_eq!(
            bytes,
            [1.0f32.to_le_bytes(), (-2.5f32).to_le_bytes()].concat()
        );
    }
}
