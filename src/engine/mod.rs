//! The in-process engine: model forward, KV cache, sampling, tokenizer, chat templates.

pub mod sampler;
pub mod stop;
pub mod template;
pub mod tokenizer;
pub mod detok;
