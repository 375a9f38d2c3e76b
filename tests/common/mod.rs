//! Helpers shared by integration tests (`mod common;` in a test file).
#![allow(dead_code)]

pub mod real;
pub mod stores;
pub mod tiny;
pub mod tiny_vocab;
pub mod tmux;
pub mod tui;
