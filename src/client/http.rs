//! A remote backend as a [`GenerationClient`]: the same requests and events as the
//! in-process engine, over HTTP to any OpenAI-compatible server or Ollama. Streams are
//! read as they arrive; cancelling closes the connection; the stats are measured here, on
//! the client side (TTFT from sending the request, decode rate between the first and the
//! last piece), with the token counts the server reports.

use super::backend::{BackendConfig, BackendKind};
use super::remote_error::RemoteError;
use super::wire::{self, Piece};
use super::GenerationClient;
use crate::engine::{
    CancelToken, EngineError, Event, FinishReason, GenerateRequest, Generation, Stats,
};
use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

/// A model a backend lists, with what its listing says about it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RemoteModel {
    pub id: String,
    pub context_length: Option<usize>,
    pub vocab_size: Option<usize>,
}

/// One backend's connection: its HTTP client and the runtime its requests run on.
#[derive(Clone)]
pub struct Connection {
    pub backend: Arc<BackendConfig>,
    base: String,
    key: Option<String>,
    http: reqwest::Client,
    rt: Arc<tokio::runtime::Runtime>,
}

impl Connection {
    pub fn new(backend: &BackendConfig) -> Result<Connection, RemoteError> {
        let refused = |why: String| RemoteError::Refused {
            backend: backend.name.clone(),
            why,
        };
        let key = backend.api_key().map_err(refused)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("lmwb-http")
            .enable_all()
            .build()
            .map_err(|e| refused(format!("cannot start the HTTP runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs_f64(backend.connect_timeout))
            .user_agent(concat!("lmwb/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| refused(format!("cannot build the HTTP client: {e}")))?;
        Ok(Connection {
            base: backend.base(),
            backend: Arc::new(backend.clone()),
            key,
            http,
            rt: Arc::new(rt),
        })
    }

    fn name(&self) -> String {
        self.backend.name.clone()
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn unreachable(&self, url: &str, e: &reqwest::Error) -> RemoteError {
        RemoteError::Unreachable {
            backend: self.name(),
            url: url.into(),
            why: reqwest_why(e),
        }
    }

    fn garbage(&self, url: &str, why: impl Into<String>) -> RemoteError {
        RemoteError::Garbage {
            backend: self.name(),
            url: url.into(),
            kind: match self.backend.kind {
                BackendKind::Openai => "OpenAI-compatible",
                BackendKind::Ollama => "Ollama",
            },
            why: why.into(),
        }
    }

    /// GET or POST a JSON document.
    async fn json(
        &self,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<serde_json::Value, RemoteError> {
        let url = self.url(path);
        let mut rb = match &body {
            Some(b) => self.http.post(&url).json(b),
            None => self.http.get(&url),
        };
        if let Some(k) = &self.key {
            rb = rb.bearer_auth(k);
        }
        let resp = rb
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| self.unreachable(&url, &e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| RemoteError::Cut {
            backend: self.name(),
            why: reqwest_why(&e),
        })?;
        if !status.is_success() {
            return Err(RemoteError::Status {
                backend: self.name(),
                url,
                status: status.as_u16(),
                message: wire::error_body(&text),
            });
        }
        serde_json::from_str(&text).map_err(|e| {
            self.garbage(
                &url,
                format!("the answer is not JSON ({e}): {}", wire::clip(&text)),
            )
        })
    }

    /// The models the backend lists (`/models`, or Ollama's `/api/tags`).
    pub fn models(&self) -> Result<Vec<RemoteModel>, RemoteError> {
        self.rt.block_on(self.list())
    }

    async fn list(&self) -> Result<Vec<RemoteModel>, RemoteError> {
        let (path, key, field) = match self.backend.kind {
            BackendKind::Openai => ("/models", "data", "id"),
            BackendKind::Ollama => ("/api/tags", "models", "name"),
        };
        let v = self.json(path, None).await?;
        let Some(items) = v.get(key).and_then(|d| d.as_array()) else {
            return Err(self.garbage(
                &self.url(path),
                format!("no `{key}` list in {}", wire::clip(&v.to_string())),
            ));
        };
        let num = |m: &serde_json::Value, keys: &[&str]| {
            keys.iter()
                .find_map(|k| m.get(*k).and_then(|x| x.as_u64()))
                .map(|n| n as usize)
        };
        Ok(items
            .iter()
            .filter_map(|m| {
                Some(RemoteModel {
                    id: m.get(field)?.as_str()?.to_string(),
                    // vLLM: max_model_len; lmwb and LM Studio: context_length.
                    context_length: num(
                        m,
                        &["context_length", "max_model_len", "max_context_length"],
                    ),
                    vocab_size: num(m, &["vocab_size"]),
                })
            })
            .collect())
    }

    /// Ollama's `/api/show` model_info: the context length and vocabulary size.
    async fn ollama_details(&self, model: &mut RemoteModel) {
        let Ok(v) = self
            .json("/api/show", Some(serde_json::json!({"model": model.id})))
            .await
        else {
            return;
        };
        let Some(info) = v.get("model_info").and_then(|i| i.as_object()) else {
            return;
        };
        let find = |suffix: &str| {
            info.iter()
                .find(|(k, _)| k.ends_with(suffix))
                .and_then(|(_, v)| v.as_u64())
                .map(|n| n as usize)
        };
        model.context_length = model.context_length.or(find(".context_length"));
        model.vocab_size = model.vocab_size.or(find(".vocab_size"));
    }
}

/// A reqwest error in a few words: what failed, and the innermost cause (`Connection
/// refused (os error 111)`), not the chain of wrappers.
pub(super) fn reqwest_why(e: &reqwest::Error) -> String {
    use std::error::Error;
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "reading the answer failed"
    } else {
        "the request failed"
    };
    let mut cause: Option<&dyn Error> = e.source();
    while let Some(next) = cause.and_then(|c| c.source()) {
        cause = Some(next);
    }
    match cause {
        Some(c) => format!("{what}: {c}"),
        None => format!("{what}: {e}"),
    }
}

/// A model behind a backend, as a [`GenerationClient`].
pub struct HttpClient {
    /// `BACKEND/MODEL`.
    name: String,
    conn: Connection,
    model: RemoteModel,
}

/// Token ids a benchmark draws below when the server does not list its vocabulary size.
pub const FALLBACK_VOCAB: usize = 256;

impl HttpClient {
    /// Whether the backend listed the model's vocabulary size (else token prompts use ids
    /// below [`FALLBACK_VOCAB`]).
    pub fn vocab_listed(&self) -> bool {
        self.model.vocab_size.is_some()
    }

    /// Connect to `model` on `backend`: the backend's listing is read, so a server that is
    /// down, a wrong URL or an unknown model is an error here, before any generation. An
    /// empty `model` picks the backend's only model.
    pub fn connect(backend: &BackendConfig, model: &str) -> Result<HttpClient, RemoteError> {
        let conn = Connection::new(backend)?;
        let listed = match conn.models() {
            Ok(l) => Some(l),
            // A server without a model listing (404) still generates.
            Err(RemoteError::Status { status: 404, .. }) if !model.is_empty() => None,
            Err(e) => return Err(e),
        };
        let names = |l: &[RemoteModel]| {
            if l.is_empty() {
                "nothing".to_string()
            } else {
                l.iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        };
        let mut picked = match &listed {
            None => RemoteModel {
                id: model.to_string(),
                context_length: None,
                vocab_size: None,
            },
            Some(l) if model.is_empty() => match l.as_slice() {
                [only] => only.clone(),
                _ => {
                    return Err(RemoteError::Refused {
                        backend: backend.name.clone(),
                        why: format!(
                            "say which model: `-m {}/MODEL`, with MODEL one of: {}",
                            backend.name,
                            names(l)
                        ),
                    })
                }
            },
            Some(l) => {
                // Ollama names without a tag mean `:latest`.
                let latest = format!("{model}:latest");
                l.iter()
                    .find(|m| m.id == model)
                    .or_else(|| l.iter().find(|m| m.id == latest))
                    .cloned()
                    .ok_or_else(|| RemoteError::NoModel {
                        backend: backend.name.clone(),
                        model: model.into(),
                        available: names(l),
                    })?
            }
        };
        if backend.kind == BackendKind::Ollama {
            conn.rt.block_on(conn.ollama_details(&mut picked));
        }
        Ok(HttpClient {
            name: format!("{}/{}", backend.name, picked.id),
            conn,
            model: picked,
        })
    }

    pub fn backend(&self) -> &BackendConfig {
        &self.conn.backend
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.conn.base
    }
}

impl GenerationClient for HttpClient {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn context_length(&self) -> Option<usize> {
        self.model.context_length
    }

    fn vocab_size(&self) -> Option<usize> {
        // Token-id prompts go to /v1/completions; Ollama takes text only. A server that
        // does not list its vocabulary gets ids below 256: byte tokens in every BPE
        // vocabulary (see `vocab_listed`).
        match self.conn.backend.kind {
            BackendKind::Openai => Some(self.model.vocab_size.unwrap_or(FALLBACK_VOCAB)),
            BackendKind::Ollama => None,
        }
    }

    fn vocab_listed(&self) -> bool {
        HttpClient::vocab_listed(self)
    }

    fn generate(&self, mut req: GenerateRequest) -> Generation {
        // As the engine does: a request without a seed gets one, sent and reported, so the
        // run can be repeated (servers that honour `seed` give the same text again).
        if req.sampling.seed.is_none() {
            req.sampling.seed = Some(rand::random::<u32>() as u64);
        }
        let (tx, events) = mpsc::channel();
        let cancel = CancelToken::default();
        let b = &self.conn.backend;
        match wire::request(&req, &self.model.id, b.kind, b.sampling_extensions) {
            Err(why) => {
                let e = RemoteError::Refused {
                    backend: b.name.clone(),
                    why,
                };
                let _ = tx.send(Event::Error(EngineError::Remote(e)));
            }
            Ok(w) => {
                let job = super::http_stream::Job {
                    conn: self.conn.clone(),
                    url: self.conn.url(w.path),
                    body: w.body,
                    cancel: cancel.clone(),
                    tx,
                    max_kv_size: req.max_kv_size,
                    seed: req.sampling.seed.unwrap_or(0),
                };
                self.conn.rt.spawn(job.run());
            }
        }
        Generation { events, cancel }
    }
}

/// What the stream reader needs from a [`Connection`].
impl Connection {
    pub(super) fn post(&self, url: &str, body: &serde_json::Value) -> reqwest::RequestBuilder {
        let rb = self.http.post(url).json(body);
        match &self.key {
            Some(k) => rb.bearer_auth(k),
            None => rb,
        }
    }

    pub(super) fn unreachable_err(&self, url: &str, e: &reqwest::Error) -> RemoteError {
        self.unreachable(url, e)
    }

    pub(super) fn garbage_err(&self, url: &str, why: impl Into<String>) -> RemoteError {
        self.garbage(url, why)
    }

    pub(super) fn backend_name(&self) -> String {
        self.name()
    }
}

/// Client-side measurements of one streamed answer.
pub(super) struct Meter {
    t0: Instant,
    first_ms: Option<f64>,
    last_ms: f64,
    pieces: usize,
    usage: Option<(usize, usize)>,
    pub finish: Option<FinishReason>,
    in_reasoning: bool,
    pub ended: bool,
}

impl Meter {
    pub fn new() -> Meter {
        Meter {
            t0: Instant::now(),
            first_ms: None,
            last_ms: 0.0,
            pieces: 0,
            usage: None,
            finish: None,
            in_reasoning: false,
            ended: false,
        }
    }

    fn ms(&self) -> f64 {
        self.t0.elapsed().as_secs_f64() * 1e3
    }

    pub fn any(&self) -> bool {
        self.pieces > 0 || self.usage.is_some() || self.finish.is_some()
    }

    /// Take one piece: text becomes a token event (reasoning inside `<think>` tags, so the
    /// same reasoning parser splits it as it does the engine's text); an error is returned.
    pub fn take(&mut self, p: Piece, tx: &mpsc::Sender<Event>) -> Result<bool, String> {
        let text = match p {
            Piece::Text(t) if self.in_reasoning => {
                self.in_reasoning = false;
                format!("</think>{t}")
            }
            Piece::Text(t) => t,
            Piece::Reasoning(t) if self.in_reasoning => t,
            Piece::Reasoning(t) => {
                self.in_reasoning = true;
                format!("<think>{t}")
            }
            Piece::Usage { prompt, completion } => {
                self.usage = Some((prompt, completion));
                return Ok(true);
            }
            Piece::Finish(f) => {
                self.finish = Some(f);
                return Ok(true);
            }
            Piece::Error(m) => return Err(m),
            Piece::End => {
                self.ended = true;
                return Ok(true);
            }
        };
        let now = self.ms();
        self.first_ms.get_or_insert(now);
        self.last_ms = now;
        self.pieces += 1;
        Ok(tx
            .send(Event::Token {
                id: 0,
                text,
                logprobs: None,
            })
            .is_ok())
    }

    pub fn stats(&self, finish: FinishReason, max_kv_size: Option<usize>, seed: u64) -> Stats {
        let total_ms = self.ms();
        let (prompt, generated) = self.usage.unwrap_or((0, self.pieces));
        let generated = if generated == 0 {
            self.pieces
        } else {
            generated
        };
        let ttft_ms = self.first_ms.unwrap_or(total_ms);
        let decode_ms = (self.last_ms - ttft_ms).max(0.0);
        let per_s = |n: usize, ms: f64| if ms > 0.0 { n as f64 / (ms / 1e3) } else { 0.0 };
        Stats {
            prompt_tokens: prompt,
            cached_tokens: 0,
            generated_tokens: generated,
            ttft_ms,
            prefill_ms: ttft_ms,
            prefill_tok_s: per_s(prompt, ttft_ms),
            decode_ms,
            decode_tok_s: per_s(generated.saturating_sub(1), decode_ms),
            total_ms,
            finish_reason: finish,
            stop_string: None,
            kv_used: 0,
            kv_peak: 0,
            max_kv_size,
            seed,
        }
    }
}

/// Used by the stream reader for SSE bodies.
pub(super) fn sse<S>(body: S) -> impl futures_util::Stream<Item = Result<String, String>>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Unpin,
{
    body.eventsource().map(|r| match r {
        Ok(ev) => Ok(ev.data),
        Err(e) => Err(e.to_string()),
    })
}

/// Used by the stream reader for NDJSON bodies: the lines, as they complete.
pub(super) fn lines<S>(body: S) -> impl futures_util::Stream<Item = Result<String, String>>
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Unpin,
{
    futures_util::stream::unfold(
        (body, Vec::<u8>::new(), false),
        |(mut body, mut buf, mut done)| async move {
            loop {
                if let Some(i) = buf.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=i).collect();
                    let s = String::from_utf8_lossy(&line).into_owned();
                    return Some((Ok(s), (body, buf, done)));
                }
                if done {
                    if buf.is_empty() {
                        return None;
                    }
                    let s = String::from_utf8_lossy(&buf).into_owned();
                    buf.clear();
                    return Some((Ok(s), (body, buf, true)));
                }
                match body.next().await {
                    Some(Ok(b)) => buf.extend_from_slice(&b),
                    Some(Err(e)) => return Some((Err(reqwest_why(&e)), (body, buf, true))),
                    None => done = true,
                }
            }
        },
    )
}
