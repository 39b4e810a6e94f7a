//! Notices from the feed thread to people: a bounded channel and a side thread that turns them
//! into log lines and, when Telegram is configured, hands them to the Telegram thread. The feed
//! thread only `try_send`s small `Copy` values; when the channel is full the notice is dropped
//! and counted, never waited for. This thread never waits on Telegram either: a critical
//! message the Telegram channel cannot take yet is kept here and offered again.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::core::event::{Alert, AlertKind, AlertLevel, Control, OrderRequest};
use crate::core::money::{Cash, Precision, Qty};
use crate::side::telegram::{Figures, Outgoing};

/// Capacity of the notice channel.
pub const CAPACITY: usize = 1024;
/// Capacity of the critical notice channel (critical notices are rare).
pub const CRITICAL_CAPACITY: usize = 256;

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

/// Why the notice thread could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The thread could not be spawned.
    #[error("notify thread: {0}")]
    Thread(std::io::Error),
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
        /// Fills so far.
        fills: u64,
        /// Precisions.
        precision: Precision,
    },
    /// The trading mode in force (after a live start-up succeeded or fell back).
    Mode {
        /// Live trading.
        live: bool,
    },
}

/// The feed thread's end.
#[derive(Debug, Clone)]
pub struct Notifier {
    tx: Sender<Notice>,
    /// Critical notices have their own channel, so a flood of routine ones cannot crowd
    /// them out.
    critical: Sender<Notice>,
    dropped: Arc<AtomicU64>,
}

impl Notice {
    /// Drawdown stop, disconnection, live activation or failure, execution faults.
    #[must_use]
    pub fn is_critical(&self) -> bool {
        match self {
            Notice::Alert(a, _) => a.level == AlertLevel::Critical,
            Notice::Text(_, critical) => *critical,
            Notice::ConnectionLost { .. } => true,
            _ => false,
        }
    }
}

impl Notifier {
    /// Sends without waiting; a full channel drops the notice and counts it.
    pub fn send(&self, n: Notice) {
        // A mode change travels with the critical notices, so the alert that follows it
        // carries the new LIVE/PAPER prefix.
        let tx = if n.is_critical() || matches!(n, Notice::Mode { .. }) {
            &self.critical
        } else {
            &self.tx
        };
        if tx.try_send(n).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Notices dropped because the channel was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// Starts the notify thread: every notice is logged, and passed on to `telegram` when given.
/// It ends when every [`Notifier`] is dropped.
///
/// # Errors
/// The thread cannot be spawned.
pub fn start(
    telegram: Option<Sender<Outgoing>>,
) -> Result<(Notifier, JoinHandle<()>), NotifyError> {
    let (tx, rx) = bounded(CAPACITY);
    let (ctx, crx) = bounded(CRITICAL_CAPACITY);
    let handle = std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || notify_loop(&crx, &rx, telegram.as_ref()))
        .map_err(NotifyError::Thread)?;
    Ok((
        Notifier {
            tx,
            critical: ctx,
            dropped: Arc::new(AtomicU64::new(0)),
        },
        handle,
    ))
}

/// How often the notify thread looks for notices. It polls instead of blocking in `recv` so
/// that a send from the feed thread never has to wake a sleeping thread (a futex syscall of
/// several microseconds on the hot path).
const POLL_EVERY: std::time::Duration = std::time::Duration::from_millis(5);

fn notify_loop(
    critical: &Receiver<Notice>,
    rx: &Receiver<Notice>,
    telegram: Option<&Sender<Outgoing>>,
) {
    // Critical messages the Telegram channel had no room for yet, oldest first.
    let mut held: VecDeque<Outgoing> = VecDeque::new();
    loop {
        if let Some(tg) = telegram {
            while let Some(m) = held.pop_front() {
                if let Err(e) = tg.try_send(m) {
                    held.push_front(e.into_inner());
                    break;
                }
            }
        }
        // Critical first. Both senders live in the same `Notifier`, so the routine channel is
        // closed only when the critical one is too: its `Disconnected` ends the loop.
        let next = critical.try_recv().or_else(|_| rx.try_recv());
        match next {
            Ok(n) => {
                log_notice(n);
                if let Some(tg) = telegram
                    && let Some(m) = for_telegram(n)
                {
                    let critical = matches!(m, Outgoing::Alert { critical: true, .. });
                    if !held.is_empty() && critical {
                        held.push_back(m);
                    } else if let Err(e) = tg.try_send(m)
                        && critical
                    {
                        held.push_back(e.into_inner());
                    }
                }
            }
            Err(crossbeam_channel::TryRecvError::Empty) => std::thread::sleep(POLL_EVERY),
            Err(crossbeam_channel::TryRecvError::Disconnected) => {
                // Hand over what is held (bounded wait: the Telegram thread drains its channel
                // continuously, so this only waits while it is mid-call).
                if let Some(tg) = telegram {
                    for m in held {
                        let _ = tg.send_timeout(m, std::time::Duration::from_secs(2));
                    }
                }
                return;
            }
        }
    }
}

/// What a notice becomes on Telegram (orders placed and routine feed events stay in the log).
fn for_telegram(n: Notice) -> Option<Outgoing> {
    let alert = |text: String, critical: bool| Some(Outgoing::Alert { text, critical });
    match n {
        Notice::Alert(a, p) => alert(alert_text(a, p), a.level == AlertLevel::Critical),
        Notice::ConnectionLost {
            reason,
            retry_in_ms,
        } => alert(
            format!(
                "DISCONNECTED from Kraken: {}; reconnecting in {:.1} s",
                reason.as_str(),
                retry_in_ms as f64 / 1000.0
            ),
            true,
        ),
        Notice::Connected { attempt } if attempt > 1 => {
            alert(format!("Feed reconnected (attempt {attempt})"), false)
        }
        Notice::ExchangeError(t) => alert(format!("Kraken error: {}", t.as_str()), false),
        Notice::Text(t, critical) => alert(t.as_str().into_owned(), critical),
        Notice::Resubscribing { consecutive, .. } if consecutive >= 3 => alert(
            format!("Book resubscription #{consecutive} in a row"),
            false,
        ),
        Notice::Pnl {
            position,
            realised,
            equity,
            fees,
            fills,
            precision,
        } => {
            let cash = precision.cash();
            let pos = Qty(position.unsigned_abs()).to_f64(precision.qty);
            Some(Outgoing::Pnl(Figures {
                position: if position < 0 { -pos } else { pos },
                realised: realised.to_f64(cash),
                fees: fees.to_f64(cash),
                equity: equity.to_f64(cash),
                fills,
            }))
        }
        Notice::Mode { live } => Some(Outgoing::Mode { live }),
        Notice::Placed(..) | Notice::Connected { .. } | Notice::Resubscribing { .. } => None,
    }
}

fn log_notice(n: Notice) {
    {
        match n {
            Notice::Alert(a, p) => log_alert(a, p),
            Notice::Placed(o, p) => log::info!(
                "order {} {} {} {} @ {}{}",
                o.cl_id,
                o.purpose.name(),
                o.side.as_str(),
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
            Notice::Mode { live } => {
                log::info!("trading mode: {}", if live { "LIVE" } else { "PAPER" });
            }
            Notice::Pnl {
                position,
                realised,
                equity,
                fees,
                precision,
                ..
            } => {
                let cash = precision.cash();
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

fn alert_text(a: Alert, p: Precision) -> String {
    let cash = p.cash();
    match a.kind {
        AlertKind::Filled {
            cl_id,
            side,
            qty,
            price,
            fee,
        } => format!(
            "FILL order {cl_id} {} {} @ {} fee {}",
            side.as_str(),
            qty.show(p.qty),
            price.show(p.price),
            fee.show(cash)
        ),
        AlertKind::DrawdownStop { equity, peak } => format!(
            "DRAWDOWN STOP: equity {} from peak {}; everything cancelled, trading stopped",
            equity.show(cash),
            peak.show(cash)
        ),
        AlertKind::PositionDrift { reported, expected } => format!(
            "POSITION DRIFT: the exchange holds {} base but baseline + own position is {} after \
             a fill poll; no new entries until they agree",
            reported.show(p.qty),
            crate::core::money::Fixed::new(i128::from(expected), p.qty)
        ),
        AlertKind::Operator { control, position } => match control {
            Control::Pause => {
                "PAUSED by the operator: no new entries; exits and stops still run (/resume)".into()
            }
            Control::Resume => "RESUMED by the operator: quoting again".into(),
            Control::Flatten => format!(
                "FLATTEN by the operator: exiting the own position of {} at market, then paused \
                 (/resume)",
                crate::core::money::Fixed::new(i128::from(position), p.qty)
            ),
        },
        AlertKind::DriftResolved => {
            "position drift resolved: the exchange's balance agrees again; quoting resumes".into()
        }
        AlertKind::DustPosition { position } => format!(
            "DUST: position {} is below the minimum order size; it cannot be exited and counts \
             as flat",
            crate::core::money::Fixed::new(i128::from(position), p.qty)
        ),
        AlertKind::ForceExit { rule } => format!("FORCE EXIT ({})", rule.name()),
        AlertKind::ChecksumMismatch { expected, computed } => {
            format!("book checksum mismatch (Kraken {expected}, ours {computed}): resubscribing")
        }
        AlertKind::BookCrossed => "the book crossed: resubscribing".into(),
        AlertKind::OrderRejected { cl_id, reason } => {
            format!("order {cl_id} rejected: {}", reason.describe())
        }
        AlertKind::Disconnected => "feed lost: quoting stopped until it is back".into(),
        AlertKind::InstrumentChanged => {
            "the instrument's precision changed: the book was rebuilt".into()
        }
        AlertKind::OrderSlotsFull => {
            "too many orders in flight: an execution fault, no new orders until some finish".into()
        }
        AlertKind::ExchangeStatus => "the exchange is not online: no new orders until it is".into(),
    }
}

fn log_alert(a: Alert, p: Precision) {
    let text = alert_text(a, p);
    match a.level {
        AlertLevel::Critical => log::error!("{text}"),
        AlertLevel::Warning => log::warn!("{text}"),
        AlertLevel::Info => log::info!("{text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::event::{RejectReason, Rule, Side};
    use crate::core::money::Price;

    #[test]
    fn every_alert_reads_as_words_not_rust_debug_text() {
        let p = Precision { price: 1, qty: 8 };
        let kinds = [
            AlertKind::DrawdownStop {
                equity: Cash(9_000),
                peak: Cash(10_000),
            },
            AlertKind::ChecksumMismatch {
                expected: 1,
                computed: 2,
            },
            AlertKind::BookCrossed,
            AlertKind::OrderRejected {
                cl_id: 7,
                reason: RejectReason::PostOnly,
            },
            AlertKind::Filled {
                cl_id: 7,
                side: Side::Buy,
                qty: Qty(100_000),
                price: Price(1_000_000),
                fee: Cash(16),
            },
            AlertKind::ForceExit {
                rule: Rule::StopLoss,
            },
            AlertKind::Disconnected,
            AlertKind::DustPosition { position: 3 },
            AlertKind::PositionDrift {
                reported: Qty(1),
                expected: 2,
            },
            AlertKind::DriftResolved,
            AlertKind::Operator {
                control: Control::Flatten,
                position: 100_000,
            },
            AlertKind::InstrumentChanged,
            AlertKind::OrderSlotsFull,
            AlertKind::ExchangeStatus,
        ];
        for kind in kinds {
            let text = alert_text(
                Alert {
                    level: AlertLevel::Warning,
                    kind,
                },
                p,
            );
            assert!(!text.is_empty());
            for debug in ["{", "::", "Some(", "StopLoss", "PostOnly", "Buy"] {
                assert!(!text.contains(debug), "{kind:?} -> {text}");
            }
        }
    }
}
