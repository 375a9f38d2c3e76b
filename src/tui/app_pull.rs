//! The Models pane's pull: `REPO[:FILE]` from the hub in the background, with progress.

use super::app::App;
use super::pull::PullMsg;

impl App {
    pub(super) fn pull(&mut self, _spec: String) {}

    pub(super) fn on_pull(&mut self, m: PullMsg) {
        match m {}
    }
}
