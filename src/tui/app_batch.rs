//! The Batch tab's actions and messages.

use super::action::BatchAction;
use super::app::App;
use super::batch::BatchMsg;

impl App {
    pub(super) fn batch_action(&mut self, _a: BatchAction) {}

    pub(super) fn on_batch(&mut self, m: BatchMsg) {
        match m {}
    }

    pub(super) fn batch_field(&mut self, _text: String) {}

    pub(super) fn batch_complete(&mut self) {}

    pub(super) fn batch_wheel(&mut self, _n: i32) {}

    /// The workbench quits: cancel a running batch.
    pub(super) fn batch_quit(&mut self) {}
}
