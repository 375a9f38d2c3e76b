//! The Server tab's state: the server's settings, the running server and its request log.
//!
//! The server is `lmwb serve`'s own ([`crate::server::serve`], configured by
//! [`ServerConfig::from_config`](crate::server::ServerConfig::from_config)), on the model
//! the workbench has loaded (the same `Arc` the chat uses). It starts and stops on threads
//! of its own; what they find comes back as [`ServerMsg`]s.

use crate::server::metrics::Highlights;
use crate::server::request_log::RequestEntry;
use crate::server::ServerHandle;
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Entries the tab keeps (the server keeps as many).
pub const LOG_CAPACITY: usize = crate::server::request_log::CAPACITY;

/// Where the server stands.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    Stopped,
    /// Binding `host:port`.
    Starting,
    /// Listening on this address.
    Running(SocketAddr),
    /// Draining the requests in flight.
    Stopping,
    /// The last start failed (why, and what to do).
    Error(String),
}

/// The Server tab.
pub struct ServerTab {
    /// The address and port to listen on (`a` and `p` edit them).
    pub host: String,
    pub port: u16,
    /// Whether requests need `Authorization: Bearer KEY` (`k`), and the key: `LMWB_API_KEY`
    /// when set, else one made up for this session.
    pub key_on: bool,
    pub key: Option<String>,
    /// The key came from `LMWB_API_KEY`.
    pub key_from_env: bool,
    pub status: Status,
    /// The model served (its registry name), or served last.
    pub model: Option<String>,
    /// The running server (taken to stop it).
    pub handle: Option<ServerHandle>,
    /// Requests as they ended, oldest first.
    pub log: VecDeque<RequestEntry>,
    /// The server's counters as of the last request (or start).
    pub highlights: Highlights,
    /// What just happened (a restart, a refusal), shown under the status.
    pub notice: Option<String>,
    /// Start again once stopped (a setting changed, or the model changed, while serving).
    pub resume: bool,
    /// The start under way is such a restart.
    pub restarting: bool,
}

impl Default for ServerTab {
    fn default() -> ServerTab {
        ServerTab {
            host: "127.0.0.1".into(),
            port: 8080,
            key_on: false,
            key: None,
            key_from_env: false,
            status: Status::Stopped,
            model: None,
            handle: None,
            log: VecDeque::new(),
            highlights: Highlights::default(),
            notice: None,
            resume: false,
            restarting: false,
        }
    }
}

impl ServerTab {
    /// The server is starting or stopping.
    pub fn busy(&self) -> bool {
        matches!(self.status, Status::Starting | Status::Stopping)
    }

    /// Listening now.
    pub fn running(&self) -> bool {
        matches!(self.status, Status::Running(_))
    }

    /// The address clients use: where it listens, else where it would.
    pub fn addr(&self) -> String {
        match &self.status {
            Status::Running(a) => a.to_string(),
            _ if self.host.contains(':') => format!("[{}]:{}", self.host, self.port),
            _ => format!("{}:{}", self.host, self.port),
        }
    }

    /// The OpenAI base URL (the Ollama and Anthropic routes live on the same address).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr())
    }

    /// The key requests must carry, when one is required.
    pub fn api_key(&self) -> Option<&str> {
        self.key.as_deref().filter(|_| self.key_on)
    }

    /// Keep `e`, dropping the oldest past [`LOG_CAPACITY`].
    pub fn push(&mut self, e: RequestEntry) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(e);
    }

    /// Read the counters again once a second (the gauges' tick); true when they changed.
    pub fn tick(&mut self) -> bool {
        let before = self.highlights.clone();
        self.refresh();
        self.highlights != before
    }

    /// Read the running server's counters again.
    pub fn refresh(&mut self) {
        if let Some(h) = &self.handle {
            self.highlights = h.state().highlights();
        }
    }
}

/// What the server's threads report.
pub enum ServerMsg {
    /// The server listens (or could not), serving `model`.
    Started {
        model: String,
        result: Result<ServerHandle, String>,
    },
    /// The server stopped, its requests in flight finished.
    Stopped(Result<(), String>),
    /// A request ended.
    Request(RequestEntry),
}

impl std::fmt::Debug for ServerMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ServerMsg::Started { model, result } => f
                .debug_struct("Started")
                .field("model", model)
                .field("addr", &result.as_ref().map(|h| h.addr()))
                .finish(),
            ServerMsg::Stopped(r) => f.debug_tuple("Stopped").field(r).finish(),
            ServerMsg::Request(e) => f.debug_tuple("Request").field(e).finish(),
        }
    }
}
