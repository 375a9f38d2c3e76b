//! `lmwb serve`: serve the OpenAI, Anthropic and Ollama APIs until Ctrl-C / SIGTERM
//! (requests in flight finish first). The model `-m` names loads at start and stays; any
//! other model of the registry loads on its first request, within `--max-models` and
//! `--memory-budget`, and unloads after `--ttl` idle.

use super::gen;
use crate::cli::ServeArgs;
use crate::config::Config;
use crate::server::keep::Keep;
use crate::server::pool::{modified_secs, ModelPool, PoolConfig};
use crate::server::{self, ServedEmbedder, ServedModel, ServerConfig, ServerState};
use crate::tui::loader::{EngineLoader, ModelLoader, ModelRow};
use std::path::PathBuf;
use std::sync::Arc;

pub fn run(args: ServeArgs, cfg: &Config) -> anyhow::Result<u8> {
    let spec = args
        .model
        .clone()
        .unwrap_or_else(|| cfg.default_model.clone());
    let sources = crate::models::Sources::from_config(cfg);
    let path = crate::models::resolve(&spec, &sources)?;
    if path.is_dir() && crate::engine::embed::is_embedding_dir(&path) {
        anyhow::bail!(
            "{} is an embedding model: `-m` takes the chat model; serve it with `--embedding-model {spec}`",
            path.display()
        );
    }
    let pool_config = pool_config(&args, cfg)?;
    let loader = Arc::new(EngineLoader {
        sources,
        options: gen::engine_options(&args.engine, cfg).map_err(|e| e.to_string()),
        // The server serves models on this machine; it does not proxy remote backends.
        backends: vec![],
        max_kv_size: cfg.sampling.max_kv_size,
        kv_dtype: crate::models::fit::KvDtype::for_device(&cfg.device),
    });
    // The registry's row names the model; a path outside the model folders gets its stem.
    let row = loader
        .scan()
        .into_iter()
        .find(|r| r.path == path)
        .unwrap_or_else(|| ModelRow {
            name: if path.is_file() {
                path.file_stem()
            } else {
                path.file_name()
            }
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default(),
            info: Err(String::new()),
            metadata: vec![],
            path: path.clone(),
            remote: None,
            fit: None,
        });
    let base = ServerConfig::from_config(cfg);
    let config = ServerConfig {
        host: args.host,
        port: args.port,
        api_key: args.api_key,
        cors_origins: args.cors_origin,
        concurrency: args.concurrency.map_or(base.concurrency, |n| n.max(1)),
        queue: args.queue,
        handle_signals: true,
        ..base
    };
    let pool = ModelPool::new(Some(loader.clone() as Arc<dyn ModelLoader>), pool_config);
    pool.set_loading(&row.name, true);
    let state = ServerState::with_pool(&config, pool.clone());
    // Listen first, so /health says `loading` while the model loads.
    let (host, port) = (config.host.clone(), config.port);
    let handle = server::serve(config, state).map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {host}:{port}: {e}; pick another --port (0: any free one) or --host"
        )
    })?;
    eprintln!(
        "lmwb: listening on http://{} while {} loads ({})",
        handle.addr(),
        row.name,
        path.display()
    );
    let embedder = match embedder(args.embedding_model.as_deref(), cfg) {
        Ok(e) => e,
        Err(e) => {
            let _ = handle.shutdown();
            return Err(e);
        }
    };
    let embed_note = match &embedder {
        Some(e) => format!(", embeddings with {}", e.id),
        None => String::new(),
    };
    if let Some(e) = embedder {
        handle.state().add_embedder(e);
    }
    let started = std::time::Instant::now();
    let client = match loader.load(&row) {
        Ok(c) => c,
        Err(e) => {
            pool.set_loading(&row.name, false);
            let _ = handle.shutdown();
            anyhow::bail!(e);
        }
    };
    tracing::info!(model = %row.name, load_ms = started.elapsed().as_millis() as u64, "loaded");
    pool.add(ServedModel {
        id: row.name.clone(),
        client,
        created: modified_secs(&path),
        info: row.info.clone().ok(),
    });
    pool.set_loading(&row.name, false);
    let others = pool.available().len().saturating_sub(1);
    eprintln!(
        "lmwb: serving {}{embed_note} at http://{} (OpenAI and Anthropic APIs under /v1, Ollama's under /api); {others} more model(s) load on request; Ctrl-C stops",
        row.name,
        handle.addr()
    );
    tracing::info!(addr = %handle.addr(), model = %row.name, "serving");
    handle.wait()?;
    eprintln!("lmwb: server stopped");
    Ok(0)
}

/// `--max-models`, `--memory-budget`, `--ttl` over the `[server]` table.
fn pool_config(args: &ServeArgs, cfg: &Config) -> anyhow::Result<PoolConfig> {
    let max_loaded = args.max_models.unwrap_or(cfg.server.max_models);
    if max_loaded == 0 {
        anyhow::bail!("--max-models must be at least 1 (the model -m names stays loaded)");
    }
    let budget = args
        .memory_budget
        .clone()
        .unwrap_or_else(|| cfg.server.memory_budget.clone());
    let memory_budget = if budget.trim().is_empty() {
        default_budget()
    } else {
        Some(parse_size::parse_size(budget.trim()).map_err(|e| {
            anyhow::anyhow!("--memory-budget `{budget}`: {e}; write e.g. 8G, 512M or 4GiB")
        })?)
    };
    let ttl_text = args.ttl.clone().unwrap_or_else(|| cfg.server.ttl.clone());
    let ttl = Keep::parse(&ttl_text).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
    Ok(PoolConfig {
        max_loaded,
        memory_budget,
        ttl,
    })
}

/// 80% of the machine's memory (no limit when it cannot be read).
fn default_budget() -> Option<u64> {
    let mut sys = sysinfo::System::new().ok()?;
    sys.refresh_memory();
    Some(sys.total_memory() / 5 * 4).filter(|&b| b > 0)
}

/// The embedding model to serve: `--embedding-model`, else the config's `embedding_model`;
/// `none` serves none. The built-in default missing is a notice; any other missing is an error.
fn embedder(flag: Option<&str>, cfg: &Config) -> anyhow::Result<Option<ServedEmbedder>> {
    let spec = flag.unwrap_or(&cfg.embedding_model);
    if spec.is_empty() || spec.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    let sources = crate::models::Sources::from_config(cfg);
    let (id, path): (String, PathBuf) = match crate::models::lookup(spec, &sources) {
        Ok(r) => (r.name, r.path),
        Err(e) if flag.is_none() && spec == Config::defaults().embedding_model => {
            eprintln!(
                "lmwb: notice: no embedding model `{spec}` here, so /v1/embeddings and /api/embed answer 404; `bash scripts/fetch-models.sh` fetches it, --embedding-model none silences this"
            );
            tracing::info!(%e, "no embedding model");
            return Ok(None);
        }
        Err(e) => anyhow::bail!("embedding model: {e}"),
    };
    let embedder = crate::engine::embed::Embedder::load(&path)
        .map_err(|e| anyhow::anyhow!("embedding model `{spec}`: {e}"))?;
    tracing::info!(model = %id, dims = embedder.dims(), "embedding model loaded");
    Ok(Some(ServedEmbedder {
        id,
        embedder: Arc::new(embedder),
        created: modified_secs(&path),
        info: crate::engine::model::inspect(&path).ok(),
    }))
}
