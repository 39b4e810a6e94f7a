//! The simulator's errors: start-up failures, and why a connection it served ended.

use crate::kraken::sign::CredentialsError;

/// Why the simulator could not start, or a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A socket call failed (bind, accept, options).
    #[error("kraken-sim: {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The certificate, the TLS identity or the TLS handshake failed.
    #[error("kraken-sim tls: {0}")]
    Tls(String),
    /// The WebSocket handshake or a frame failed.
    #[error("kraken-sim websocket: {0}")]
    Ws(String),
    /// The HTTP server for the REST API could not bind.
    #[error("kraken-sim rest bind: {0}")]
    Http(String),
    /// The listener is not on an IP address.
    #[error("kraken-sim: not an IP listener")]
    NotIp,
    /// A starting balance that is not a decimal at the simulator's precision.
    #[error("kraken-sim: balance `{0}` is not a decimal at the simulator's precision")]
    Balance(String),
    /// The demo key pair was refused.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
}

impl SimError {
    /// A socket error while doing `what`.
    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> SimError {
        move |source| SimError::Io { what, source }
    }
}

/// An error the simulated private REST API answers with, in Kraken's own words
/// (`EAPI:Invalid key`, `EOrder:Insufficient funds`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(pub &'static str);

impl From<&'static str> for ApiError {
    fn from(s: &'static str) -> ApiError {
        ApiError(s)
    }
}
