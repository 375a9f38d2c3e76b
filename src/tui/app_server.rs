//! The Server tab's actions and messages.

use super::action::ServerAction;
use super::app::App;
use super::field::FieldTarget;
use super::server::ServerMsg;

impl App {
    pub(super) fn server_action(&mut self, _a: ServerAction) {}

    pub(super) fn on_server(&mut self, m: ServerMsg) {
        match m {}
    }

    pub(super) fn server_field(&mut self, _target: FieldTarget, _text: String) {}

    /// The workbench quits: stop the server.
    pub(super) fn server_quit(&mut self) {}
}
