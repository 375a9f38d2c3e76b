//! Models served by name and loaded on demand: the first request for a model the registry
//! knows loads it (LM Studio's JIT loading, Ollama's scheduler), within a limit on the
//! number of models loaded and a memory budget (the least recently used idle model makes
//! room); a model unloads once it has been idle for its keep-alive (`--ttl`, or a request's
//! `keep_alive` / `ttl`). Models added by hand ([`ModelPool::add`]) stay until asked to go.

use super::error::ApiError;
use super::keep::Keep;
use super::ServedModel;
use crate::client::GenerationClient;
use crate::engine::model::ModelKind;
use crate::engine::{GenerateRequest, Generation};
use crate::tui::loader::{ModelLoader, ModelRow};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

/// Limits of the pool.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolConfig {
    /// Models loaded at once.
    pub max_loaded: usize,
    /// Bytes of model weights loaded at once (`None`: no limit).
    pub memory_budget: Option<u64>,
    /// How long a model loaded on demand stays after its last request.
    pub ttl: Keep,
}

impl Default for PoolConfig {
    fn default() -> PoolConfig {
        PoolConfig {
            max_loaded: 3,
            memory_budget: None,
            ttl: Keep::For(Duration::from_secs(300)),
        }
    }
}

/// A model that can be served, loaded or not.
#[derive(Clone)]
pub struct Listing {
    pub id: String,
    pub path: PathBuf,
    /// Unix seconds (the file's modification time).
    pub created: u64,
    pub info: Option<crate::engine::model::ModelInfo>,
    /// Bytes the weights take (what the memory budget counts).
    pub size: u64,
}

impl Listing {
    fn of_row(row: &ModelRow) -> Listing {
        let info = row.info.clone().ok();
        let size = info
            .as_ref()
            .map(|i| i.size_bytes)
            .filter(|&s| s > 0)
            .unwrap_or_else(|| disk_size(&row.path));
        Listing {
            id: row.name.clone(),
            path: row.path.clone(),
            created: modified_secs(&row.path),
            info,
            size,
        }
    }

    fn of_served(m: &ServedModel) -> Listing {
        Listing {
            id: m.id.clone(),
            path: m.info.as_ref().map(|i| i.path.clone()).unwrap_or_default(),
            created: m.created,
            size: m.info.as_ref().map_or(0, |i| i.size_bytes),
            info: m.info.clone(),
        }
    }

    fn row(&self) -> ModelRow {
        ModelRow {
            name: self.id.clone(),
            path: self.path.clone(),
            info: self.info.clone().ok_or_else(String::new),
            metadata: vec![],
            remote: None,
            fit: None,
        }
    }

    /// Whether a request's `model` names this one: its id (any case), with or without
    /// Ollama's `:latest` tag.
    pub fn answers_to(&self, name: &str) -> bool {
        let name = name.strip_suffix(":latest").unwrap_or(name);
        self.id.eq_ignore_ascii_case(name)
    }
}

/// Unix seconds of `path`'s modification time (0 when unknown).
pub fn modified_secs(path: &std::path::Path) -> u64 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs())
}

fn disk_size(path: &std::path::Path) -> u64 {
    match std::fs::read_dir(path) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .filter_map(|e| e.metadata().ok())
            .filter(|m| m.is_file())
            .map(|m| m.len())
            .sum(),
        Err(_) => std::fs::metadata(path).map_or(0, |m| m.len()),
    }
}

/// A loaded model, as `/api/ps` shows it.
#[derive(Clone)]
pub struct LoadedModel {
    pub listing: Listing,
    pub client: Arc<dyn GenerationClient>,
    /// When it unloads if no request comes (`None`: it stays).
    pub expires: Option<SystemTime>,
    pub requests_running: usize,
    pub load_ms: f64,
}

/// A request's hold on a loaded model: the model stays loaded while the lease, or any
/// generation started through its client, lives.
pub struct Lease {
    pub model: ServedModel,
    /// Milliseconds this request waited for the model to load (`None`: it was loaded).
    pub load_ms: Option<f64>,
}

struct Slot {
    listing: Listing,
    client: Arc<dyn GenerationClient>,
    users: usize,
    /// `None`: stays loaded.
    expires: Option<Instant>,
    /// Added by hand (the model `lmwb serve -m` names): evicted only after the others.
    pinned: bool,
    last_used: Instant,
    load_ms: f64,
    unload_when_idle: bool,
}

#[derive(Default)]
struct State {
    loaded: Vec<Slot>,
    /// Models being loaded now, and the last load that failed (for `/health`).
    loading: Vec<String>,
    last_error: Option<String>,
    catalog: Option<(Instant, Vec<Listing>)>,
}

struct Shared {
    loader: Option<Arc<dyn ModelLoader>>,
    config: PoolConfig,
    state: Mutex<State>,
    /// One load at a time (they compete for the same cores and memory).
    load_lock: tokio::sync::Mutex<()>,
}

/// The models a server answers for.
#[derive(Clone)]
pub struct ModelPool(Arc<Shared>);

/// How long a registry scan is trusted before `/v1/models` looks again.
const CATALOG_FRESH: Duration = Duration::from_secs(5);
/// How soon a request for a name not listed may make the pool look at the disk again.
const RESCAN_AFTER: Duration = Duration::from_secs(1);

impl ModelPool {
    /// A pool that loads what `loader` finds; `None`: only models added by hand.
    pub fn new(loader: Option<Arc<dyn ModelLoader>>, config: PoolConfig) -> ModelPool {
        ModelPool(Arc::new(Shared {
            loader,
            config,
            state: Mutex::default(),
            load_lock: tokio::sync::Mutex::new(()),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> &PoolConfig {
        &self.0.config
    }

    /// Serve a model that is already loaded; it stays until a request's keep-alive says
    /// otherwise.
    pub fn add(&self, model: ServedModel) {
        let mut st = self.state();
        st.loaded.retain(|s| s.listing.id != model.id);
        st.loaded.push(Slot {
            listing: Listing::of_served(&model),
            client: model.client,
            users: 0,
            expires: None,
            pinned: true,
            last_used: Instant::now(),
            load_ms: 0.0,
            unload_when_idle: false,
        });
    }

    /// Mark `id` as loading (`/health` says `loading` while nothing is served yet).
    pub fn set_loading(&self, id: &str, on: bool) {
        let mut st = self.state();
        st.loading.retain(|l| l != id);
        if on {
            st.loading.push(id.to_string());
        }
    }

    /// Record a failed load (`/health` says `degraded` until a later load succeeds).
    pub fn set_error(&self, error: Option<String>) {
        self.state().last_error = error;
    }

    /// Nothing served yet while a model loads, or before the first is added by hand (the
    /// server listens before its model has loaded).
    pub fn is_starting(&self) -> bool {
        let st = self.state();
        st.loaded.is_empty() && (!st.loading.is_empty() || self.0.loader.is_none())
    }

    /// Models loading now, and the last load error.
    pub fn load_state(&self) -> (Vec<String>, Option<String>) {
        let st = self.state();
        (st.loading.clone(), st.last_error.clone())
    }

    /// Every model that can be served: the registry's, plus any added by hand.
    pub fn available(&self) -> Vec<Listing> {
        self.catalog(false)
    }

    fn catalog(&self, refresh: bool) -> Vec<Listing> {
        let cached = {
            let st = self.state();
            match &st.catalog {
                // A miss looks again, but at most once a second (a client sending made-up
                // names must not make the server read the disk for each one).
                Some((at, list))
                    if at.elapsed() < if refresh { RESCAN_AFTER } else { CATALOG_FRESH } =>
                {
                    Some(list.clone())
                }
                _ => None,
            }
        };
        let mut list = match cached {
            Some(list) => list,
            None => {
                // Embedding models are served apart (`/v1/embeddings`), not from here.
                let scanned: Vec<Listing> = match &self.0.loader {
                    Some(l) => l
                        .scan()
                        .iter()
                        .filter(|r| {
                            r.info
                                .as_ref()
                                .map_or(true, |i| i.kind != ModelKind::Embedding)
                        })
                        .map(Listing::of_row)
                        .collect(),
                    None => vec![],
                };
                self.state().catalog = Some((Instant::now(), scanned.clone()));
                scanned
            }
        };
        for s in self.state().loaded.iter() {
            if !list.iter().any(|l| l.id == s.listing.id) {
                list.push(s.listing.clone());
            }
        }
        list
    }

    /// The listing `name` refers to, looking at the disk again on a miss.
    pub fn lookup(&self, name: &str) -> Result<Listing, ApiError> {
        let find = |list: &[Listing]| list.iter().find(|l| l.answers_to(name)).cloned();
        if let Some(l) = find(&self.catalog(false)) {
            return Ok(l);
        }
        let list = self.catalog(true);
        if let Some(l) = find(&list) {
            return Ok(l);
        }
        if list.is_empty() && self.is_starting() {
            return Err(ApiError::loading());
        }
        let ids: Vec<String> = list.iter().map(|l| l.id.clone()).collect();
        Err(ApiError::model_not_found(name, &ids))
    }

    /// The models loaded now.
    pub fn loaded(&self) -> Vec<LoadedModel> {
        let now = (Instant::now(), SystemTime::now());
        self.state()
            .loaded
            .iter()
            .map(|s| LoadedModel {
                listing: s.listing.clone(),
                client: s.client.clone(),
                expires: s
                    .expires
                    .map(|e| now.1 + e.saturating_duration_since(now.0)),
                requests_running: s.users,
                load_ms: s.load_ms,
            })
            .collect()
    }

    /// Hold the model `name`, loading it first if it is not loaded. `keep` is how long it
    /// stays after this request (`None`: the pool's `ttl`, or for good if it was added by
    /// hand).
    pub async fn acquire(&self, name: &str, keep: Option<Keep>) -> Result<Lease, ApiError> {
        self.reap();
        if let Some(lease) = self.lease(name, keep, None) {
            return Ok(lease);
        }
        let listing = self.lookup(name)?;
        let _one_load = self.0.load_lock.lock().await;
        if let Some(lease) = self.lease(name, keep, None) {
            return Ok(lease);
        }
        let Some(loader) = self.0.loader.clone() else {
            // Added by hand and since unloaded: nothing can bring it back.
            return Err(ApiError::model_not_found(name, &[]));
        };
        let evicted = self.make_room(&listing)?;
        drop(evicted);
        self.set_loading(&listing.id, true);
        let started = Instant::now();
        let row = listing.row();
        let loaded = tokio::task::spawn_blocking(move || loader.load(&row)).await;
        self.set_loading(&listing.id, false);
        let load_ms = started.elapsed().as_secs_f64() * 1000.0;
        let client = match loaded {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                let msg = format!("the model `{}` failed to load: {e}", listing.id);
                tracing::warn!("{msg}");
                self.set_error(Some(msg.clone()));
                return Err(ApiError::load_failed(msg));
            }
            Err(_) => {
                let msg = format!("loading the model `{}` stopped with a bug", listing.id);
                self.set_error(Some(msg.clone()));
                return Err(ApiError::load_failed(msg));
            }
        };
        tracing::info!(model = %listing.id, load_ms, "loaded on demand");
        self.set_error(None);
        self.state().loaded.push(Slot {
            listing,
            client,
            users: 0,
            expires: None,
            pinned: false,
            last_used: Instant::now(),
            load_ms,
            unload_when_idle: false,
        });
        self.lease(name, keep, Some(load_ms))
            .ok_or_else(|| ApiError::server("the model unloaded as soon as it loaded"))
    }

    fn lease(&self, name: &str, keep: Option<Keep>, load_ms: Option<f64>) -> Option<Lease> {
        let mut st = self.state();
        let slot = st.loaded.iter_mut().find(|s| {
            s.listing.answers_to(name) || s.client.model_name().eq_ignore_ascii_case(name)
        })?;
        slot.users += 1;
        slot.last_used = Instant::now();
        let guard = Arc::new(Guard {
            pool: Arc::downgrade(&self.0),
            id: slot.listing.id.clone(),
            keep,
        });
        let client: Arc<dyn GenerationClient> = Arc::new(Leased {
            inner: slot.client.clone(),
            guard,
        });
        Some(Lease {
            model: ServedModel {
                id: slot.listing.id.clone(),
                client,
                created: slot.listing.created,
                info: slot.listing.info.clone(),
            },
            load_ms,
        })
    }

    /// Unload idle models until `next` fits; the clients taken out are dropped by the
    /// caller, outside the lock.
    fn make_room(&self, next: &Listing) -> Result<Vec<Arc<dyn GenerationClient>>, ApiError> {
        let cfg = &self.0.config;
        if let Some(budget) = cfg.memory_budget {
            if next.size > budget {
                return Err(ApiError::too_big(format!(
                    "the model `{}` needs {} of memory, more than the server's budget of {}; raise --memory-budget",
                    next.id,
                    mb(next.size),
                    mb(budget)
                )));
            }
        }
        let mut st = self.state();
        let mut out = vec![];
        loop {
            let used: u64 = st.loaded.iter().map(|s| s.listing.size).sum();
            let fits = st.loaded.len() < cfg.max_loaded.max(1)
                && cfg.memory_budget.is_none_or(|b| used + next.size <= b);
            if fits {
                return Ok(out);
            }
            // The least recently used idle model goes first; pinned ones after the rest.
            let victim = st
                .loaded
                .iter()
                .enumerate()
                .filter(|(_, s)| s.users == 0)
                .min_by_key(|(_, s)| (s.pinned, s.last_used))
                .map(|(i, _)| i);
            let Some(i) = victim else {
                let busy: Vec<String> = st.loaded.iter().map(|s| s.listing.id.clone()).collect();
                return Err(ApiError::no_room(format!(
                    "cannot load `{}` now: the models loaded ({}) are all answering requests and the server holds at most {} model(s){}; retry when they finish",
                    next.id,
                    busy.join(", "),
                    cfg.max_loaded,
                    cfg.memory_budget.map(|b| format!(" within {}", mb(b))).unwrap_or_default()
                )));
            };
            let slot = st.loaded.remove(i);
            tracing::info!(model = %slot.listing.id, "unloaded to make room for {}", next.id);
            out.push(slot.client);
        }
    }

    /// Unload every idle model whose keep-alive has run out.
    pub fn reap(&self) {
        let now = Instant::now();
        let gone: Vec<Slot> = {
            let mut st = self.state();
            let (keep, gone) = std::mem::take(&mut st.loaded)
                .into_iter()
                .partition(|s| s.users > 0 || s.expires.is_none_or(|e| e > now));
            st.loaded = keep;
            gone
        };
        for s in gone {
            tracing::info!(model = %s.listing.id, "unloaded: idle past its keep-alive");
        }
    }

    /// Unload `id` now if idle, else as soon as its requests end (Ollama's `keep_alive: 0`
    /// with an empty prompt).
    pub fn unload(&self, id: &str) {
        if self.0.loader.is_none() {
            return; // nothing could load it again
        }
        if let Some(s) = self.state().loaded.iter_mut().find(|s| s.listing.id == id) {
            s.expires = Some(Instant::now());
            s.unload_when_idle = true;
        }
        self.reap();
    }

    /// A request on `id` ended: start its keep-alive clock.
    fn release(&self, id: &str, keep: Option<Keep>) {
        {
            let mut st = self.state();
            let default = self.0.config.ttl;
            if let Some(s) = st.loaded.iter_mut().find(|s| s.listing.id == id) {
                s.users = s.users.saturating_sub(1);
                s.last_used = Instant::now();
                let keep = match keep {
                    // Nothing could load it again.
                    _ if self.0.loader.is_none() => Keep::Forever,
                    _ if s.unload_when_idle => Keep::For(Duration::ZERO),
                    Some(k) => k,
                    None if s.pinned => Keep::Forever,
                    None => default,
                };
                s.expires = match keep {
                    Keep::Forever => None,
                    Keep::For(d) => Some(Instant::now() + d),
                };
            }
        }
        self.reap();
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / 1e6)
}

struct Guard {
    pool: Weak<Shared>,
    id: String,
    keep: Option<Keep>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(shared) = self.pool.upgrade() {
            ModelPool(shared).release(&self.id, self.keep);
        }
    }
}

/// A loaded model's client that holds its lease for as long as it, or a generation it
/// started, lives.
struct Leased {
    inner: Arc<dyn GenerationClient>,
    guard: Arc<Guard>,
}

impl GenerationClient for Leased {
    fn model_name(&self) -> &str {
        self.inner.model_name()
    }

    fn context_length(&self) -> Option<usize> {
        self.inner.context_length()
    }

    fn vocab_size(&self) -> Option<usize> {
        self.inner.vocab_size()
    }

    fn vocab_listed(&self) -> bool {
        self.inner.vocab_listed()
    }

    fn chat_template(&self) -> Option<&str> {
        self.inner.chat_template()
    }

    fn generate(&self, req: GenerateRequest) -> Generation {
        self.inner.generate(req)
    }

    fn hold(&self) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self.guard.clone())
    }
}
