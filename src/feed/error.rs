//! The feed thread's set-up errors. Network failures after start-up are not errors: the
//! supervisor reconnects.

/// Why the feed thread could not start (or its recorder could not finish).
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// `ws_url` is not a `ws://` or `wss://` URL with a host.
    #[error("ws_url `{url}`: {why}")]
    Url {
        /// The URL as configured.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// `ws_ca_file` cannot be read or is not a PEM certificate.
    #[error("ws_ca_file `{path}`: {why}")]
    CaFile {
        /// The file as configured.
        path: String,
        /// The read or parse error.
        why: String,
    },
    /// The TLS library could not build a connector.
    #[error("tls: {0}")]
    Tls(#[from] native_tls::Error),
    /// The `--record` file cannot be created or written.
    #[error("record file `{path}`: {source}")]
    Record {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A thread could not be started, or died.
    #[error("{0} thread: could not start or panicked")]
    Thread(&'static str),
    /// The poll or its waker could not be created.
    #[error("poll: {0}")]
    Poll(std::io::Error),
}
