//! The remote backends' part of `lmwb models list`: each configured backend, whether it
//! answers, and the models it serves (`-m BACKEND/MODEL`).

use crate::client::backend::BackendConfig;
use crate::client::{Connection, RemoteModel};
use crate::config::Config;
use serde_json::{json, Value};

/// A backend's listing, or why it could not be read.
fn listing(b: &BackendConfig) -> Result<Vec<RemoteModel>, String> {
    Connection::new(b)
        .and_then(|c| c.models())
        .map_err(|e| e.to_string())
}

/// The `backends` array of `models list --json`.
pub fn json(cfg: &Config) -> Value {
    cfg.backends
        .iter()
        .map(|b| {
            let mut v = json!({"name": b.name, "base_url": b.base(), "kind": b.kind.as_str()});
            match listing(b) {
                Ok(models) => {
                    v["reachable"] = json!(true);
                    v["models"] = json!(models);
                }
                Err(e) => {
                    v["reachable"] = json!(false);
                    v["error"] = json!(e);
                }
            }
            v
        })
        .collect()
}

/// The table printed after the local models (nothing when no backend is configured).
pub fn print(cfg: &Config) {
    if cfg.backends.is_empty() {
        return;
    }
    println!("\n{:<40} {:<8} {:>8}  WHERE", "REMOTE MODEL", "KIND", "CONTEXT");
    for b in &cfg.backends {
        match listing(b) {
            Ok(models) if models.is_empty() => {
                println!("{:<40} {:<8} {:>8}  {} (serves no model)", format!("{}/", b.name), b.kind.as_str(), "-", b.base())
            }
            Ok(models) => {
                for m in models {
                    println!(
                        "{:<40} {:<8} {:>8}  {}",
                        format!("{}/{}", b.name, m.id),
                        b.kind.as_str(),
                        m.context_length.map_or("-".to_string(), |c| c.to_string()),
                        b.base()
                    );
                }
            }
            Err(e) => println!("{:<40} {:<8} {:>8}  unreachable: {e}", format!("{}/", b.name), b.kind.as_str(), "-"),
        }
    }
}
