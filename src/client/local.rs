//! The in-process engine as a [`GenerationClient`].

use super::GenerationClient;
use crate::engine::{EngineHandle, GenerateRequest, Generation};

/// An engine thread with its loaded model.
#[derive(Clone)]
pub struct LocalClient {
    name: String,
    handle: EngineHandle,
}

impl LocalClient {
    pub fn new(name: impl Into<String>, handle: EngineHandle) -> LocalClient {
        LocalClient {
            name: name.into(),
            handle,
        }
    }

    pub fn handle(&self) -> &EngineHandle {
        &self.handle
    }
}

impl GenerationClient for LocalClient {
    fn model_name(&self) -> &str {
        &self.name
    }

    fn context_length(&self) -> Option<usize> {
        Some(self.handle.info().context_length)
    }

    fn vocab_size(&self) -> Option<usize> {
        self.handle.info().config.as_ref().map(|c| c.vocab_size)
    }

    fn chat_template(&self) -> Option<&str> {
        self.handle.chat_template()
    }

    fn notes(&self) -> Vec<String> {
        self.handle.info().notes.clone()
    }

    fn generate(&self, req: GenerateRequest) -> Generation {
        self.handle.generate(req)
    }
}
