//! The Batch tab's state: the prompt set, its plan, the run and each item's state.

/// The Batch tab.
#[derive(Debug, Default)]
pub struct BatchTab {}

impl BatchTab {
    /// A batch is running.
    pub fn busy(&self) -> bool {
        false
    }
}

/// What the batch thread reports.
#[derive(Debug)]
pub enum BatchMsg {}
