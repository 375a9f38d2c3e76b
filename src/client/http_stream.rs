//! One remote generation: send the request, read its stream into engine [`Event`]s, stop
//! (closing the connection) when it is cancelled or nobody listens any more.

use super::http::{lines, sse, Connection, Meter};
use super::remote_error::RemoteError;
use super::wire::{self, Piece};
use crate::client::backend::BackendKind;
use crate::engine::{CancelToken, EngineError, Event, FinishReason};
use futures_util::{Stream, StreamExt};
use std::sync::mpsc;
use std::time::Duration;

pub(super) struct Job {
    pub conn: Connection,
    pub url: String,
    pub body: serde_json::Value,
    pub cancel: CancelToken,
    pub tx: mpsc::Sender<Event>,
    pub max_kv_size: Option<usize>,
    pub seed: u64,
}

/// Resolves once `token` is cancelled (polled: the token is a plain flag).
async fn cancelled(token: &CancelToken) {
    while !token.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// How the stream ended.
enum End {
    Finished(FinishReason),
    Cancelled,
    /// The receiver is gone: nobody reads the answer.
    Abandoned,
}

impl Job {
    pub async fn run(self) {
        let mut meter = Meter::new();
        let result = tokio::select! {
            r = self.stream(&mut meter) => r,
            _ = cancelled(&self.cancel) => Ok(End::Cancelled),
        };
        // Leaving here drops the response body: the connection closes and the server sees
        // the client go away (lmwb serve, vLLM and llama-server then stop generating).
        let event = match result {
            Ok(End::Finished(f)) => Event::Done(meter.stats(f, self.max_kv_size, self.seed)),
            Ok(End::Cancelled) => {
                Event::Done(meter.stats(FinishReason::Cancelled, self.max_kv_size, self.seed))
            }
            Ok(End::Abandoned) => return,
            Err(e) => Event::Error(EngineError::Remote(e)),
        };
        let _ = self.tx.send(event);
    }

    async fn stream(&self, meter: &mut Meter) -> Result<End, RemoteError> {
        let resp = self
            .conn
            .post(&self.url, &self.body)
            .send()
            .await
            .map_err(|e| self.conn.unreachable_err(&self.url, &e))?;
        let status = resp.status();
        if !status.is_success() {
            let text = resp.text().await.unwrap_or_default();
            return Err(RemoteError::Status {
                backend: self.conn.backend_name(),
                url: self.url.clone(),
                status: status.as_u16(),
                message: wire::error_body(&text),
            });
        }
        let ctype = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if self
            .tx
            .send(Event::Started {
                prompt_tokens: 0,
                cached_tokens: 0,
            })
            .is_err()
        {
            return Ok(End::Abandoned);
        }
        let kind = self.conn.backend.kind;
        let body = resp.bytes_stream();
        match kind {
            BackendKind::Openai if ctype.starts_with("text/event-stream") => {
                self.read(meter, sse(body), wire::openai_event).await
            }
            // A server that ignored `stream: true` answers with one JSON document.
            BackendKind::Openai if ctype.starts_with("application/json") => {
                let mut doc = DocumentBuffer::default();
                self.read(meter, lines(body), |l| doc.push(l)).await
            }
            BackendKind::Ollama if ctype.contains("json") => {
                self.read(meter, lines(body), wire::ollama_line).await
            }
            _ => Err(self.conn.garbage_err(
                &self.url,
                format!(
                    "the answer's content type is `{ctype}`, not {}",
                    match kind {
                        BackendKind::Openai => "text/event-stream",
                        BackendKind::Ollama => "application/x-ndjson",
                    }
                ),
            )),
        }
    }

    async fn read<S>(
        &self,
        meter: &mut Meter,
        stream: S,
        mut parse: impl FnMut(&str) -> Result<Vec<Piece>, String>,
    ) -> Result<End, RemoteError>
    where
        S: Stream<Item = Result<String, String>>,
    {
        let mut stream = std::pin::pin!(stream);
        let backend = self.conn.backend_name();
        while let Some(item) = stream.next().await {
            let data = item.map_err(|why| RemoteError::Cut {
                backend: backend.clone(),
                why,
            })?;
            let pieces = parse(&data).map_err(|why| self.conn.garbage_err(&self.url, why))?;
            for p in pieces {
                match meter.take(p, &self.tx) {
                    Ok(true) => {}
                    Ok(false) => return Ok(End::Abandoned),
                    Err(message) => {
                        return Err(RemoteError::Stream {
                            backend: backend.clone(),
                            message,
                        })
                    }
                }
            }
            if meter.ended {
                break;
            }
        }
        match (meter.ended, meter.finish) {
            (_, Some(f)) => Ok(End::Finished(f)),
            (true, None) => Ok(End::Finished(FinishReason::Stop)),
            (false, None) if !meter.any() => Err(self
                .conn
                .garbage_err(&self.url, "the stream ended without a single event")),
            (false, None) => Err(RemoteError::Cut {
                backend,
                why: "no finish reason or end marker arrived".into(),
            }),
        }
    }
}

/// A whole (non-streamed) OpenAI answer read as pieces, once its lines are all in.
#[derive(Default)]
struct DocumentBuffer(String);

impl DocumentBuffer {
    fn push(&mut self, line: &str) -> Result<Vec<Piece>, String> {
        self.0.push_str(line);
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&self.0) else {
            // Not complete yet (a pretty-printed document); the end of the body says it
            // never will be.
            return Ok(vec![]);
        };
        self.0.clear();
        let mut out = Vec::new();
        if let Some(e) = v.get("error") {
            return Ok(vec![Piece::Error(wire::error_body(
                &serde_json::json!({"error": e}).to_string(),
            ))]);
        }
        let choice = v.get("choices").and_then(|c| c.get(0));
        let text = choice
            .and_then(|c| {
                c.get("message")
                    .and_then(|m| m.get("content"))
                    .or_else(|| c.get("text"))
            })
            .and_then(|t| t.as_str());
        let reasoning = choice
            .and_then(|c| c.get("message"))
            .and_then(wire::reasoning_of);
        wire::texts(&mut out, reasoning, text);
        if let Some(u) = v.get("usage") {
            out.push(Piece::Usage {
                prompt: wire::usize_of(u.get("prompt_tokens")),
                completion: wire::usize_of(u.get("completion_tokens")),
            });
        }
        let reason = choice
            .and_then(|c| c.get("finish_reason"))
            .and_then(|r| r.as_str())
            .unwrap_or("stop");
        out.push(Piece::Finish(wire::finish(reason)));
        out.push(Piece::End);
        Ok(out)
    }
}
