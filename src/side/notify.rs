//! Notices from the feed thread to people: a bounded channel and a side thread that turns them
//! into log lines (and, later, Telegram messages). The feed thread only `try_send`s small `Copy`
//! values; when the channel is full the notice is dropped and counted, never waited for.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::core::event::{Alert, AlertKind, AlertLevel, OrderRequest};
use crate::core::money::{Cash, Qty};

/// Capacity of the notice channel.
pub const CAPACITY: usize = 1024;

/// Longest text a notice carries (exchange error strings).
pub const TEXT_CAP: usize = 200;

/// Free text for a notice.
pub type AlertText = ShortText;

/// Fixed-size text, so notices stay `Copy` and sending one never allocates.
#[derive(Clone, Copy)]
pub struct ShortText {
    len: u8,
    bytes: [u8; TEXT_CAP],
}

impl ShortText {
    /// The first `TEXT_CAP` bytes of `s`.
    #[must_use]
    pub fn new(s: &[u8]) -> ShortText {
        let n = s.len().min(TEXT_CAP);
        let mut bytes = [0u8; TEXT_CAP];
        bytes[..n].copy_from_slice(&s[..n]);
        ShortText {
            len: n as u8,
            bytes,
        }
    }

    /// As text (lossy).
    #[must_use]
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes[..usize::from(self.len)])
    }
}

impl std::fmt::Debug for ShortText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

/// Display precisions of the instrument.
#[derive(Debug, Clone, Copy)]
pub struct Precision {
    /// Price decimals.
    pub price: u8,
    /// Quantity decimals.
    pub qty: u8,
}

/// Something a person may want to know.
#[derive(Debug, Clone, Copy)]
pub enum Notice {
    /// An alert from the core.
    Alert(Alert, Precision),
    /// An order the core placed (paper or live).
    Placed(OrderRequest, Precision),
    /// The feed connected and subscribed.
    Connected {
        /// Connection attempt number.
        attempt: u64,
    },
    /// The feed connection ended.
    ConnectionLost {
        /// Why.
        reason: ShortText,
        /// Next attempt in this many ms.
        retry_in_ms: u64,
    },
    /// Kraken refused a request (subscription error).
    ExchangeError(ShortText),
    /// Free text; `true`: critical.
    Text(ShortText, bool),
    /// The book is being resubscribed.
    Resubscribing {
        /// Consecutive resubscriptions without a good book in between.
        consecutive: u32,
        /// Delay before the request goes out.
        delay_ms: u64,
    },
    /// Periodic account summary.
    Pnl {
        /// Position in lots.
        position: i64,
        /// Realised PnL.
        realised: Cash,
        /// Equity.
        equity: Cash,
        /// Fees paid.
        fees: Cash,
        /// Precisions.
        precision: Precision,
    },
}

/// The feed thread's end.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: Sender<Notice>,
    dropped: Arc<AtomicU64>,
}

impl Notifier {
    /// Sends without waiting; a full channel drops the notice and counts it.
    pub fn send(&self, n: Notice) {
        if self.tx.try_send(n).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Notices dropped because the channel was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Starts the logging side thread. It ends when every [`Notifier`] is dropped.
///
/// # Errors
/// The thread cannot be spawned.
pub fn start() -> Result<(Notifier, JoinHandle<()>), String> {
    let (tx, rx) = bounded(CAPACITY);
    let handle = std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || log_loop(&rx))
        .map_err(|e| format!("notify thread: {e}"))?;
    Ok((
        Notifier {
            tx,
            dropped: Arc::new(AtomicU64::new(0)),
        },
        handle,
    ))
}

/// How often the notify thread looks for notices. It polls instead of blocking in `recv` so
/// that a send from the feed thread never has to wake a sleeping thread (a futex syscall of
/// several microseconds on the hot path).
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(5);

fn log_loop(rx: &Receiver<Notice>) {
    loop {
        match rx.try_recv() {
            Ok(n) => log_notice(n),
            Err(crossbeam_channel::TryRecvError::Empty) => std::thread::sleep(POLL_EVERY),
            Err(crossbeam_channel::TryRecvError::Disconnected) => return,
        }
    }
}

fn log_notice(n: Notice) {
    {
        match n {
            Notice::Alert(a, p) => log_alert(a, p),
            Notice::Placed(o, p) => log::info!(
                "order {} {:?} {:?} {} @ {}{}",
                o.cl_id,
                o.purpose,
                o.side,
                o.qty.show(p.qty),
                o.price.show(p.price),
                if o.ioc { " (IOC)" } else { " (post-only)" }
            ),
            Notice::Connected { attempt } => {
                log::info!("feed connected (attempt {attempt}), subscribing");
            }
            Notice::ConnectionLost {
                reason,
                retry_in_ms,
            } => log::warn!(
                "feed connection lost: {}; reconnecting in {retry_in_ms} ms",
                reason.as_str()
            ),
            Notice::ExchangeError(t) => log::error!("Kraken error: {}", t.as_str()),
            Notice::Text(t, true) => log::warn!("{}", t.as_str()),
            Notice::Text(t, false) => log::info!("{}", t.as_str()),
            Notice::Resubscribing {
                consecutive,
                delay_ms,
            } => {
                if consecutive >= 3 {
                    log::error!(
                        "book resubscription #{consecutive} in a row (backing off {delay_ms} ms)"
                    );
                } else {
                    log::warn!("resubscribing the book in {delay_ms} ms");
                }
            }
            Notice::Pnl {
                position,
                realised,
                equity,
                fees,
                precision,
            } => {
                let cash = precision.price + precision.qty;
                let pos = if position < 0 {
                    format!("-{}", Qty(position.unsigned_abs()).show(precision.qty))
                } else {
                    Qty(position.unsigned_abs()).show(precision.qty).to_string()
                };
                log::info!(
                    "position {pos} | realised {} | fees {} | equity {}",
                    realised.show(cash),
                    fees.show(cash),
                    equity.show(cash)
                );
            }
        }
    }
}

fn log_alert(a: Alert, p: Precision) {
    let cash = p.price + p.qty;
    let text = match a.kind {
        AlertKind::Filled {
            cl_id,
            side,
            qty,
            price,
            fee,
        } => format!(
            "FILL order {cl_id} {side:?} {} @ {} fee {}",
            qty.show(p.qty),
            price.show(p.price),
            fee.show(cash)
        ),
        AlertKind::DrawdownStop { equity, peak } => format!(
            "DRAWDOWN STOP: equity {} from peak {}; everything cancelled, trading stopped",
            equity.show(cash),
            peak.show(cash)
        ),
        other => format!("{other:?}"),
    };
    match a.level {
        AlertLevel::Critical => log::error!("{text}"),
        AlertLevel::Warning => log::warn!("{text}"),
        AlertLevel::Info => log::info!("{text}"),
    }
}
