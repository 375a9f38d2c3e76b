//! Every server error, mapped once to OpenAI's error shape
//! (`{"error":{"message","type","param","code"}}`) and its HTTP status.

use crate::engine::EngineError;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;

/// An error answered in OpenAI's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's `type`: `invalid_request_error`, `not_found_error`, `server_error` …
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    /// Seconds, sent as `Retry-After` (429 / 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after: None,
        }
    }

    /// 400 naming the request field at fault.
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            param: Some(param.into()),
            ..ApiError::bad_request(message)
        }
    }

    /// 400 without a field.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
    }

    /// A field lmwb does not support yet: refused, never silently ignored.
    pub fn unsupported(param: &str, why: &str) -> ApiError {
        ApiError {
            code: Some("unsupported_parameter"),
            ..ApiError::invalid(
                param,
                format!(
                    "`{param}` is not supported by lmwb yet ({why}); remove it from the request"
                ),
            )
        }
    }

    pub fn model_not_found(model: &str, available: &[String]) -> ApiError {
        ApiError {
            param: Some("model".into()),
            code: Some("model_not_found"),
            ..ApiError::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                format!(
                    "The model `{model}` does not exist; this server has: {}",
                    available.join(", ")
                ),
            )
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "invalid_request_error", message)
    }

    pub fn not_implemented(path: &str) -> ApiError {
        ApiError {
            code: Some("not_implemented"),
            ..ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "invalid_request_error",
                format!("{path} is not implemented by lmwb; it serves /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models and /v1/messages"),
            )
        }
    }

    pub fn unauthorized() -> ApiError {
        ApiError {
            code: Some("invalid_api_key"),
            ..ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_request_error",
                "Missing or incorrect API key: send `Authorization: Bearer KEY` with the key given to `lmwb serve --api-key`",
            )
        }
    }

    /// A Host name other than loopback on a loopback server (DNS rebinding).
    pub fn forbidden_host(host: &str) -> ApiError {
        ApiError {
            code: Some("forbidden_host"),
            ..ApiError::new(
                StatusCode::FORBIDDEN,
                "invalid_request_error",
                format!("Host `{host}` is refused: this server listens on loopback and answers only localhost names; use --host to listen elsewhere"),
            )
        }
    }

    /// No model has loaded yet.
    pub fn loading() -> ApiError {
        ApiError {
            code: Some("model_loading"),
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_error",
                "the model is still loading; retry shortly",
            )
        }
    }

    /// The queue is full: come back later.
    pub fn busy(running: usize, queue: usize) -> ApiError {
        ApiError {
            code: Some("rate_limit_exceeded"),
            retry_after: Some(1),
            ..ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "requests",
                format!("the server is busy: {running} generation(s) run at once and {queue} more wait; retry shortly"),
            )
        }
    }

    /// A model file that would not load (server-side: the file, not the request).
    pub fn load_failed(message: impl Into<String>) -> ApiError {
        ApiError {
            code: Some("model_load_failed"),
            ..ApiError::server(message)
        }
    }

    /// A model larger than the server's memory budget.
    pub fn too_big(message: impl Into<String>) -> ApiError {
        ApiError {
            param: Some("model".into()),
            code: Some("model_too_large"),
            ..ApiError::bad_request(message)
        }
    }

    /// Every loaded model is answering requests and no other fits: retry later.
    pub fn no_room(message: impl Into<String>) -> ApiError {
        ApiError {
            code: Some("models_busy"),
            retry_after: Some(2),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server_error", message)
        }
    }

    pub fn server(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "server_error", message)
    }

    /// The JSON body of this error.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut res = (self.status, Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<EngineError> for ApiError {
    /// What the request asked for is at fault (400) unless the engine itself failed (500).
    fn from(e: EngineError) -> ApiError {
        let msg = e.to_string();
        match e {
            EngineError::PromptTooLong { .. } => ApiError {
                code: Some("context_length_exceeded"),
                ..ApiError::invalid("messages", msg)
            },
            EngineError::Sampling(s) => ApiError::invalid(s.name, msg),
            EngineError::Template(_)
            | EngineError::Tokenizer(_)
            | EngineError::EmptyPrompt
            | EngineError::TokenOutOfRange { .. }
            | EngineError::WindowTooLarge { .. }
            | EngineError::WindowTooSmall(_) => ApiError::bad_request(msg),
            EngineError::Load(_)
            | EngineError::Compute(_)
            | EngineError::Gone
            | EngineError::Backend(_)
            | EngineError::Remote(_) => ApiError::server(msg),
        }
    }
}

/// A JSON body parsed into `T`, with every failure in OpenAI's shape: body too large 413,
/// invalid UTF-8 or JSON 400, a wrong type 400 naming the field. Any Content-Type is
/// accepted (`curl -d` sends a form type).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        typed(&parse_json(&bytes)?).map(ApiJson)
    }
}

pub fn body_rejection(r: BytesRejection) -> ApiError {
    if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request_error",
            "the request body is larger than this server accepts",
        )
    } else {
        ApiError::bad_request(format!("cannot read the request body: {r}"))
    }
}

/// Read a request body as JSON: invalid UTF-8, an empty body or a syntax error is a 400.
pub fn parse_json(bytes: &[u8]) -> Result<serde_json::Value, ApiError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::bad_request("the request body is not valid UTF-8"));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "the request body is empty: send a JSON object",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// Type a JSON value; a wrong or missing field is a 400 naming it in `param`.
pub fn typed<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        if let Some(field) = msg
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next())
        {
            let param = if path == "." {
                field.to_string()
            } else {
                format!("{path}.{field}")
            };
            ApiError::invalid(param.clone(), format!("`{param}` is required"))
        } else if path == "." {
            ApiError::bad_request(format!("invalid request body: {msg}"))
        } else {
            ApiError::invalid(path.clone(), format!("invalid `{path}`: {msg}"))
        }
    })
}
