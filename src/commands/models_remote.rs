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

/// The rows `models list --json` adds for remote models (`"source": "backend"`): one per
/// model a backend serves, or one `BACKEND/` row with the `error` when it cannot be listed.
pub fn json_rows(cfg: &Config) -> Vec<Value> {
    let mut rows = Vec::new();
    for b in &cfg.backends {
        let row = |name: String| {
            json!({"name": name, "source": "backend", "backend": b.name,
                   "base_url": b.base(), "kind": b.kind.as_str()})
        };
        match listing(b) {
            Ok(models) => rows.extend(models.into_iter().map(|m| {
                let mut r = row(format!("{}/{}", b.name, m.id));
                r["context_length"] = json!(m.context_length);
                r
            })),
            Err(e) => {
                let mut r = row(format!("{}/", b.name));
                r["error"] = json!(e);
                rows.push(r);
            }
        }
    }
    rows
}

/// The table printed after the local models (nothing when no backend is configured).
pub fn print(cfg: &Config) {
    if cfg.backends.is_empty() {
        return;
    }
    println!(
        "\n{:<40} {:<8} {:>8}  WHERE",
        "REMOTE MODEL", "KIND", "CONTEXT"
    );
    for b in &cfg.backends {
        match listing(b) {
            Ok(models) if models.is_empty() => {
                println!(
                    "{:<40} {:<8} {:>8}  {} (serves no model)",
                    format!("{}/", b.name),
                    b.kind.as_str(),
                    "-",
                    b.base()
                )
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
            Err(e) => println!(
                "{:<40} {:<8} {:>8}  unreachable: {e}",
                format!("{}/", b.name),
                b.kind.as_str(),
                "-"
            ),
        }
    }
}
