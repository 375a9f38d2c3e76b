//! The HTTP server: OpenAI-, Anthropic- and Ollama-compatible routes on a [`GenerationClient`].
//!
//! [`router`] builds the axum app over a [`ServerState`] (tests drive it with
//! `tower::ServiceExt::oneshot`); [`start`] binds it on its own runtime thread and returns a
//! [`ServerHandle`] (`lmwb serve` waits on it; the TUI will start and stop it).

pub mod anthropic;
pub mod anthropic_tools;
pub mod auth;
pub mod embeddings;
pub mod embeddings_request;
pub mod error;
pub mod handlers;
pub mod keep;
pub mod metrics;
pub mod ollama;
pub mod ollama_request;
pub mod openai;
pub mod pool;
pub mod queue;
pub mod request_log;
pub mod sse;
pub mod structured;
pub mod tools;

use crate::client::GenerationClient;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use error::ApiError;
use std::net::SocketAddr;
use std::sync::Arc;

pub use openai::Defaults;

/// A model the server answers for, under its registry name.
#[derive(Clone)]
pub struct ServedModel {
    pub id: String,
    pub client: Arc<dyn GenerationClient>,
    /// Unix seconds (the file's modification time), for `/v1/models`.
    pub created: u64,
    /// What the model file says (format, architecture, size …), for `/api/tags` and
    /// `/api/show`; `None` when unknown.
    pub info: Option<crate::engine::model::ModelInfo>,
}

/// An embedding model the server answers `/v1/embeddings` and `/api/embed` with.
#[derive(Clone)]
pub struct ServedEmbedder {
    pub id: String,
    pub embedder: Arc<dyn crate::engine::embed::EmbeddingClient>,
    /// Unix seconds, for `/v1/models`.
    pub created: u64,
    pub info: Option<crate::engine::model::ModelInfo>,
}

/// How the server runs.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub host: String,
    /// 0 picks a free port ([`ServerHandle::addr`] tells which).
    pub port: u16,
    pub api_key: Option<String>,
    /// Origins allowed by CORS (`*` allows any); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// Largest request body in bytes (413 past it).
    pub body_limit: usize,
    /// Generations running at once (the engine decodes them together, up to its
    /// `max_batch`), and how many more may wait (429 past them).
    pub concurrency: usize,
    pub queue: usize,
    pub defaults: Defaults,
    /// Stop on Ctrl-C / SIGTERM (`lmwb serve`), draining requests in flight first.
    pub handle_signals: bool,
}

impl ServerConfig {
    /// What the config file sets for a server: the sampling defaults and `max_tokens` of
    /// `[sampling]`, and `max_batch` generations at once. `lmwb serve` and the workbench's
    /// Server tab both start from this, so they answer alike.
    pub fn from_config(cfg: &crate::config::Config) -> ServerConfig {
        let sampling = crate::commands::gen::sampling(&crate::cli::SamplingArgs::default(), cfg);
        ServerConfig {
            concurrency: cfg.max_batch.max(1),
            defaults: Defaults {
                sampling,
                max_tokens: (cfg.sampling.max_tokens > 0).then_some(cfg.sampling.max_tokens),
                ..Defaults::default()
            },
            ..ServerConfig::default()
        }
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            host: "127.0.0.1".into(),
            port: 8080,
            api_key: None,
            cors_origins: vec![],
            body_limit: 4 << 20,
            concurrency: crate::engine::EngineOptions::default().max_batch,
            queue: 16,
            defaults: Defaults::default(),
            handle_signals: false,
        }
    }
}

/// What every handler shares.
pub struct ServerState {
    /// The models served: loaded on demand from the registry, or added by hand.
    pub pool: pool::ModelPool,
    pub api_key: Option<String>,
    pub defaults: Defaults,
    pub limiter: queue::Limiter,
    pub metrics: Arc<metrics::Metrics>,
    /// Every request as it ended (the workbench's Server tab shows it live).
    pub requests: request_log::RequestLog,
    /// Bound to a loopback address: foreign Host names are refused.
    pub loopback: bool,
    cors_origins: Vec<String>,
    body_limit: usize,
    /// The embedding models, apart from the chat models.
    embedders: std::sync::RwLock<Vec<ServedEmbedder>>,
}

impl ServerState {
    /// A server for `models` only (already loaded; nothing loads on demand).
    pub fn new(config: &ServerConfig, models: Vec<ServedModel>) -> ServerState {
        let state = ServerState::with_pool(config, pool::ModelPool::new(None, Default::default()));
        for m in models {
            state.add_model(m);
        }
        state
    }

    /// A server for the models of `pool`.
    pub fn with_pool(config: &ServerConfig, pool: pool::ModelPool) -> ServerState {
        ServerState {
            pool,
            loopback: auth::is_loopback_host(&config.host),
            api_key: config.api_key.clone().filter(|k| !k.is_empty()),
            defaults: config.defaults.clone(),
            limiter: queue::Limiter::new(config.concurrency, config.queue),
            metrics: Arc::default(),
            requests: Default::default(),
            cors_origins: config.cors_origins.clone(),
            body_limit: config.body_limit,
            embedders: Default::default(),
        }
    }

    /// The counters `/metrics` renders, typed.
    pub fn highlights(&self) -> metrics::Highlights {
        self.metrics.highlights(&self.limiter)
    }

    /// The embedding models served now.
    pub fn embedders(&self) -> Vec<ServedEmbedder> {
        self.embedders
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Serve one more embedding model.
    pub fn add_embedder(&self, e: ServedEmbedder) {
        self.embedders
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(e);
    }

    /// The embedding model named `id`: 400 for a chat model's name, 404 for any other.
    pub fn find_embedder(&self, id: &str) -> Result<ServedEmbedder, ApiError> {
        let all = self.embedders();
        if let Some(e) = all
            .iter()
            .find(|e| e.id == id || e.embedder.model_name() == id)
        {
            request_log::note_model(&e.id);
            return Ok(e.clone());
        }
        let ids: Vec<String> = all.iter().map(|e| e.id.clone()).collect();
        if self.pool.lookup(id).is_ok() {
            return Err(ApiError {
                code: Some("model_not_supported"),
                ..ApiError::invalid(
                    "model",
                    format!(
                        "`{id}` is a chat model and makes no embeddings; embedding models here: {}",
                        if ids.is_empty() {
                            "none".into()
                        } else {
                            ids.join(", ")
                        }
                    ),
                )
            });
        }
        if ids.is_empty() {
            return Err(ApiError {
                param: Some("model".into()),
                code: Some("model_not_found"),
                ..ApiError::not_found(format!(
                    "The model `{id}` does not exist: this server has no embedding model; start `lmwb serve` with --embedding-model NAME (see `lmwb models list`)"
                ))
            });
        }
        Err(ApiError::model_not_found(id, &ids))
    }

    /// Serve one more model, already loaded (the server may start before it has).
    pub fn add_model(&self, model: ServedModel) {
        self.pool.add(model);
    }

    /// The model named `id`, loaded or not: 404 for a name this server cannot serve (503
    /// while the first model loads).
    pub fn find(&self, id: &str) -> Result<pool::Listing, ApiError> {
        self.pool.lookup(id)
    }

    /// Hold the model named `id` for one request, loading it if need be.
    pub async fn acquire(
        &self,
        id: &str,
        keep: Option<keep::Keep>,
    ) -> Result<pool::Lease, ApiError> {
        if self.pool.lookup(id).is_err() && self.embedders().iter().any(|e| e.id == id) {
            return Err(ApiError {
                code: Some("model_not_supported"),
                ..ApiError::invalid(
                    "model",
                    format!("`{id}` is an embedding model and does not generate text; call /v1/embeddings (or /api/embed) with it"),
                )
            });
        }
        let lease = self.pool.acquire(id, keep).await?;
        request_log::note_model(&lease.model.id);
        Ok(lease)
    }
}

/// `system_fingerprint`: the lmwb version and the model, so a change of either shows.
pub fn fingerprint(model: &str) -> String {
    let hash = model.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    });
    format!("fp_lmwb{}_{:08x}", env!("CARGO_PKG_VERSION"), hash as u32)
}

/// `err` in the shape of the API `path` belongs to (Anthropic's under /v1/messages).
pub fn shaped(path: &str, err: ApiError) -> Response {
    if path.starts_with("/v1/messages") {
        anthropic::error_response(err)
    } else if path.starts_with("/api/") {
        ollama::error_response(err)
    } else {
        err.into_response()
    }
}

/// OpenAI routes answered 501.
const NOT_BUILT: &[&str] = &[
    "/v1/responses",
    "/v1/responses/{*rest}",
    "/v1/audio/{*rest}",
    "/v1/images/{*rest}",
    "/v1/files",
    "/v1/files/{*rest}",
    "/v1/batches",
    "/v1/batches/{*rest}",
    "/v1/moderations",
    "/v1/fine_tuning/{*rest}",
    "/v1/assistants",
    "/v1/assistants/{*rest}",
    "/v1/threads",
    "/v1/threads/{*rest}",
    "/v1/vector_stores",
    "/v1/vector_stores/{*rest}",
    "/v1/uploads",
    "/v1/uploads/{*rest}",
    "/v1/realtime/{*rest}",
];

/// Ollama routes answered 501.
const OLLAMA_NOT_BUILT: &[&str] = &[
    "/api/pull",
    "/api/push",
    "/api/create",
    "/api/copy",
    "/api/delete",
    "/api/blobs/{*rest}",
    "/api/web_search",
    "/api/web_fetch",
];

/// The whole app over `state`.
pub fn router(state: Arc<ServerState>) -> Router {
    let mut app = Router::new()
        .route("/v1/models", get(handlers::list_models))
        .route("/v1/models/{*id}", get(handlers::get_model))
        .route("/v1/chat/completions", post(handlers::chat))
        .route("/v1/completions", post(handlers::completions))
        .route("/v1/embeddings", post(embeddings::openai))
        .route("/api/embed", post(embeddings::ollama))
        .route("/api/embeddings", post(embeddings::ollama_embeddings))
        .route("/v1/messages", post(anthropic::messages))
        .route("/", get(ollama::root))
        .route("/api/chat", post(ollama::chat))
        .route("/api/generate", post(ollama::generate))
        .route("/api/tags", get(ollama::tags))
        .route("/api/show", post(ollama::show))
        .route("/api/ps", get(ollama::ps))
        .route("/api/version", get(ollama::version))
        .route("/health", get(handlers::health))
        .route("/metrics", get(handlers::metrics));
    for path in NOT_BUILT {
        app = app.route(path, any(handlers::not_implemented));
    }
    for path in OLLAMA_NOT_BUILT {
        app = app.route(path, any(ollama::not_implemented));
    }
    let mut app = app
        .fallback(handlers::unknown_route)
        .layer(axum::extract::DefaultBodyLimit::max(state.body_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::loopback_host,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), track));
    // A bug must still answer in shape (and is logged), never drop the connection.
    app = app.layer(tower_http::catch_panic::CatchPanicLayer::custom(
        |_: Box<dyn std::any::Any + Send>| {
            tracing::error!("a request handler panicked");
            ApiError::server("internal error: lmwb hit a bug (see its log)").into_response()
        },
    ));
    if let Some(cors) = cors_layer(&state.cors_origins) {
        app = app.layer(cors);
    }
    app.with_state(state)
}

fn cors_layer(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::OPTIONS])
            .allow_headers([
                axum::http::header::AUTHORIZATION,
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderName::from_static("x-api-key"),
            ]),
    )
}

/// Count every request by route and status, log it once its body has been sent (see
/// [`request_log`]), and give axum's bare 405 an OpenAI body.
async fn track(State(s): State<Arc<ServerState>>, req: Request, next: Next) -> Response {
    let (start, time) = (std::time::Instant::now(), request_log::clock());
    let route = metrics::route_label(req.uri().path());
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let client = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let trace = Arc::new(request_log::Trace::default());
    let mut res = request_log::Trace::scope(trace.clone(), next.run(req)).await;
    if res.status() == StatusCode::METHOD_NOT_ALLOWED {
        let allow = res.headers().get(axum::http::header::ALLOW).cloned();
        let msg = format!("{method} is not allowed on {path}");
        let mut err = ApiError::bad_request(msg);
        err.status = StatusCode::METHOD_NOT_ALLOWED;
        res = shaped(&path, err);
        if let Some(a) = allow {
            res.headers_mut().insert(axum::http::header::ALLOW, a);
        }
    }
    let status = res.status().as_u16();
    s.metrics.record(route, status);
    let pending = request_log::Pending {
        state: s.clone(),
        time,
        method: method.to_string(),
        path,
        status,
        client,
        start,
        trace,
    };
    res.map(|body| request_log::Tracked::wrap(body, pending))
}

/// A running server.
pub struct ServerHandle {
    addr: SocketAddr,
    state: Arc<ServerState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    /// The address it listens on (the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the server shares with its handlers (to add a model once it has loaded).
    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// Stop accepting, let requests in flight finish, then return.
    pub fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.join()
    }

    /// Serve until stopped (by a signal, when the config handles them).
    pub fn wait(mut self) -> std::io::Result<()> {
        self.join()
    }

    fn join(&mut self) -> std::io::Result<()> {
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(std::io::Error::other("the server thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Bind `config.host:config.port` and serve `models` on a runtime of its own.
pub fn start(config: ServerConfig, models: Vec<ServedModel>) -> std::io::Result<ServerHandle> {
    let state = ServerState::new(&config, models);
    serve(config, state)
}

/// Bind `config.host:config.port` and serve `state` on a runtime of its own; idle models
/// unload when their keep-alive runs out.
pub fn serve(config: ServerConfig, state: ServerState) -> std::io::Result<ServerHandle> {
    let listener = std::net::TcpListener::bind((config.host.as_str(), config.port))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let state = Arc::new(state);
    let app = router(state.clone());
    let reaper = state.pool.clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let signals = config.handle_signals;
    let thread = std::thread::Builder::new()
        .name("lmwb-server".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("lmwb-http")
                .enable_all()
                .build()?;
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                tokio::spawn(async move {
                    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
                    loop {
                        tick.tick().await;
                        reaper.reap();
                    }
                });
                let stop = async move {
                    tokio::select! {
                        _ = stop_rx => {}
                        _ = shutdown_signal(), if signals => {
                            tracing::info!("signal received: draining requests in flight");
                        }
                    }
                };
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(listener, app)
                    .with_graceful_shutdown(stop)
                    .await
            })
        })?;
    Ok(ServerHandle {
        addr,
        state,
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
