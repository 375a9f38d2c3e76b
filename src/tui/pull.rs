//! Pulling a model from the hub in the Models pane: the download's progress.

/// What the download thread reports.
#[derive(Debug)]
pub enum PullMsg {}

/// A pull: what is downloading, how far it is, or how it ended.
#[derive(Debug, Clone, Default)]
pub struct PullState {}

impl PullState {
    pub fn running(&self) -> bool {
        false
    }
}
