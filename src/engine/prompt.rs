//! A request's prompt as token ids: chat template (the model's, read once, or a named
//! built-in one) → tokenizer → BOS when the model asks for it.

use super::error::EngineError;
use super::model::LoadedModel;
use super::request::Prompt;
use super::template::{ChatTemplate, TemplateError};

/// Turns prompts into ids; keeps the model's parsed chat template between requests.
#[derive(Default)]
pub(crate) struct PromptBuilder {
    template: Option<ChatTemplate>,
}

impl PromptBuilder {
    fn model_template(&mut self, m: &LoadedModel) -> Result<&ChatTemplate, EngineError> {
        if self.template.is_none() {
            let Some(src) = &m.chat_template else {
                let model = m.info.path.display().to_string();
                return Err(TemplateError::Missing { model }.into());
            };
            let tok = &m.tokenizer;
            let t = ChatTemplate::new(
                src,
                tok.bos_token().map(String::from),
                tok.eos_token().map(String::from),
            )?;
            self.template = Some(t);
        }
        Ok(self.template.as_ref().expect("just set"))
    }

    pub(crate) fn ids(
        &mut self,
        m: &LoadedModel,
        prompt: &Prompt,
    ) -> Result<Vec<u32>, EngineError> {
        let text = match prompt {
            Prompt::Tokens(ids) => {
                let vocab = m.model.vocab_size();
                if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab) {
                    return Err(EngineError::TokenOutOfRange { id, vocab });
                }
                return Ok(ids.clone());
            }
            Prompt::Raw(text) => text.clone(),
            Prompt::Chat {
                messages,
                template,
                options,
            } => {
                let builtin;
                let t = match template {
                    Some(name) => {
                        builtin = ChatTemplate::builtin(name)?;
                        &builtin
                    }
                    None => self.model_template(m)?,
                };
                let mut text = t.render_with_tools(messages, &options.tools, true)?;
                text.push_str(&options.prefill);
                text
            }
        };
        let tok = &m.tokenizer;
        let mut ids = tok.encode(&text, false)?;
        if tok.add_bos_default() {
            if let Some(bos) = tok.bos_id() {
                if ids.first() != Some(&bos) {
                    ids.insert(0, bos);
                }
            }
        }
        Ok(ids)
    }
}
