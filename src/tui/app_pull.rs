//! The Models pane's pull: `REPO[:FILE]` from the hub in the background, with progress;
//! the registry is scanned again when it is done, so the model appears in the list.

use super::app::App;
use super::pull::{self, PullMsg, PullState, Reporter};
use crate::models::downloaded::ManifestFile;
use crate::models::hub::HubEnv;
use crate::models::pull::PullRequest;

impl App {
    pub(super) fn pull(&mut self, spec: String) {
        if spec.is_empty() {
            return;
        }
        if self.models.pulling() {
            self.models.error = Some("a pull is already running: wait for it to finish".into());
            return;
        }
        self.models.pull = Some(PullState::new(spec.clone()));
        let send = pull::sender(self.tx.clone());
        std::thread::spawn(move || {
            let req = PullRequest {
                spec,
                revision: "main".into(),
                offline: false,
            };
            let mut reporter = Reporter::new(send);
            let result = crate::models::pull::pull(
                &req,
                HubEnv::from_env(),
                &ManifestFile::at_default(),
                &mut reporter,
            )
            .map(|o| (o.name, o.model_path))
            .map_err(|e| e.to_string());
            (reporter.send)(PullMsg::Done(result));
        });
    }

    pub(super) fn on_pull(&mut self, m: PullMsg) {
        let done = matches!(m, PullMsg::Done(Ok(_)));
        if let Some(p) = &mut self.models.pull {
            p.on(m);
        }
        if done {
            self.rescan();
        }
    }
}
