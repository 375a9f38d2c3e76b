//! The Server tab's actions and messages: start and stop `lmwb serve`'s server on the
//! model in use, its address, port and API key, and the request log it pushes.
//!
//! The server follows the model in use: unloading it stops the server (it would otherwise
//! keep the weights in memory, serving a model the workbench shows as gone); loading
//! another one while serving restarts the server on the same address with the new model.
//! Changing the address, port or key while serving restarts it too.

use super::action::ServerAction;
use super::app::{App, Effect, Msg};
use super::field::FieldTarget;
use super::server::{ServerMsg, Status};
use crate::server::{self, ServedModel, ServerConfig, ServerState};
use std::sync::mpsc;
use std::time::Duration;

/// How long quitting waits for requests in flight before it leaves them.
const QUIT_DRAIN: Duration = Duration::from_secs(3);

const HOST_LABEL: &str =
    "Listen on (127.0.0.1: this machine only; 0.0.0.0: every network interface)";
const PORT_LABEL: &str = "Port (0 takes any free one)";

impl App {
    pub(super) fn server_action(&mut self, a: ServerAction) {
        match a {
            ServerAction::Toggle => match self.server.status {
                Status::Running(_) => {
                    self.server.notice = None;
                    self.server_stop(false);
                }
                Status::Stopped | Status::Error(_) => self.server_start(),
                Status::Starting | Status::Stopping => {
                    self.server.notice =
                        Some("the server is starting or stopping: wait a moment".into())
                }
            },
            ServerAction::Key => self.server_toggle_key(),
            ServerAction::Host => {
                let host = self.server.host.clone();
                self.open_field(FieldTarget::ServerHost, HOST_LABEL, &host);
            }
            ServerAction::Port => {
                let port = self.server.port.to_string();
                self.open_field(FieldTarget::ServerPort, PORT_LABEL, &port);
            }
            ServerAction::Copy => {
                let mut text = self.server.base_url();
                if let Some(k) = self.server.api_key() {
                    text.push_str(&format!("\nAuthorization: Bearer {k}"));
                }
                self.server.notice = Some(format!("copied {}", text.replace('\n', " · ")));
                self.effects.push(Effect::Clipboard(text));
            }
        }
    }

    pub(super) fn on_server(&mut self, m: ServerMsg) {
        match m {
            ServerMsg::Started { model, result } => match result {
                Ok(handle) => {
                    if std::mem::take(&mut self.server.restarting) {
                        self.server.notice = Some(match &self.server.model {
                            Some(m) if *m == model => {
                                format!("restarted: serving {model} at http://{}", handle.addr())
                            }
                            _ => format!(
                                "now serving {model}: the server restarted with the model just loaded"
                            ),
                        });
                    }
                    self.server.status = Status::Running(handle.addr());
                    self.server.model = Some(model.clone());
                    self.server.handle = Some(handle);
                    self.server.refresh();
                    // The model changed while the server was binding: serve the new one.
                    if self.models.active.as_deref() != Some(model.as_str()) {
                        self.server_stop(self.client.is_some() || self.models.loading.is_some());
                    }
                }
                Err(e) => {
                    self.server.status = Status::Error(e);
                    self.server.resume = false;
                    self.server.restarting = false;
                }
            },
            ServerMsg::Stopped(result) => {
                self.server.status = match result {
                    Ok(()) => Status::Stopped,
                    Err(e) => Status::Error(e),
                };
                self.server.handle = None;
                self.server_resume();
            }
            ServerMsg::Request(e) => {
                self.server.push(e);
                self.server.refresh();
            }
        }
    }

    pub(super) fn server_field(&mut self, target: FieldTarget, text: String) {
        match target {
            FieldTarget::ServerHost => {
                if text.is_empty() || text.contains(char::is_whitespace) {
                    let hint = format!(
                        "`{text}` is not an address: type an IP address or host name, e.g. 127.0.0.1"
                    );
                    return self.server_refuse(target, HOST_LABEL, &text, hint);
                }
                if text == self.server.host {
                    return;
                }
                self.server.host = text;
            }
            FieldTarget::ServerPort => {
                let Ok(port) = text.parse::<u16>() else {
                    let hint = format!(
                        "`{text}` is not a port: type a number from 0 to 65535 (0 takes any free one)"
                    );
                    return self.server_refuse(target, PORT_LABEL, &text, hint);
                };
                if port == self.server.port {
                    return;
                }
                self.server.port = port;
            }
            _ => return,
        }
        self.server_restart("the address changed");
    }

    /// The workbench quits: stop the server, letting requests in flight finish for a
    /// moment.
    pub(super) fn server_quit(&mut self) {
        self.server.resume = false;
        let Some(handle) = self.server.handle.take() else {
            return;
        };
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(handle.shutdown());
        });
        if rx.recv_timeout(QUIT_DRAIN).is_err() {
            tracing::warn!("requests still in flight when the workbench quit");
        }
        self.server.status = Status::Stopped;
    }

    /// A model is about to replace the one in use: serve it once it has loaded.
    pub(super) fn server_model_swap(&mut self) {
        if matches!(self.server.status, Status::Running(_) | Status::Starting) {
            self.server.resume = true;
        }
    }

    /// The model in use went away: stop serving it (see the module's note).
    pub(super) fn server_model_gone(&mut self) {
        if !matches!(self.server.status, Status::Running(_)) {
            return;
        }
        let served = self.server.model.clone().unwrap_or_default();
        self.server.notice = Some(if self.server.resume {
            format!(
                "{served} was unloaded: the server restarts with the next model once it has loaded"
            )
        } else {
            let s = self.keymap.keys("server_toggle");
            format!("{served} was unloaded, so the server stopped: load a model and press {s} to serve it")
        });
        let resume = self.server.resume;
        self.server_stop(resume);
    }

    /// A load ended (in a model or an error): serve it if the server was waiting for one.
    pub(super) fn server_model_loaded(&mut self) {
        if self.server.resume && self.client.is_none() {
            self.server.resume = false;
            self.server.notice = Some(
                "the server stays stopped: the model did not load (see the Models tab)".into(),
            );
            return;
        }
        self.server_resume();
    }

    /// Start on the model in use, with the tab's settings and the config's defaults.
    fn server_start(&mut self) {
        if self.server.busy() || self.server.running() {
            return;
        }
        let Some(client) = self.client.clone() else {
            self.server.notice = Some(match &self.models.loading {
                Some((name, _)) => {
                    self.server.resume = true;
                    format!("{name} is loading: the server starts once it is ready")
                }
                None => "no model is loaded: load a model in the Models tab first (Enter loads the selected one)".into(),
            });
            return;
        };
        let id = self
            .models
            .active
            .clone()
            .unwrap_or_else(|| client.model_name().to_string());
        let row = self.models.rows.iter().find(|r| r.name == id);
        let model = ServedModel {
            created: row.map_or(0, |r| server::pool::modified_secs(&r.path)),
            info: row.and_then(|r| r.info.clone().ok()),
            id: id.clone(),
            client,
        };
        let config = ServerConfig {
            host: self.server.host.clone(),
            port: self.server.port,
            api_key: self.server.api_key().map(String::from),
            ..ServerConfig::from_config(&self.config)
        };
        let keys = (
            self.keymap.keys("server_port"),
            self.keymap.keys("server_host"),
        );
        self.server.status = Status::Starting;
        self.server.restarting = std::mem::take(&mut self.server.resume);
        if !self.server.restarting {
            self.server.notice = None;
        }
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let state = ServerState::new(&config, vec![model]);
            let log = tx.clone();
            state.requests.subscribe(Box::new(move |e| {
                let _ = log.send(Msg::Server(ServerMsg::Request(e.clone())));
            }));
            let (host, port) = (config.host.clone(), config.port);
            let result = server::serve(config, state)
                .map_err(|e| bind_error(&host, port, &e, &keys.0, &keys.1));
            if let Ok(h) = &result {
                tracing::info!(addr = %h.addr(), model = %id, "the workbench serves");
            }
            let _ = tx.send(Msg::Server(ServerMsg::Started { model: id, result }));
        });
    }

    /// Stop accepting and drain the requests in flight (off the UI thread); `resume`
    /// starts it again once stopped.
    fn server_stop(&mut self, resume: bool) {
        let Some(handle) = self.server.handle.take() else {
            return;
        };
        self.server.status = Status::Stopping;
        self.server.resume = resume;
        let tx = self.tx.clone();
        std::thread::spawn(move || {
            let result = handle
                .shutdown()
                .map_err(|e| format!("the server stopped with an error: {e}"));
            let _ = tx.send(Msg::Server(ServerMsg::Stopped(result)));
        });
    }

    /// A setting changed: a running server restarts with it.
    fn server_restart(&mut self, why: &str) {
        if self.server.running() {
            self.server.notice = Some(format!("{why}: restarting the server"));
            self.server_stop(true);
        }
    }

    /// Start again if a restart is pending and a model is in use.
    fn server_resume(&mut self) {
        if !self.server.resume || self.server.busy() || self.server.running() {
            return;
        }
        if self.client.is_some() {
            self.server_start();
        } else if self.models.loading.is_none() {
            self.server.resume = false;
        }
    }

    fn server_toggle_key(&mut self) {
        self.server.key_on = !self.server.key_on;
        if self.server.key_on && self.server.key.is_none() {
            let env = std::env::var("LMWB_API_KEY")
                .ok()
                .filter(|k| !k.trim().is_empty());
            self.server.key_from_env = env.is_some();
            self.server.key =
                Some(env.unwrap_or_else(|| format!("lmwb-{:032x}", rand::random::<u128>())));
        }
        self.server.notice = None;
        let why = if self.server.key_on {
            "the API key is on"
        } else {
            "the API key is off"
        };
        self.server_restart(why);
    }

    /// Open the field again with `text` and why it was refused.
    fn server_refuse(&mut self, target: FieldTarget, label: &str, text: &str, hint: String) {
        self.open_field(target, label, text);
        if let Some(f) = &mut self.field {
            f.hint = Some(hint);
        }
    }
}

/// Why the server could not listen, and what to do about it.
fn bind_error(host: &str, port: u16, e: &std::io::Error, port_key: &str, host_key: &str) -> String {
    use std::io::ErrorKind;
    let what = match e.kind() {
        ErrorKind::AddrInUse => format!(
            "another program uses port {port}: press {port_key} to pick another (0 takes any free one), or stop that program"
        ),
        ErrorKind::PermissionDenied => {
            format!("ports below 1024 need privileges: press {port_key} to pick a higher one")
        }
        ErrorKind::AddrNotAvailable => format!(
            "{host} is not an address of this machine: press {host_key} to use 127.0.0.1 (this machine) or 0.0.0.0 (every interface)"
        ),
        _ => format!("check the address ({host_key}) and the port ({port_key})"),
    };
    format!("cannot listen on {host}:{port}: {e}; {what}")
}
