//! Generation settings of a batch item, layered: the config's `[sampling]` < the file's
//! `[defaults]` < the prompt's own values < command-line flags.

use crate::config::Config;
use crate::engine::sampler::SamplingParams;
use crate::engine::template::ChatMessage;
use crate::engine::{GenerateRequest, Prompt};
use serde::{Deserialize, Serialize};

/// Every setting a prompt set may give (in `[defaults]` or on one prompt); `None`: not set.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<usize>,
    pub min_p: Option<f32>,
    pub repeat_penalty: Option<f32>,
    pub repeat_last_n: Option<usize>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    pub seed: Option<u64>,
    /// 0: until EOS or the context is full.
    pub max_tokens: Option<usize>,
    /// 0: no window.
    pub max_kv_size: Option<usize>,
    pub stop: Option<Vec<String>>,
    /// The system message.
    pub system: Option<String>,
    /// A built-in chat template instead of the model's.
    pub template: Option<String>,
}

/// The keys [`Overrides`] accepts, for messages: the request settings, then the prompt ones.
pub fn keys() -> impl Iterator<Item = &'static str> {
    crate::engine::sampler::SETTING_KEYS
        .into_iter()
        .chain(["stop", "system", "template"])
}

impl Overrides {
    /// `self` with every value `over` sets replaced.
    pub fn then(&self, over: &Overrides) -> Overrides {
        macro_rules! pick {
            ($($f:ident),*) => { Overrides { $($f: over.$f.clone().or_else(|| self.$f.clone()),)* } };
        }
        pick!(
            temperature,
            top_p,
            top_k,
            min_p,
            repeat_penalty,
            repeat_last_n,
            presence_penalty,
            frequency_penalty,
            seed,
            max_tokens,
            max_kv_size,
            stop,
            system,
            template
        )
    }

    /// Whether this layer sets `key` (one of [`keys`]).
    pub fn sets(&self, key: &str) -> bool {
        match key {
            "temperature" => self.temperature.is_some(),
            "top_p" => self.top_p.is_some(),
            "top_k" => self.top_k.is_some(),
            "min_p" => self.min_p.is_some(),
            "repeat_penalty" => self.repeat_penalty.is_some(),
            "repeat_last_n" => self.repeat_last_n.is_some(),
            "presence_penalty" => self.presence_penalty.is_some(),
            "frequency_penalty" => self.frequency_penalty.is_some(),
            "seed" => self.seed.is_some(),
            "max_tokens" => self.max_tokens.is_some(),
            "max_kv_size" => self.max_kv_size.is_some(),
            "stop" => self.stop.is_some(),
            "system" => self.system.is_some(),
            "template" => self.template.is_some(),
            _ => false,
        }
    }
}

/// Resolved settings of one item: what its request and its sidecar say.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    pub sampling: SamplingParams,
    /// 0: until EOS or the context is full.
    pub max_tokens: usize,
    /// 0: no window.
    pub max_kv_size: usize,
    pub stop: Vec<String>,
    pub system: Option<String>,
    pub template: Option<String>,
}

impl Settings {
    /// The config's `[sampling]` table, no system message, the model's own template.
    pub fn from_config(cfg: &Config) -> Settings {
        Settings {
            sampling: cfg.sampling.params.clone(),
            max_tokens: cfg.sampling.max_tokens,
            max_kv_size: cfg.sampling.max_kv_size,
            stop: Vec::new(),
            system: None,
            template: None,
        }
    }

    /// These settings with `o`'s values applied.
    pub fn with(&self, o: &Overrides) -> Settings {
        let s = &self.sampling;
        Settings {
            sampling: SamplingParams {
                temperature: o.temperature.unwrap_or(s.temperature),
                top_p: o.top_p.unwrap_or(s.top_p),
                top_k: o.top_k.unwrap_or(s.top_k),
                min_p: o.min_p.unwrap_or(s.min_p),
                repeat_penalty: o.repeat_penalty.unwrap_or(s.repeat_penalty),
                repeat_last_n: o.repeat_last_n.unwrap_or(s.repeat_last_n),
                presence_penalty: o.presence_penalty.unwrap_or(s.presence_penalty),
                frequency_penalty: o.frequency_penalty.unwrap_or(s.frequency_penalty),
                seed: o.seed.or(s.seed),
            },
            max_tokens: o.max_tokens.unwrap_or(self.max_tokens),
            max_kv_size: o.max_kv_size.unwrap_or(self.max_kv_size),
            stop: o.stop.clone().unwrap_or_else(|| self.stop.clone()),
            system: o.system.clone().or_else(|| self.system.clone()),
            template: o.template.clone().or_else(|| self.template.clone()),
        }
    }

    /// The chat request for the user message `prompt`.
    pub fn request(&self, prompt: &str) -> GenerateRequest {
        let mut messages = Vec::with_capacity(2);
        if let Some(s) = &self.system {
            messages.push(ChatMessage::system(s.clone()));
        }
        messages.push(ChatMessage::user(prompt));
        let nonzero = |n: usize| (n > 0).then_some(n);
        GenerateRequest {
            prompt: Prompt::Chat {
                messages,
                template: self.template.clone(),
                options: Default::default(),
            },
            sampling: self.sampling.clone(),
            max_tokens: nonzero(self.max_tokens),
            stop: self.stop.clone(),
            max_kv_size: nonzero(self.max_kv_size),
            ignore_eos: false,
            logprobs: None,
            constraint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_layers_win_and_unset_keys_fall_through() {
        let cfg = Config::defaults();
        let defaults = Overrides {
            temperature: Some(0.0),
            max_tokens: Some(64),
            system: Some("Be brief.".into()),
            ..Overrides::default()
        };
        let prompt = Overrides {
            max_tokens: Some(8),
            stop: Some(vec!["\n".into()]),
            ..Overrides::default()
        };
        let cli = Overrides {
            seed: Some(5),
            ..Overrides::default()
        };
        let s = Settings::from_config(&cfg).with(&defaults.then(&prompt).then(&cli));
        assert_eq!(s.sampling.temperature, 0.0);
        assert_eq!(s.sampling.top_p, cfg.sampling.params.top_p);
        assert_eq!(s.sampling.seed, Some(5));
        assert_eq!(
            (s.max_tokens, s.stop.as_slice()),
            (8, ["\n".to_string()].as_slice())
        );
        let req = s.request("Hi");
        assert_eq!(req.max_tokens, Some(8));
        assert_eq!(req.max_kv_size, None);
        let Prompt::Chat { messages, .. } = req.prompt else {
            panic!("batch requests are chat requests")
        };
        assert_eq!(
            messages,
            [ChatMessage::system("Be brief."), ChatMessage::user("Hi")]
        );
    }

    #[test]
    fn every_key_is_known() {
        let full: Overrides = toml::from_str(
            "temperature=0.1\ntop_p=0.9\ntop_k=3\nmin_p=0.1\nrepeat_penalty=1.1\nrepeat_last_n=8\n\
             presence_penalty=0.1\nfrequency_penalty=0.1\nseed=1\nmax_tokens=2\nmax_kv_size=64\n\
             stop=[\"x\"]\nsystem=\"s\"\ntemplate=\"chatml\"\n",
        )
        .unwrap();
        for k in keys() {
            assert!(full.sets(k), "{k}");
        }
    }
}
