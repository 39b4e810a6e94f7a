//! The fill journal: every order placed, every venue event (acks, fills, cancels, rejects,
//! balances), equity records and the exchange's order ids, one JSON object per line, appended
//! and flushed by its own thread so the feed thread never touches the disk.
//!
//! On start [`load`] reads the file back; [`crate::core::Core::restore`] replays the core's
//! records, so position, average cost, cash, fees, round trips, win/loss counts and trade
//! history are those the last run ended with. A torn last line (a crash mid-write) is skipped
//! with a warning and cut off before new lines are appended; an unreadable line elsewhere is
//! skipped and named. Amounts are exact decimal text at the instrument's precisions.
//!
//! A line looks like
//! `{"t":1767225600000000000,"event":"fill","cl_id":7,"cum_qty":"0.00010000","cum_cost":"6.000010000","cum_fee":"0.009600016"}`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};
use serde::{Deserialize, Serialize};

use crate::core::engine::{Core, CoreSnapshot};
use crate::core::event::{
    CancelReason, ClientId, Intent, JournalEntry, JournalKind, OrderEvent, OrderRequest, Purpose,
    RejectReason, Side,
};
use crate::core::money::{Cash, Decimal, NumError, Precision, Price, Qty};
use crate::core::time::Nanos;

/// Records in flight to the journal thread. Orders are bounded by rate limits (a few per
/// second), so this never fills in practice; if it does, records are counted as dropped and
/// the operator is told.
pub const CAPACITY: usize = 65_536;

/// What is appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A run started (written first by every run).
    Session {
        /// Time.
        t: Nanos,
        /// Live or paper: one journal holds one mode's account.
        live: bool,
    },
    /// From the core.
    Core(JournalEntry),
    /// Compaction: the core's restorable state; every record before it is covered by it.
    Snapshot {
        /// Time.
        t: Nanos,
        /// The state, as [`crate::side::snapshot::to_json`] writes it.
        state: serde_json::Value,
    },
    /// From the order worker: the exchange's id for one of our orders.
    Txid {
        /// Time.
        t: Nanos,
        /// Our id.
        cl_id: ClientId,
        /// Kraken's order id.
        txid: String,
        /// The `cl_ord_id` Kraken knows the order by (an amended order keeps its first one).
        kraken_cl: String,
    },
}

/// One line as written.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    t: Nanos,
    event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cl_id: Option<ClientId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    side: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    price: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    qty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    purpose: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    post_only: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ioc: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cum_qty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cum_cost: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cum_fee: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    quote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    base: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    start: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    peak: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_drawdown_ppm: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    txid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kraken_cl: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<serde_json::Value>,
}

const REJECT_REASONS: [(RejectReason, &str); 6] = [
    (RejectReason::PostOnly, "post_only"),
    (RejectReason::InsufficientFunds, "insufficient_funds"),
    (RejectReason::RateLimit, "rate_limit"),
    (RejectReason::Invalid, "invalid"),
    (RejectReason::Unavailable, "unavailable"),
    (RejectReason::Other, "other"),
];
const CANCEL_REASONS: [(CancelReason, &str); 3] = [
    (CancelReason::Requested, "requested"),
    (CancelReason::Expired, "expired"),
    (CancelReason::Exchange, "exchange"),
];
const PURPOSES: [(Purpose, &str); 3] = [
    (Purpose::Entry, "entry"),
    (Purpose::Exit, "exit"),
    (Purpose::ForceExit, "force_exit"),
];

fn name_of<T: PartialEq + Copy>(table: &[(T, &'static str)], v: T) -> &'static str {
    table.iter().find(|(k, _)| *k == v).map_or("?", |(_, n)| n)
}

fn value_of<T: Copy>(
    table: &[(T, &'static str)],
    field: &'static str,
    s: Option<&str>,
) -> Result<T, LineError> {
    let s = s.ok_or(LineError::Missing(field))?;
    table
        .iter()
        .find(|(_, n)| *n == s)
        .map(|(k, _)| *k)
        .ok_or_else(|| LineError::Unknown {
            field,
            value: s.to_string(),
        })
}

/// Why the journal cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file cannot be opened, read, cut or written.
    #[error("journal {path}: {source}")]
    Io {
        /// The journal file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The writer thread could not be spawned.
    #[error("journal thread: {0}")]
    Thread(std::io::Error),
}

/// Why one journal line was skipped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// Not a JSON object of the journal's shape.
    #[error("{0}")]
    Json(String),
    /// A field the event needs is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field holds a value the journal never writes.
    #[error("unknown {field} {value:?}")]
    Unknown {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
    /// An amount that is not an exact decimal at the instrument's precision.
    #[error("{field}: {error}")]
    Number {
        /// The field.
        field: &'static str,
        /// Why.
        error: NumError,
    },
    /// A cash amount with more decimals than cash has.
    #[error("{field}: more than {max} decimals")]
    Decimals {
        /// The field.
        field: &'static str,
        /// Cash decimals.
        max: u8,
    },
    /// The last line was never finished (the process died mid-write).
    #[error("torn last line ({0})")]
    Torn(Box<LineError>),
}

/// The JSON line for `r` (no newline).
#[must_use]
pub fn encode(r: &Record, p: Precision) -> String {
    let cash = |c: Cash| Some(c.show(p.cash()).to_string());
    let qty = |q: Qty| Some(q.show(p.qty).to_string());
    let mut l = Line::default();
    match r {
        Record::Session { t, live } => {
            l.t = *t;
            l.event = "session".into();
            l.mode = Some(if *live { "live" } else { "paper" }.into());
        }
        Record::Snapshot { t, state } => {
            l.t = *t;
            l.event = "snapshot".into();
            l.state = Some(state.clone());
        }
        Record::Txid {
            t,
            cl_id,
            txid,
            kraken_cl,
        } => {
            l.t = *t;
            l.event = "txid".into();
            l.cl_id = Some(*cl_id);
            l.txid = Some(txid.clone());
            l.kraken_cl = Some(kraken_cl.clone());
        }
        Record::Core(JournalEntry { t, kind }) => {
            l.t = *t;
            match *kind {
                JournalKind::Placed(req) => {
                    l.event = "placed".into();
                    l.cl_id = Some(req.cl_id);
                    l.side = Some(side_name(req.side).into());
                    l.price = Some(req.price.show(p.price).to_string());
                    l.qty = qty(req.qty);
                    l.purpose = Some(name_of(&PURPOSES, req.purpose).into());
                    l.post_only = Some(req.post_only);
                    l.ioc = Some(req.ioc);
                }
                JournalKind::Order(ev) => match ev {
                    OrderEvent::Accepted { cl_id } => {
                        l.event = "accepted".into();
                        l.cl_id = Some(cl_id);
                    }
                    OrderEvent::Rejected { cl_id, reason } => {
                        l.event = "rejected".into();
                        l.cl_id = Some(cl_id);
                        l.reason = Some(name_of(&REJECT_REASONS, reason).into());
                    }
                    OrderEvent::Fill {
                        cl_id,
                        cum_qty,
                        cum_cost,
                        cum_fee,
                    } => {
                        l.event = "fill".into();
                        l.cl_id = Some(cl_id);
                        l.cum_qty = qty(cum_qty);
                        l.cum_cost = cash(cum_cost);
                        l.cum_fee = cash(cum_fee);
                    }
                    OrderEvent::Cancelled { cl_id, reason } => {
                        l.event = "cancelled".into();
                        l.cl_id = Some(cl_id);
                        l.reason = Some(name_of(&CANCEL_REASONS, reason).into());
                    }
                    OrderEvent::Balances { quote, base } => {
                        l.event = "balances".into();
                        l.quote = cash(quote);
                        l.base = qty(base);
                    }
                    // Never journaled (the core keeps polls out); written as a marker if asked.
                    OrderEvent::Polled => l.event = "polled".into(),
                    // Link news, never journaled either.
                    OrderEvent::Reconciling
                    | OrderEvent::Reconciled
                    | OrderEvent::RateLimit { .. }
                    | OrderEvent::RateCount { .. } => l.event = "polled".into(),
                },
                JournalKind::Funded { baseline, cash: c } => {
                    l.event = "funded".into();
                    l.base = qty(baseline);
                    l.quote = cash(c);
                }
                JournalKind::Equity {
                    start,
                    peak,
                    max_drawdown_ppm,
                } => {
                    l.event = "equity".into();
                    l.start = cash(start);
                    l.peak = cash(peak);
                    l.max_drawdown_ppm = Some(max_drawdown_ppm);
                }
            }
        }
    }
    serde_json::to_string(&l).unwrap_or_default()
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

/// Reads one line back.
///
/// # Errors
/// What is wrong with it.
pub fn decode(text: &str, p: Precision) -> Result<Record, LineError> {
    let l: Line = serde_json::from_str(text).map_err(|e| LineError::Json(e.to_string()))?;
    let need = |v: &Option<String>, f: &'static str| v.clone().ok_or(LineError::Missing(f));
    let number = |field: &'static str| move |error| LineError::Number { field, error };
    let qty = |v: &Option<String>, f: &'static str| -> Result<Qty, LineError> {
        Qty::parse_checked(need(v, f)?.as_bytes(), p.qty).map_err(number(f))
    };
    let cash = |v: &Option<String>, f: &'static str| -> Result<Cash, LineError> {
        let d = Decimal::parse(need(v, f)?.as_bytes()).map_err(number(f))?;
        if d.scale > p.cash() {
            return Err(LineError::Decimals {
                field: f,
                max: p.cash(),
            });
        }
        Ok(Cash::from_decimal_round_down(d, p.cash()))
    };
    let unknown = |field: &'static str, v: Option<&str>| LineError::Unknown {
        field,
        value: v.unwrap_or_default().to_string(),
    };
    let cl_id = || l.cl_id.ok_or(LineError::Missing("cl_id"));
    let kind = match l.event.as_str() {
        "session" => {
            return Ok(Record::Session {
                t: l.t,
                live: match l.mode.as_deref() {
                    Some("live") => true,
                    Some("paper") => false,
                    other => return Err(unknown("mode", other)),
                },
            });
        }
        "snapshot" => {
            let state = l.state.ok_or(LineError::Missing("state"))?;
            crate::side::snapshot::from_json(&state, p)
                .map_err(|e| LineError::Json(e.to_string()))?;
            return Ok(Record::Snapshot { t: l.t, state });
        }
        "txid" => {
            return Ok(Record::Txid {
                t: l.t,
                cl_id: cl_id()?,
                txid: need(&l.txid, "txid")?,
                kraken_cl: need(&l.kraken_cl, "kraken_cl")?,
            });
        }
        "placed" => JournalKind::Placed(OrderRequest {
            cl_id: cl_id()?,
            side: match l.side.as_deref() {
                Some("buy") => Side::Buy,
                Some("sell") => Side::Sell,
                other => return Err(unknown("side", other)),
            },
            price: Price::parse_checked(need(&l.price, "price")?.as_bytes(), p.price)
                .map_err(number("price"))?,
            qty: qty(&l.qty, "qty")?,
            post_only: l.post_only.unwrap_or(false),
            ioc: l.ioc.unwrap_or(false),
            purpose: value_of(&PURPOSES, "purpose", l.purpose.as_deref())?,
        }),
        "accepted" => JournalKind::Order(OrderEvent::Accepted { cl_id: cl_id()? }),
        "rejected" => JournalKind::Order(OrderEvent::Rejected {
            cl_id: cl_id()?,
            reason: value_of(&REJECT_REASONS, "reason", l.reason.as_deref())?,
        }),
        "cancelled" => JournalKind::Order(OrderEvent::Cancelled {
            cl_id: cl_id()?,
            reason: value_of(&CANCEL_REASONS, "reason", l.reason.as_deref())?,
        }),
        "fill" => JournalKind::Order(OrderEvent::Fill {
            cl_id: cl_id()?,
            cum_qty: qty(&l.cum_qty, "cum_qty")?,
            cum_cost: cash(&l.cum_cost, "cum_cost")?,
            cum_fee: cash(&l.cum_fee, "cum_fee")?,
        }),
        "balances" => JournalKind::Order(OrderEvent::Balances {
            quote: cash(&l.quote, "quote")?,
            base: qty(&l.base, "base")?,
        }),
        "polled" => JournalKind::Order(OrderEvent::Polled),
        "funded" => JournalKind::Funded {
            baseline: qty(&l.base, "base")?,
            cash: cash(&l.quote, "quote")?,
        },
        "equity" => JournalKind::Equity {
            start: cash(&l.start, "start")?,
            peak: cash(&l.peak, "peak")?,
            max_drawdown_ppm: l
                .max_drawdown_ppm
                .ok_or(LineError::Missing("max_drawdown_ppm"))?,
        },
        other => return Err(unknown("event", Some(other))),
    };
    Ok(Record::Core(JournalEntry { t: l.t, kind }))
}

/// A journal read back.
#[derive(Debug, Default)]
pub struct Loaded {
    /// The last snapshot (compaction): the state every earlier record led to.
    pub snapshot: Option<CoreSnapshot>,
    /// The core's records after it, in order.
    pub entries: Vec<JournalEntry>,
    /// The mode of the first run that wrote it.
    pub live: Option<bool>,
    /// Runs that wrote it.
    pub sessions: u64,
    /// Exchange ids by our id: (txid, Kraken's cl_ord_id).
    pub txids: BTreeMap<ClientId, (String, String)>,
    /// Lines read, torn or not.
    pub lines: u64,
    /// Lines skipped: (line number, why).
    pub skipped: Vec<(u64, LineError)>,
    /// Whether the last line was torn (no newline, unreadable) and will be cut off.
    pub torn: bool,
    /// Byte length of the whole lines (where appending resumes).
    pub good_len: u64,
}

/// Reads the journal at `path`; a missing file is an empty journal.
///
/// # Errors
/// The file exists and cannot be read.
pub fn load(path: &Path, p: Precision) -> Result<Loaded, JournalError> {
    let err = |source| JournalError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Loaded::default()),
        Err(e) => return Err(err(e)),
    };
    let mut out = Loaded::default();
    let mut reader = BufReader::new(file);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf).map_err(err)?;
        if n == 0 {
            break;
        }
        out.lines += 1;
        let complete = buf.last() == Some(&b'\n');
        let text = String::from_utf8_lossy(&buf);
        let parsed = decode(text.trim_end(), p);
        if !complete && let Err(e) = parsed {
            // The process died mid-write: this line was never finished. (A complete record
            // that only lacks its newline is kept; the writer adds the newline.)
            out.torn = true;
            out.skipped.push((out.lines, LineError::Torn(Box::new(e))));
            break;
        }
        match parsed {
            Ok(Record::Core(e)) => out.entries.push(e),
            Ok(Record::Snapshot { state, .. }) => {
                // It covers everything before it (a compacted journal starts with it).
                out.snapshot = crate::side::snapshot::from_json(&state, p).ok();
                out.entries.clear();
                out.txids.clear();
            }
            Ok(Record::Session { live, .. }) => {
                out.live.get_or_insert(live);
                out.sessions += 1;
            }
            Ok(Record::Txid {
                cl_id,
                txid,
                kraken_cl,
                ..
            }) => {
                out.txids.insert(cl_id, (txid, kraken_cl));
            }
            Err(_) if text.trim().is_empty() => {}
            Err(e) => out.skipped.push((out.lines, e)),
        }
        out.good_len += n as u64;
    }
    Ok(out)
}

/// Counters of the journal thread.
#[derive(Debug, Default)]
pub struct JournalStats {
    /// Lines written.
    pub written: AtomicU64,
    /// Records dropped because the channel was full.
    pub dropped: AtomicU64,
    /// Write or flush failures.
    pub errors: AtomicU64,
    /// Times the journal was rewritten as a snapshot.
    pub compactions: AtomicU64,
}

/// The feed thread's (and worker's) end of the journal.
#[derive(Debug, Clone)]
pub struct JournalSender {
    tx: Sender<Record>,
    stats: Arc<JournalStats>,
}

impl JournalSender {
    /// Hands a record over without waiting; counts it as dropped when the channel is full.
    pub fn send(&self, r: Record) {
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = self.tx.try_send(r) {
            if self.stats.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
                log::error!("journal: a record was dropped (channel full or writer gone)");
            }
        }
    }

    /// Sends the journal records among `intents` (at start-up and shutdown, when the other
    /// intents have nowhere to go).
    pub fn send_records(&self, intents: &[Intent]) {
        for i in intents {
            if let Intent::Journal(e) = i {
                self.send(Record::Core(*e));
            }
        }
    }

    /// Records waiting for the journal thread.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.tx.len()
    }

    /// The counters.
    #[must_use]
    pub fn stats(&self) -> &JournalStats {
        &self.stats
    }
}

/// A running journal writer.
#[derive(Debug)]
pub struct Journal {
    sender: JournalSender,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
}

impl Journal {
    /// Opens `path` for appending (creating it and its folder), first cutting off a torn last
    /// line at `resume_at` bytes (from [`Loaded::good_len`]; `None` keeps the file whole).
    ///
    /// # Errors
    /// The file cannot be opened or cut.
    pub fn start(
        path: &Path,
        p: Precision,
        resume_at: Option<u64>,
        compaction: Option<Compaction>,
    ) -> Result<Journal, JournalError> {
        let err = |source| JournalError::Io {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        if let Some(len) = resume_at {
            let now = file.metadata().map_err(err)?.len();
            if now > len {
                file.set_len(len).map_err(err)?;
            }
        }
        // A last record without its newline (cut off right after the closing brace).
        let len = file.metadata().map_err(err)?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1)).map_err(err)?;
            std::io::Read::read_exact(&mut file, &mut last).map_err(err)?;
            if last[0] != b'\n' {
                file.write_all(b"\n").map_err(err)?;
            }
        }
        let (tx, rx) = bounded(CAPACITY);
        let stats = Arc::new(JournalStats::default());
        let s = stats.clone();
        let at = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || write_loop(&rx, file, &at, p, &s, compaction))
            .map_err(JournalError::Thread)?;
        Ok(Journal {
            sender: JournalSender { tx, stats },
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }

    /// A sender for another thread.
    #[must_use]
    pub fn sender(&self) -> JournalSender {
        self.sender.clone()
    }

    /// Where it writes.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes what is queued and stops the thread. Other senders must be gone first (the
    /// thread ends when the last one is dropped).
    pub fn finish(mut self) -> Arc<JournalStats> {
        let stats = self.sender.stats.clone();
        drop(self.sender);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        stats
    }
}

/// Keeps the journal small: a mirror of the core's account, fed every record written, and
/// every `every` records the file is rewritten as one snapshot of it (plus the exchange ids of
/// the orders still open), crash-safe: written beside it, synced, renamed over it.
pub struct Compaction {
    /// A core restored from the journal as loaded (its market state is never used).
    pub core: Core,
    /// Exchange ids by our id, as loaded.
    pub txids: BTreeMap<ClientId, (String, String)>,
    /// The journal's mode.
    pub live: bool,
    /// Records between snapshots.
    pub every: u64,
    written: u64,
}

impl std::fmt::Debug for Compaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compaction")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Compaction {
    /// A mirror of the journal as loaded (`core` restored from it), compacting every `every`
    /// records.
    #[must_use]
    pub fn new(core: Core, loaded: &Loaded, live: bool, every: u64) -> Compaction {
        Compaction {
            core,
            txids: loaded.txids.clone(),
            live,
            every: every.max(1),
            written: 0,
        }
    }

    fn apply(&mut self, r: &Record) {
        match r {
            Record::Core(e) => self.core.replay(e),
            Record::Txid {
                cl_id,
                txid,
                kraken_cl,
                ..
            } => {
                self.txids.insert(*cl_id, (txid.clone(), kraken_cl.clone()));
            }
            Record::Session { .. } | Record::Snapshot { .. } => {}
        }
        self.written += 1;
    }

    /// The compacted journal's lines: the mode, the snapshot, the open orders' exchange ids.
    fn lines(&mut self, p: Precision) -> String {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as Nanos);
        let snap = self.core.snapshot();
        let open: Vec<ClientId> = snap.open.iter().flatten().map(|o| o.req.cl_id).collect();
        self.txids.retain(|id, _| open.contains(id));
        let mut out = encode(&Record::Session { t, live: self.live }, p);
        out.push('\n');
        let state = crate::side::snapshot::to_json(&snap, p);
        out.push_str(&encode(&Record::Snapshot { t, state }, p));
        out.push('\n');
        for (cl_id, (txid, kraken_cl)) in &self.txids {
            let r = Record::Txid {
                t,
                cl_id: *cl_id,
                txid: txid.clone(),
                kraken_cl: kraken_cl.clone(),
            };
            out.push_str(&encode(&r, p));
            out.push('\n');
        }
        out
    }
}

/// Rewrites `path` as `text`: a new file beside it, synced, renamed over it, the folder synced;
/// returns the new file opened for appending. A crash at any point leaves the old journal or
/// the new one, whole.
fn replace_file(path: &Path, text: &str) -> std::io::Result<File> {
    let tmp = path.with_extension("compacting");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    OpenOptions::new().append(true).open(path)
}

fn write_loop(
    rx: &Receiver<Record>,
    file: File,
    path: &Path,
    p: Precision,
    stats: &JournalStats,
    mut compaction: Option<Compaction>,
) {
    let mut out = std::io::BufWriter::new(file);
    // One flush per batch: whatever arrived together reaches the file together.
    while let Ok(first) = rx.recv() {
        for r in std::iter::once(first).chain(rx.try_iter()) {
            let mut line = encode(&r, p);
            line.push('\n');
            if out.write_all(line.as_bytes()).is_err() {
                stats.errors.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.written.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(c) = &mut compaction {
                c.apply(&r);
                if c.written >= c.every && out.flush().is_ok() {
                    compact(c, path, p, stats, &mut out);
                }
            }
        }
        if out.flush().is_err() && stats.errors.fetch_add(1, Ordering::Relaxed) == 0 {
            log::error!("journal: write failed; fills are no longer being journaled");
        }
    }
}

/// Rewrites the journal as the mirror's snapshot; on failure the journal keeps growing.
fn compact(
    c: &mut Compaction,
    path: &Path,
    p: Precision,
    stats: &JournalStats,
    out: &mut std::io::BufWriter<File>,
) {
    c.written = 0;
    match replace_file(path, &c.lines(p)) {
        Ok(f) => {
            *out = std::io::BufWriter::new(f);
            stats.compactions.fetch_add(1, Ordering::Relaxed);
        }
        Err(e) => {
            stats.errors.fetch_add(1, Ordering::Relaxed);
            log::error!("journal: compaction failed ({e}); the journal keeps growing");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Precision = Precision { price: 1, qty: 8 };

    fn all_kinds() -> Vec<Record> {
        let req = OrderRequest {
            cl_id: 42,
            side: Side::Sell,
            price: Price(600_001),
            qty: Qty(100_000),
            post_only: true,
            ioc: false,
            purpose: Purpose::Exit,
        };
        let core = |kind| Record::Core(JournalEntry { t: 7, kind });
        vec![
            Record::Session { t: 1, live: true },
            core(JournalKind::Placed(req)),
            core(JournalKind::Order(OrderEvent::Accepted { cl_id: 42 })),
            core(JournalKind::Order(OrderEvent::Fill {
                cl_id: 42,
                cum_qty: Qty(50_000),
                cum_cost: Cash(30_000_050_000),
                cum_fee: Cash(48_000_081),
            })),
            core(JournalKind::Order(OrderEvent::Rejected {
                cl_id: 43,
                reason: RejectReason::InsufficientFunds,
            })),
            core(JournalKind::Order(OrderEvent::Cancelled {
                cl_id: 42,
                reason: CancelReason::Exchange,
            })),
            core(JournalKind::Order(OrderEvent::Balances {
                quote: Cash(10_000_000_000_000),
                base: Qty(3),
            })),
            core(JournalKind::Equity {
                start: Cash(10_000_000_000_000),
                peak: Cash(10_000_500_000_001),
                max_drawdown_ppm: 1234,
            }),
            Record::Txid {
                t: 9,
                cl_id: 42,
                txid: "OABCDE-FGHIJ-KLMNOP".into(),
                kraken_cl: "wb2a".into(),
            },
        ]
    }

    #[test]
    fn every_record_reads_back_exactly() {
        for r in all_kinds() {
            let line = encode(&r, P);
            assert_eq!(decode(&line, P), Ok(r), "{line}");
        }
        let fill = encode(&all_kinds()[3], P);
        assert!(
            fill.contains(r#""cum_cost":"30.000050000""#)
                && fill.contains(r#""cum_qty":"0.00050000""#),
            "amounts are exact decimal text: {fill}"
        );
    }

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!(
            "wildbot-journal-{name}-{}.jsonl",
            std::process::id()
        ))
    }

    fn write_all(path: &Path, records: &[Record]) {
        let j = Journal::start(path, P, None, None).unwrap();
        let s = j.sender();
        for r in records {
            s.send(r.clone());
        }
        drop(s);
        let stats = j.finish();
        assert_eq!(stats.written.load(Ordering::Relaxed), records.len() as u64);
    }

    #[test]
    fn a_torn_last_line_is_skipped_then_cut_before_appending() {
        let path = temp("torn");
        let _ = std::fs::remove_file(&path);
        let records = all_kinds();
        write_all(&path, &records);
        // A crash in the middle of the next line.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"t":10,"event":"fill","cl_id":42,"cum_q"#)
            .unwrap();
        drop(f);
        let loaded = load(&path, P).unwrap();
        assert!(loaded.torn);
        assert_eq!(loaded.skipped.len(), 1, "{:?}", loaded.skipped);
        assert!(
            loaded.skipped[0].1.to_string().contains("torn"),
            "{:?}",
            loaded.skipped
        );
        assert_eq!(loaded.entries.len(), 7, "every whole record is kept");
        assert_eq!(loaded.txids.get(&42).map(|t| t.1.as_str()), Some("wb2a"));
        assert_eq!(loaded.live, Some(true));
        // Appending resumes after the last whole line: the next load is clean.
        let j = Journal::start(&path, P, Some(loaded.good_len), None).unwrap();
        j.sender().send(Record::Session { t: 11, live: true });
        j.finish();
        let again = load(&path, P).unwrap();
        assert!(
            !again.torn && again.skipped.is_empty(),
            "{:?}",
            again.skipped
        );
        assert_eq!((again.entries.len(), again.sessions), (7, 2));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_whole_last_record_without_its_newline_is_kept() {
        let path = temp("nonewline");
        let line = encode(&all_kinds()[2], P);
        std::fs::write(&path, &line).unwrap();
        let loaded = load(&path, P).unwrap();
        assert!(!loaded.torn);
        assert_eq!(loaded.entries.len(), 1);
        let j = Journal::start(&path, P, Some(loaded.good_len), None).unwrap();
        j.sender().send(all_kinds()[5].clone());
        j.finish();
        let again = load(&path, P).unwrap();
        assert_eq!(again.entries.len(), 2, "{:?}", again.skipped);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_bad_line_in_the_middle_is_named_and_skipped() {
        let path = temp("bad");
        let ok = encode(&all_kinds()[2], P);
        std::fs::write(&path, format!("{ok}\nnot json\n{{\"t\":1,\"event\":\"fill\",\"cl_id\":1,\"cum_qty\":\"x\",\"cum_cost\":\"1\",\"cum_fee\":\"0\"}}\n\n{ok}\n")).unwrap();
        let loaded = load(&path, P).unwrap();
        assert_eq!(loaded.entries.len(), 2);
        let lines: Vec<u64> = loaded.skipped.iter().map(|s| s.0).collect();
        assert_eq!(lines, [2, 3], "{:?}", loaded.skipped);
        assert!(!loaded.torn);
        assert!(
            load(&temp("missing"), P).unwrap().entries.is_empty(),
            "no file: empty"
        );
        std::fs::remove_file(&path).unwrap();
    }

    /// `trips` paper round trips of 0.001 BTC (buy 60000.0, sell 60010.0), then one buy left
    /// open with half of it filled: every kind of record compaction must carry over.
    pub(crate) fn trading_records(trips: u64) -> Vec<Record> {
        let mut out = Vec::new();
        let core = |t: Nanos, kind| Record::Core(JournalEntry { t, kind });
        let mut id = 1;
        let mut order = |out: &mut Vec<Record>, t: Nanos, side, price, fill: u64| {
            let req = OrderRequest {
                cl_id: id,
                side,
                price: Price(price),
                qty: Qty(100_000),
                post_only: true,
                ioc: false,
                purpose: if side == Side::Buy {
                    Purpose::Entry
                } else {
                    Purpose::Exit
                },
            };
            out.push(core(t, JournalKind::Placed(req)));
            out.push(core(
                t,
                JournalKind::Order(OrderEvent::Accepted { cl_id: id }),
            ));
            let cost = Cash::notional(Price(price), Qty(fill));
            out.push(core(
                t + 1,
                JournalKind::Order(OrderEvent::Fill {
                    cl_id: id,
                    cum_qty: Qty(fill),
                    cum_cost: cost,
                    cum_fee: Cash(cost.0 * 16 / 10_000),
                }),
            ));
            out.push(Record::Txid {
                t: t + 1,
                cl_id: id,
                txid: format!("O{id:05}-AAAAA-BBBBBB"),
                kraken_cl: format!("wb{id:x}"),
            });
            id += 1;
        };
        for k in 0..trips {
            let t = k as Nanos * 1_000_000_000;
            order(&mut out, t, Side::Buy, 600_000, 100_000);
            order(&mut out, t + 10, Side::Sell, 600_100, 100_000);
            out.push(core(
                t + 20,
                JournalKind::Equity {
                    start: Cash(10_000_000_000_000),
                    peak: Cash(10_000_000_000_000 + k as i128),
                    max_drawdown_ppm: 0,
                },
            ));
        }
        order(
            &mut out,
            trips as Nanos * 1_000_000_000,
            Side::Buy,
            599_000,
            50_000,
        );
        out
    }

    fn restored(path: &Path) -> (Core, Loaded) {
        let loaded = load(path, P).unwrap();
        let mut core = Core::new(&crate::core::Settings::default(), 1).unwrap();
        core.restore(loaded.snapshot.as_ref(), &loaded.entries);
        (core, loaded)
    }

    #[test]
    fn compaction_keeps_the_journal_small_and_restores_the_same_account() {
        let records = trading_records(400); // 3 601 records
        let full = temp("uncompacted");
        let small = temp("compacted");
        let _ = std::fs::remove_file(&full);
        let _ = std::fs::remove_file(&small);
        write_all(&full, &records);
        let mirror = Core::new(&crate::core::Settings::default(), 1).unwrap();
        let c = Compaction::new(mirror, &Loaded::default(), false, 500);
        let j = Journal::start(&small, P, None, Some(c)).unwrap();
        let s = j.sender();
        for r in &records {
            s.send(r.clone());
        }
        drop(s);
        let stats = j.finish();
        assert!(stats.compactions.load(Ordering::Relaxed) >= 7);
        let lines = std::fs::read_to_string(&small).unwrap().lines().count();
        assert!(lines < 510, "{lines} lines: the journal stays small");
        let (a, la) = restored(&full);
        let (b, lb) = restored(&small);
        assert!(la.snapshot.is_none() && lb.snapshot.is_some());
        // The same account, trade history, open order (with its half fill) and next id.
        let (sa, sb) = (a.snapshot(), b.snapshot());
        assert_eq!(
            crate::side::snapshot::to_json(&sa, P),
            crate::side::snapshot::to_json(&sb, P)
        );
        assert_eq!(sb.acct.round_trips, 400);
        assert_eq!(sb.acct.position, 50_000);
        assert_eq!(sb.open.iter().flatten().count(), 1);
        // The open order's exchange id survives; those of orders that ended before the last
        // snapshot are cut (the file holds only the ids written since).
        let open = sb.open.iter().flatten().next().unwrap();
        assert!(lb.txids.contains_key(&open.req.cl_id));
        assert!(lb.txids.len() < la.txids.len() / 10, "{}", lb.txids.len());
        assert_eq!(lb.live, Some(false));
        // A fill reported again after the restart books nothing twice.
        let mut again = b;
        let mut sink = Vec::new();
        again.handle(
            1,
            crate::core::Event::Order(OrderEvent::Fill {
                cl_id: open.req.cl_id,
                cum_qty: open.filled,
                cum_cost: open.cum_cost,
                cum_fee: open.cum_fee,
            }),
            &mut sink,
        );
        assert_eq!(again.account().position, 50_000);
        std::fs::remove_file(&full).unwrap();
        std::fs::remove_file(&small).unwrap();
    }
}
