//! Chat-side text processing shared by every front end: reasoning channels (Harmony and
//! `<think>`), and markdown turned into styled terminal lines.

pub mod highlight;
pub mod markdown;
pub mod reasoning;
pub mod session;
pub mod tools;
pub mod transcript;
mod wrap;
