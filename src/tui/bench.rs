//! The Bench tab's state: the form (models, mode, sizes), the run in progress and its
//! live results.

/// The Bench tab.
#[derive(Debug, Default)]
pub struct BenchTab {}

impl BenchTab {
    /// A benchmark is running.
    pub fn busy(&self) -> bool {
        false
    }
}

/// What the benchmark thread reports.
#[derive(Debug)]
pub enum BenchMsg {}
