//! Side threads: everything that does I/O for the core without slowing it.

pub mod notify;
