//! The Bench tab's actions and messages.

use super::action::BenchAction;
use super::app::App;
use super::bench::BenchMsg;

impl App {
    pub(super) fn bench_action(&mut self, _a: BenchAction) {}

    pub(super) fn on_bench(&mut self, m: BenchMsg) {
        match m {}
    }

    pub(super) fn bench_field(&mut self, _i: u8, _text: String) {}

    /// The workbench quits: cancel a running benchmark.
    pub(super) fn bench_quit(&mut self) {}
}
