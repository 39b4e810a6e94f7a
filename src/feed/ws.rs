//! One non-blocking WebSocket client connection: mio TCP, optional native-tls, tungstenite.
//!
//! Every phase (TCP connect, TLS handshake, WebSocket handshake, open) is driven by readiness
//! events from the feed thread's `Poll`: a call that would block returns and the next event
//! resumes it. Nothing here blocks except the DNS lookup when the connection starts.

use std::io::{self, Read, Write};
use std::net::ToSocketAddrs;

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use native_tls::{
    HandshakeError as TlsHandshakeError, MidHandshakeTlsStream, TlsConnector, TlsStream,
};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::client::ClientHandshake;
use tungstenite::handshake::{HandshakeError, MidHandshake};
use tungstenite::http::Uri;
use tungstenite::{Message, WebSocket};

use crate::feed::error::FeedError;

/// Largest WebSocket message (and frame) accepted from the exchange, bytes.
pub const MAX_MESSAGE: usize = 1 << 20;

/// Plain TCP for `ws://`, TLS for `wss://`.
#[derive(Debug)]
pub enum Stream {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://`
    Tls(Box<TlsStream<TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// Where to connect, parsed once from the configured URL.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The URL as configured.
    pub url: String,
    /// Host name (for DNS, SNI and certificate checks).
    pub host: String,
    /// Port (default 80 / 443).
    pub port: u16,
    /// `wss://`.
    pub tls: bool,
}

impl Endpoint {
    /// Parses a `ws://` or `wss://` URL.
    ///
    /// # Errors
    /// Another scheme, or no host.
    pub fn parse(url: &str) -> Result<Endpoint, FeedError> {
        let bad = |why: String| FeedError::Url {
            url: url.to_string(),
            why,
        };
        let uri: Uri = url.parse().map_err(|e| bad(format!("{e}")))?;
        let tls = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            _ => return Err(bad("the scheme must be ws:// or wss://".into())),
        };
        let host = uri
            .host()
            .ok_or_else(|| bad("no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Ok(Endpoint {
            url: url.to_string(),
            host,
            port,
            tls,
        })
    }
}

/// Why a connection ended.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// DNS, connect, read or write failure.
    #[error("network: {0}")]
    Io(#[from] io::Error),
    /// TLS handshake failure (certificate, protocol).
    #[error("tls: {0}")]
    Tls(String),
    /// WebSocket protocol or handshake failure.
    #[error("websocket: {0}")]
    Ws(String),
    /// The server closed the connection.
    #[error("closed by the server")]
    Closed,
}

enum Phase {
    Connecting(TcpStream),
    Tls(MidHandshakeTlsStream<TcpStream>),
    Ws(MidHandshake<ClientHandshake<Stream>>),
    Open(Box<WebSocket<Stream>>),
    Done,
}

/// A connection in progress or open.
pub struct Connection {
    phase: Phase,
    endpoint: Endpoint,
    tls: Option<TlsConnector>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let phase = match self.phase {
            Phase::Connecting(_) => "connecting",
            Phase::Tls(_) => "tls handshake",
            Phase::Ws(_) => "websocket handshake",
            Phase::Open(_) => "open",
            Phase::Done => "done",
        };
        f.debug_struct("Connection")
            .field("url", &self.endpoint.url)
            .field("phase", &phase)
            .finish()
    }
}

/// What reading produced.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReadOutcome {
    /// Text frames handed to the callback.
    pub frames: u64,
    /// Binary, ping, pong or close frames (not Kraken data).
    pub other: u64,
}

impl Connection {
    /// Starts a non-blocking connect and registers the socket under `token`.
    ///
    /// # Errors
    /// DNS failure or no address.
    pub fn start(
        endpoint: &Endpoint,
        tls: Option<TlsConnector>,
        registry: &Registry,
        token: Token,
    ) -> Result<Connection, WsError> {
        let addr = (endpoint.host.as_str(), endpoint.port)
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no address for host"))?;
        let mut stream = TcpStream::connect(addr)?;
        registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)?;
        Ok(Connection {
            phase: Phase::Connecting(stream),
            endpoint: endpoint.clone(),
            tls,
        })
    }

    /// True once the WebSocket handshake has completed.
    #[must_use]
    pub fn is_open(&self) -> bool {
        matches!(self.phase, Phase::Open(_))
    }

    /// Advances the handshakes as far as the socket allows. Returns `true` when open.
    ///
    /// # Errors
    /// Any failure; the connection is then unusable.
    pub fn drive(&mut self) -> Result<bool, WsError> {
        loop {
            let phase = std::mem::replace(&mut self.phase, Phase::Done);
            self.phase = match phase {
                Phase::Connecting(stream) => {
                    if let Some(e) = stream.take_error()? {
                        return Err(e.into());
                    }
                    match stream.peer_addr() {
                        Ok(_) => {}
                        Err(e)
                            if e.kind() == io::ErrorKind::NotConnected
                                || e.kind() == io::ErrorKind::WouldBlock =>
                        {
                            self.phase = Phase::Connecting(stream);
                            return Ok(false);
                        }
                        Err(e) => return Err(e.into()),
                    }
                    // Latency over throughput: small frames go out at once.
                    stream.set_nodelay(true)?;
                    match &self.tls {
                        Some(connector) => match connector.connect(&self.endpoint.host, stream) {
                            Ok(s) => self.ws_handshake(Stream::Tls(Box::new(s)))?,
                            Err(TlsHandshakeError::WouldBlock(mid)) => Phase::Tls(mid),
                            Err(TlsHandshakeError::Failure(e)) => {
                                return Err(WsError::Tls(e.to_string()));
                            }
                        },
                        None => self.ws_handshake(Stream::Plain(stream))?,
                    }
                }
                Phase::Tls(mid) => match mid.handshake() {
                    Ok(s) => self.ws_handshake(Stream::Tls(Box::new(s)))?,
                    Err(TlsHandshakeError::WouldBlock(mid)) => {
                        self.phase = Phase::Tls(mid);
                        return Ok(false);
                    }
                    Err(TlsHandshakeError::Failure(e)) => return Err(WsError::Tls(e.to_string())),
                },
                Phase::Ws(mid) => match mid.handshake() {
                    Ok((ws, _)) => Phase::Open(Box::new(ws)),
                    Err(HandshakeError::Interrupted(mid)) => {
                        self.phase = Phase::Ws(mid);
                        return Ok(false);
                    }
                    Err(HandshakeError::Failure(e)) => return Err(WsError::Ws(e.to_string())),
                },
                open @ Phase::Open(_) => {
                    self.phase = open;
                    return Ok(true);
                }
                Phase::Done => return Err(WsError::Closed),
            };
        }
    }

    fn ws_handshake(&self, stream: Stream) -> Result<Phase, WsError> {
        let request = self
            .endpoint
            .url
            .as_str()
            .into_client_request()
            .map_err(|e| WsError::Ws(e.to_string()))?;
        // Bound what one message may make us buffer: Kraken's largest (a depth-1000 book
        // snapshot) is about 100 kB; a hostile or broken peer's megabytes end the connection
        // (a reconnect and a fresh snapshot) instead of growing memory.
        let config = tungstenite::protocol::WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        match tungstenite::client::client_with_config(request, stream, Some(config)) {
            Ok((ws, _)) => Ok(Phase::Open(Box::new(ws))),
            Err(HandshakeError::Interrupted(mid)) => Ok(Phase::Ws(mid)),
            Err(HandshakeError::Failure(e)) => Err(WsError::Ws(e.to_string())),
        }
    }

    /// Reads every complete frame available now, handing each text frame to `on_text`.
    /// Returns when the socket would block.
    ///
    /// # Errors
    /// The connection failed or was closed.
    pub fn read(&mut self, mut on_text: impl FnMut(&[u8])) -> Result<ReadOutcome, WsError> {
        let Phase::Open(ws) = &mut self.phase else {
            return Ok(ReadOutcome::default());
        };
        let mut out = ReadOutcome::default();
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    out.frames += 1;
                    on_text(t.as_bytes());
                }
                Ok(Message::Close(_)) => return Err(WsError::Closed),
                Ok(_) => out.other += 1,
                Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Pongs to protocol pings are queued by tungstenite; push them out.
                    Self::flush_ws(ws)?;
                    return Ok(out);
                }
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Err(WsError::Closed);
                }
                Err(tungstenite::Error::Io(e)) => return Err(e.into()),
                Err(e) => return Err(WsError::Ws(e.to_string())),
            }
        }
    }

    /// Queues a text frame and writes as much as the socket takes; the rest goes out on the
    /// next writable event ([`Connection::flush`]).
    ///
    /// # Errors
    /// The connection is not open or failed.
    pub fn send_text(&mut self, text: &str) -> Result<(), WsError> {
        let Phase::Open(ws) = &mut self.phase else {
            return Err(WsError::Closed);
        };
        match ws.write(Message::text(text)) {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(WsError::Ws(e.to_string())),
        }
        Self::flush_ws(ws)
    }

    /// Writes queued bytes (call on writable events).
    ///
    /// # Errors
    /// The connection failed.
    pub fn flush(&mut self) -> Result<(), WsError> {
        match &mut self.phase {
            Phase::Open(ws) => Self::flush_ws(ws),
            _ => Ok(()),
        }
    }

    fn flush_ws(ws: &mut WebSocket<Stream>) -> Result<(), WsError> {
        match ws.flush() {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(tungstenite::Error::Io(e)) => Err(e.into()),
            Err(e) => Err(WsError::Ws(e.to_string())),
        }
    }

    /// Deregisters the socket (closing happens on drop).
    pub fn close(mut self, registry: &Registry) {
        let stream: Option<&mut TcpStream> = match &mut self.phase {
            Phase::Connecting(s) => Some(s),
            Phase::Tls(mid) => Some(mid.get_mut()),
            Phase::Ws(mid) => match mid.get_mut().get_mut() {
                Stream::Plain(s) => Some(s),
                Stream::Tls(s) => Some(s.get_mut()),
            },
            Phase::Open(ws) => match ws.get_mut() {
                Stream::Plain(s) => Some(s),
                Stream::Tls(s) => Some(s.get_mut()),
            },
            Phase::Done => None,
        };
        if let Some(s) = stream {
            let _ = registry.deregister(s);
        }
    }
}

/// A TLS connector for `wss://`, trusting the system roots plus `extra_ca_pem` if given.
///
/// # Errors
/// The certificate file cannot be read or parsed.
pub fn tls_connector(extra_ca_pem: Option<&str>) -> Result<TlsConnector, FeedError> {
    let mut b = TlsConnector::builder();
    if let Some(path) = extra_ca_pem {
        let bad = |why: String| FeedError::CaFile {
            path: path.to_string(),
            why,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let cert = native_tls::Certificate::from_pem(&pem).map_err(|e| bad(e.to_string()))?;
        b.add_root_certificate(cert);
    }
    Ok(b.build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_from_urls() {
        let e = Endpoint::parse("wss://ws.kraken.com/v2").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.tls),
            ("ws.kraken.com", 443, true)
        );
        let e = Endpoint::parse("ws://127.0.0.1:8790/v2").unwrap();
        assert_eq!((e.host.as_str(), e.port, e.tls), ("127.0.0.1", 8790, false));
        let e = Endpoint::parse("ws://[::1]/v2").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 80));
        assert!(
            Endpoint::parse("https://ws.kraken.com/v2")
                .unwrap_err()
                .to_string()
                .contains("ws://")
        );
        assert!(Endpoint::parse("not a url").is_err());
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let e = tls_connector(Some("/nonexistent/ca.pem"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ws_ca_file") && e.contains("/nonexistent/ca.pem"),
            "{e}"
        );
    }
}
