//! The Server tab's state: the server's settings, the running server and its request log.

/// The Server tab.
#[derive(Default)]
pub struct ServerTab {}

impl ServerTab {
    /// The server is starting or stopping.
    pub fn busy(&self) -> bool {
        false
    }
}

/// What the server's threads report.
#[derive(Debug)]
pub enum ServerMsg {}
