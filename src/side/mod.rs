//! Side threads: everything that does I/O for the core without slowing it.

pub mod control;
pub mod dashboard;
pub mod explain;
pub mod history;
pub mod journal;
pub mod metrics;
pub mod notify;
pub mod snapshot;
pub mod status;
pub mod telegram;
pub mod telegram_commands;
