//! The application: the one place where threads are started and wired together.
//!
//! `main.rs` parses the command line and calls in here; everything below (`core`, `feed`,
//! `exec`, `side`, ...) takes its own settings and knows nothing of the app's [`config::Config`].

pub mod commands;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod output;
pub mod session;
