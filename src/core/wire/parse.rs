//! Kraken WebSocket v2 frames → typed messages, without allocation.
//!
//! One pass over the frame with [`Cursor`]. Book levels and trades are written into buffers
//! the [`Parser`] allocated at start-up (fixed capacity; exceeding it is an error, never a
//! reallocation). Everything else comes back inside [`Message`] as `Copy` values or slices
//! borrowed from the frame. Prices and sizes are converted to integer units exactly (see
//! [`money`](crate::core::money)); a number that does not fit the instrument precision is a
//! [`ParseError`], not a rounded value.
//!
//! Data for other symbols is skipped: the parser is built for one symbol.

use crate::core::event::Side;
use crate::core::money::{Decimal, NumError, Price, Qty};
use crate::core::time::{DateCache, Nanos, parse_rfc3339_cached};
use crate::core::wire::json::{Cursor, JsonError, Kind};

/// Most levels one book message may carry per side (Kraken's deepest subscription is 1000).
pub const MAX_LEVELS_PER_MSG: usize = 1024;
/// Most trades one trade message may carry (snapshots carry ~50).
pub const MAX_TRADES_PER_MSG: usize = 1024;

/// Fields named in parse errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is the JSON field of the same name
pub enum Field {
    Channel,
    Type,
    Data,
    Method,
    Success,
    Result,
    Error,
    ReqId,
    Symbol,
    Bids,
    Asks,
    Price,
    Qty,
    Checksum,
    Timestamp,
    Side,
    TradeId,
    ConnectionId,
    System,
    Depth,
    Snapshot,
    PricePrecision,
    QtyPrecision,
    PriceIncrement,
    QtyIncrement,
    QtyMin,
    CostMin,
    Status,
    Pairs,
}

/// Why a frame was rejected. Every variant is counted by the core; none is fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Not well-formed JSON (truncated, stray bytes, too deep).
    #[error("malformed JSON: {0}")]
    Json(#[from] JsonError),
    /// A number that is not exact at the instrument precision, negative, or out of range.
    #[error("bad number in {field:?}: {err}")]
    Number {
        /// Which field.
        field: Field,
        /// What was wrong.
        err: NumError,
    },
    /// A field the message kind requires is absent.
    #[error("missing field {0:?}")]
    Missing(Field),
    /// A field appeared twice in one object (we do not guess which one is meant).
    #[error("duplicate field {0:?}")]
    Duplicate(Field),
    /// A field has the wrong JSON type or an unknown value.
    #[error("bad value in {0:?}")]
    BadValue(Field),
    /// More levels or trades than the fixed buffers hold.
    #[error("too many entries in one message")]
    TooMany,
    /// Two entries for our symbol in one book message.
    #[error("symbol repeated in one message")]
    RepeatedSymbol,
}

impl ParseError {
    /// Number of distinct counters [`ParseError::counter`] maps into.
    pub const COUNTERS: usize = 7;

    /// A stable index for per-kind error counters.
    #[must_use]
    pub fn counter(&self) -> usize {
        match self {
            ParseError::Json(_) => 0,
            ParseError::Number { .. } => 1,
            ParseError::Missing(_) => 2,
            ParseError::Duplicate(_) => 3,
            ParseError::BadValue(_) => 4,
            ParseError::TooMany => 5,
            ParseError::RepeatedSymbol => 6,
        }
    }

    /// Names for the counters, in [`ParseError::counter`] order.
    pub const COUNTER_NAMES: [&'static str; Self::COUNTERS] = [
        "json",
        "number",
        "missing_field",
        "duplicate_field",
        "bad_value",
        "too_many",
        "repeated_symbol",
    ];
}

/// One price level as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawLevel {
    /// Price in units of the parser's price precision.
    pub price: Price,
    /// Quantity in lots; zero deletes the level.
    pub qty: Qty,
    /// Decimals of the price as written on the wire.
    pub price_dec: u8,
    /// Decimals of the quantity as written on the wire.
    pub qty_dec: u8,
}

/// The header of a book message; its levels are in [`Parser::bids`] / [`Parser::asks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookHeader {
    /// `type: "snapshot"` (replace the book) rather than `"update"`.
    pub snapshot: bool,
    /// The CRC32 Kraken computed after this message, if sent.
    pub checksum: Option<u32>,
    /// Exchange timestamp, if present and valid.
    pub exchange_ts: Option<Nanos>,
}

/// One public trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade {
    /// The taker's side.
    pub side: Side,
    /// Trade price.
    pub price: Price,
    /// Trade size.
    pub qty: Qty,
    /// Kraken's trade id.
    pub trade_id: u64,
    /// Exchange timestamp, if present and valid.
    pub exchange_ts: Option<Nanos>,
}

/// Trading status of a pair (instrument channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairStatus {
    /// Normal trading.
    Online,
    /// Only cancels accepted.
    CancelOnly,
    /// Only post-only orders accepted.
    PostOnly,
    /// Only limit orders accepted.
    LimitOnly,
    /// Only position-reducing orders.
    ReduceOnly,
    /// Maintenance.
    Maintenance,
    /// Delisted.
    Delisted,
    /// Anything else Kraken may add.
    Other,
}

/// What the `instrument` channel says about our pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstrumentInfo {
    /// Decimals of prices.
    pub price_precision: u8,
    /// Decimals of quantities.
    pub qty_precision: u8,
    /// Tick size.
    pub price_increment: Option<Decimal>,
    /// Lot size.
    pub qty_increment: Option<Decimal>,
    /// Minimum order size in base currency.
    pub qty_min: Option<Decimal>,
    /// Minimum price × qty in quote currency.
    pub cost_min: Option<Decimal>,
    /// Trading status.
    pub status: PairStatus,
}

/// Exchange-wide status (`status` channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemState {
    /// Trading normally.
    Online,
    /// Maintenance.
    Maintenance,
    /// Cancels only.
    CancelOnly,
    /// Post-only.
    PostOnly,
    /// Anything else.
    Other,
}

/// Channels we subscribe to or may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// `book`
    Book,
    /// `trade`
    Trade,
    /// `instrument`
    Instrument,
    /// `ticker`
    Ticker,
    /// `heartbeat`
    Heartbeat,
    /// `status`
    Status,
    /// Any other.
    Other,
}

impl Channel {
    fn from_bytes(s: &[u8]) -> Channel {
        match s {
            b"book" => Channel::Book,
            b"trade" => Channel::Trade,
            b"instrument" => Channel::Instrument,
            b"ticker" => Channel::Ticker,
            b"heartbeat" => Channel::Heartbeat,
            b"status" => Channel::Status,
            _ => Channel::Other,
        }
    }
}

/// A subscribe/unsubscribe acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack {
    /// Which channel.
    pub channel: Channel,
    /// Book depth, for book acks.
    pub depth: Option<u16>,
    /// Echoed request id.
    pub req_id: Option<u64>,
}

/// A decoded frame. Borrowed slices point into the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    /// Book snapshot or update for our symbol; levels in the parser's buffers.
    Book(BookHeader),
    /// Trades for our symbol in [`Parser::trades`]; `true` for a snapshot.
    Trades(bool),
    /// Instrument data; `None` when the message does not mention our symbol.
    Instrument(Option<InstrumentInfo>),
    /// `{"channel":"heartbeat"}`.
    Heartbeat,
    /// Exchange status; `connection_id` is a u64 (it exceeds 2^53).
    Status {
        /// Exchange state.
        system: SystemState,
        /// Connection id.
        connection_id: Option<u64>,
    },
    /// Reply to our application ping.
    Pong {
        /// Echoed request id.
        req_id: Option<u64>,
    },
    /// Successful subscribe.
    Subscribed(Ack),
    /// Successful unsubscribe.
    Unsubscribed(Ack),
    /// A method reply with `success: false`.
    MethodError {
        /// The method name as sent.
        method: &'a [u8],
        /// Echoed request id.
        req_id: Option<u64>,
        /// Kraken's error text.
        error: &'a [u8],
    },
    /// Well-formed but not for us: another symbol, another channel, a method we do not use.
    Ignored,
}

/// The frame parser for one symbol. Create once; reuse for every frame.
#[derive(Debug)]
pub struct Parser {
    symbol: Box<[u8]>,
    price_precision: u8,
    qty_precision: u8,
    bids: Vec<RawLevel>,
    asks: Vec<RawLevel>,
    trades: Vec<Trade>,
    /// Off only in tests that compare the fast path with the general parser.
    fast_path: bool,
    /// The date of the last exchange timestamp.
    dates: DateCache,
}

#[derive(Default)]
struct TopLevel<'a> {
    channel: Option<&'a [u8]>,
    typ: Option<&'a [u8]>,
    method: Option<&'a [u8]>,
    success: Option<bool>,
    result: Option<&'a [u8]>,
    error: Option<&'a [u8]>,
    req_id: Option<u64>,
    data: Option<&'a [u8]>,
    data_done: Option<DataOutcome>,
}

#[derive(Clone, Copy)]
enum DataOutcome {
    Book(BookHeader),
    NoBook,
    Trades,
    Instrument(Option<InstrumentInfo>),
    Status(SystemState, Option<u64>),
    Other,
}

fn set_once<T>(slot: &mut Option<T>, v: T, f: Field) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::Duplicate(f));
    }
    *slot = Some(v);
    Ok(())
}

#[inline]
fn num_field(c: &mut Cursor<'_>, f: Field) -> Result<Decimal, ParseError> {
    c.decimal().map_err(|e| match e {
        Ok(err) => ParseError::Number { field: f, err },
        Err(j) => ParseError::Json(j),
    })
}

fn u64_field(c: &mut Cursor<'_>, f: Field) -> Result<u64, ParseError> {
    let d = num_field(c, f)?;
    d.to_units(0)
        .map_err(|err| ParseError::Number { field: f, err })
}

fn string_field<'a>(c: &mut Cursor<'a>, f: Field) -> Result<&'a [u8], ParseError> {
    if c.peek_kind()? != Kind::String {
        return Err(ParseError::BadValue(f));
    }
    Ok(c.string()?)
}

fn precision_field(c: &mut Cursor<'_>, f: Field) -> Result<u8, ParseError> {
    let v = u64_field(c, f)?;
    u8::try_from(v)
        .ok()
        .filter(|p| *p <= crate::core::money::MAX_SCALE)
        .ok_or(ParseError::BadValue(f))
}

impl Parser {
    /// A parser for `symbol` (e.g. `"BTC/USD"`) with prices and sizes converted at the given
    /// precisions. Allocates its buffers here, once.
    #[must_use]
    pub fn new(symbol: &str, price_precision: u8, qty_precision: u8) -> Parser {
        Parser {
            symbol: symbol.as_bytes().into(),
            price_precision,
            qty_precision,
            bids: Vec::with_capacity(MAX_LEVELS_PER_MSG),
            asks: Vec::with_capacity(MAX_LEVELS_PER_MSG),
            trades: Vec::with_capacity(MAX_TRADES_PER_MSG),
            fast_path: true,
            dates: DateCache::default(),
        }
    }

    /// Changes the unit precisions (after the instrument channel reports new ones).
    pub fn set_precision(&mut self, price_precision: u8, qty_precision: u8) {
        self.price_precision = price_precision;
        self.qty_precision = qty_precision;
    }

    /// The symbol this parser keeps.
    #[must_use]
    pub fn symbol(&self) -> &[u8] {
        &self.symbol
    }

    /// Bid levels of the last book message, in wire order.
    #[must_use]
    pub fn bids(&self) -> &[RawLevel] {
        &self.bids
    }

    /// Ask levels of the last book message, in wire order.
    #[must_use]
    pub fn asks(&self) -> &[RawLevel] {
        &self.asks
    }

    /// Trades of the last trade message, in wire order.
    #[must_use]
    pub fn trades(&self) -> &[Trade] {
        &self.trades
    }

    /// Decodes one frame.
    ///
    /// # Errors
    /// A [`ParseError`] naming what is wrong; the parser stays usable.
    // Inlined so the common book frame's result stays in registers; everything else goes
    // through the out-of-line general parser.
    #[inline]
    pub fn parse<'a>(&mut self, frame: &'a [u8]) -> Result<Message<'a>, ParseError> {
        self.bids.clear();
        self.asks.clear();
        self.trades.clear();
        if self.fast_path
            && let Some(m) = self.book_fast(frame)
        {
            return Ok(m);
        }
        let result = self.parse_general(frame);
        if result.is_err() {
            // Never leave half a message in the buffers.
            self.bids.clear();
            self.asks.clear();
            self.trades.clear();
        }
        result
    }

    #[inline(never)]
    fn parse_general<'a>(&mut self, frame: &'a [u8]) -> Result<Message<'a>, ParseError> {
        self.bids.clear();
        self.asks.clear();
        let mut c = Cursor::new(frame);
        c.begin_object()?;
        let mut t = TopLevel::default();
        let mut first = true;
        while let Some(key) = c.next_key(&mut first)? {
            match key {
                b"channel" => set_once(
                    &mut t.channel,
                    string_field(&mut c, Field::Channel)?,
                    Field::Channel,
                )?,
                b"type" => set_once(&mut t.typ, string_field(&mut c, Field::Type)?, Field::Type)?,
                b"method" => set_once(
                    &mut t.method,
                    string_field(&mut c, Field::Method)?,
                    Field::Method,
                )?,
                b"success" => {
                    let v = c
                        .boolean()
                        .map_err(|_| ParseError::BadValue(Field::Success))?;
                    set_once(&mut t.success, v, Field::Success)?;
                }
                b"result" => set_once(&mut t.result, c.value_span()?, Field::Result)?,
                b"error" => set_once(
                    &mut t.error,
                    string_field(&mut c, Field::Error)?,
                    Field::Error,
                )?,
                b"req_id" => set_once(
                    &mut t.req_id,
                    u64_field(&mut c, Field::ReqId)?,
                    Field::ReqId,
                )?,
                b"data" => {
                    if t.data.is_some() || t.data_done.is_some() {
                        return Err(ParseError::Duplicate(Field::Data));
                    }
                    // The usual key order puts "channel" first: parse in place. Otherwise
                    // remember the span and parse it once the channel is known.
                    if let Some(ch) = t.channel {
                        t.data_done = Some(self.parse_data(&mut c, Channel::from_bytes(ch))?);
                    } else {
                        t.data = Some(c.value_span()?);
                    }
                }
                _ => c.skip_value()?,
            }
        }
        c.end()?;

        if let Some(ch) = t.channel {
            let channel = Channel::from_bytes(ch);
            let outcome = match (t.data_done, t.data) {
                (Some(o), _) => Some(o),
                (None, Some(span)) => Some(self.parse_data(&mut Cursor::new(span), channel)?),
                (None, None) => None,
            };
            return Self::channel_message(channel, t.typ, outcome);
        }
        if let Some(method) = t.method {
            return Self::method_message(method, &t);
        }
        Err(ParseError::Missing(Field::Channel))
    }

    /// A book message of our symbol written exactly the way Kraken writes it (key order,
    /// no whitespace, one data entry): most of the feed. Anything else, including every error,
    /// returns `None` and the general parser decides (the outcome is the same; only the speed
    /// differs, which `fast_path_agrees_with_the_general_parser` checks).
    #[inline]
    fn book_fast<'a>(&mut self, frame: &'a [u8]) -> Option<Message<'a>> {
        const PREFIX: &[u8] = br#"{"channel":"book","type":""#;
        let mut c = Cursor::new(frame);
        if !c.eat(PREFIX) {
            return None;
        }
        let snapshot = if c.eat(br#"update","data":[{"symbol":""#) {
            false
        } else if c.eat(br#"snapshot","data":[{"symbol":""#) {
            true
        } else {
            return None;
        };
        if !c.eat(&self.symbol) || !c.eat(br#"","bids":"#) {
            return None;
        }
        self.parse_levels(&mut c, true, Field::Bids).ok()?;
        if !c.eat(br#","asks":"#) {
            return None;
        }
        self.parse_levels(&mut c, false, Field::Asks).ok()?;
        if !c.eat(br#","checksum":"#) {
            return None;
        }
        let checksum = u32::try_from(c.plain_u64()?).ok()?;
        let exchange_ts = if c.eat(br#","timestamp":"#) {
            Some(parse_rfc3339_cached(
                string_field(&mut c, Field::Timestamp).ok()?,
                &mut self.dates,
            ))
        } else {
            None
        };
        if !c.eat(b"}]}") || c.end().is_err() {
            return None;
        }
        Some(Message::Book(BookHeader {
            snapshot,
            checksum: Some(checksum),
            exchange_ts: exchange_ts.flatten(),
        }))
    }

    fn channel_message<'a>(
        channel: Channel,
        typ: Option<&[u8]>,
        outcome: Option<DataOutcome>,
    ) -> Result<Message<'a>, ParseError> {
        if channel == Channel::Heartbeat {
            return Ok(Message::Heartbeat);
        }
        let snapshot = match typ {
            Some(b"snapshot") => true,
            Some(b"update") => false,
            Some(_) => return Err(ParseError::BadValue(Field::Type)),
            None if matches!(channel, Channel::Book | Channel::Trade) => {
                return Err(ParseError::Missing(Field::Type));
            }
            None => false,
        };
        let Some(outcome) = outcome else {
            return match channel {
                Channel::Book | Channel::Trade | Channel::Instrument | Channel::Status => {
                    Err(ParseError::Missing(Field::Data))
                }
                _ => Ok(Message::Ignored),
            };
        };
        Ok(match outcome {
            DataOutcome::Book(mut h) => {
                h.snapshot = snapshot;
                Message::Book(h)
            }
            DataOutcome::Trades => Message::Trades(snapshot),
            DataOutcome::Instrument(i) => Message::Instrument(i),
            DataOutcome::Status(system, connection_id) => Message::Status {
                system,
                connection_id,
            },
            DataOutcome::NoBook | DataOutcome::Other => Message::Ignored,
        })
    }

    fn method_message<'a>(method: &'a [u8], t: &TopLevel<'a>) -> Result<Message<'a>, ParseError> {
        if method == b"pong" {
            return Ok(Message::Pong { req_id: t.req_id });
        }
        let success = t.success.ok_or(ParseError::Missing(Field::Success))?;
        if !success {
            return Ok(Message::MethodError {
                method,
                req_id: t.req_id,
                error: t.error.unwrap_or(b""),
            });
        }
        let subscribe = match method {
            b"subscribe" => true,
            b"unsubscribe" => false,
            _ => return Ok(Message::Ignored),
        };
        let result = t.result.ok_or(ParseError::Missing(Field::Result))?;
        let mut ack = Ack {
            channel: Channel::Other,
            depth: None,
            req_id: t.req_id,
        };
        let mut c = Cursor::new(result);
        if c.peek_kind()? != Kind::Object {
            return Err(ParseError::BadValue(Field::Result));
        }
        c.begin_object()?;
        let mut first = true;
        while let Some(key) = c.next_key(&mut first)? {
            match key {
                b"channel" => {
                    ack.channel = Channel::from_bytes(string_field(&mut c, Field::Channel)?)
                }
                b"depth" => {
                    let d = u64_field(&mut c, Field::Depth)?;
                    ack.depth =
                        Some(u16::try_from(d).map_err(|_| ParseError::BadValue(Field::Depth))?);
                }
                _ => c.skip_value()?,
            }
        }
        Ok(if subscribe {
            Message::Subscribed(ack)
        } else {
            Message::Unsubscribed(ack)
        })
    }

    fn parse_data(
        &mut self,
        c: &mut Cursor<'_>,
        channel: Channel,
    ) -> Result<DataOutcome, ParseError> {
        match channel {
            Channel::Book => self.parse_book_data(c),
            Channel::Trade => self.parse_trade_data(c),
            Channel::Instrument => self.parse_instrument_data(c),
            Channel::Status => Self::parse_status_data(c),
            _ => {
                c.skip_value()?;
                Ok(DataOutcome::Other)
            }
        }
    }

    fn parse_book_data(&mut self, c: &mut Cursor<'_>) -> Result<DataOutcome, ParseError> {
        if c.peek_kind()? != Kind::Array {
            return Err(ParseError::BadValue(Field::Data));
        }
        c.begin_array()?;
        let mut found: Option<BookHeader> = None;
        let mut first = true;
        while c.next_element(&mut first)? {
            let (bids_mark, asks_mark) = (self.bids.len(), self.asks.len());
            let mut symbol: Option<&[u8]> = None;
            let mut header = BookHeader {
                snapshot: false,
                checksum: None,
                exchange_ts: None,
            };
            let (mut seen_bids, mut seen_asks, mut seen_ts) = (false, false, false);
            if c.peek_kind()? != Kind::Object {
                return Err(ParseError::BadValue(Field::Data));
            }
            c.begin_object()?;
            let mut f2 = true;
            while let Some(key) = c.next_key(&mut f2)? {
                match key {
                    b"symbol" => {
                        set_once(&mut symbol, string_field(c, Field::Symbol)?, Field::Symbol)?
                    }
                    b"bids" => {
                        if std::mem::replace(&mut seen_bids, true) {
                            return Err(ParseError::Duplicate(Field::Bids));
                        }
                        self.parse_levels(c, true, Field::Bids)?;
                    }
                    b"asks" => {
                        if std::mem::replace(&mut seen_asks, true) {
                            return Err(ParseError::Duplicate(Field::Asks));
                        }
                        self.parse_levels(c, false, Field::Asks)?;
                    }
                    b"checksum" => {
                        let v = u64_field(c, Field::Checksum)?;
                        let v =
                            u32::try_from(v).map_err(|_| ParseError::BadValue(Field::Checksum))?;
                        set_once(&mut header.checksum, v, Field::Checksum)?;
                    }
                    b"timestamp" => {
                        if std::mem::replace(&mut seen_ts, true) {
                            return Err(ParseError::Duplicate(Field::Timestamp));
                        }
                        header.exchange_ts = parse_rfc3339_cached(
                            string_field(c, Field::Timestamp)?,
                            &mut self.dates,
                        );
                    }
                    _ => c.skip_value()?,
                }
            }
            let symbol = symbol.ok_or(ParseError::Missing(Field::Symbol))?;
            if symbol == &*self.symbol {
                if found.is_some() {
                    return Err(ParseError::RepeatedSymbol);
                }
                found = Some(header);
            } else {
                // Another symbol's levels: drop what this entry added.
                self.bids.truncate(bids_mark);
                self.asks.truncate(asks_mark);
            }
        }
        Ok(found.map_or(DataOutcome::NoBook, DataOutcome::Book))
    }

    fn parse_levels(
        &mut self,
        c: &mut Cursor<'_>,
        bids: bool,
        side_field: Field,
    ) -> Result<(), ParseError> {
        if c.peek_kind()? != Kind::Array {
            return Err(ParseError::BadValue(side_field));
        }
        c.begin_array()?;
        let mut first = true;
        while c.next_element(&mut first)? {
            let fast = if self.fast_path {
                Self::level_fast(c)
            } else {
                None
            };
            let (price, qty) = match fast {
                Some(pq) => pq,
                None => Self::level_general(c, side_field)?,
            };
            let level = RawLevel {
                price: self.price_units(price)?,
                qty: self.qty_units(qty)?,
                price_dec: price.scale,
                qty_dec: qty.scale,
            };
            if level.price.0 <= 0 {
                return Err(ParseError::BadValue(Field::Price));
            }
            let buf = if bids { &mut self.bids } else { &mut self.asks };
            if buf.len() == buf.capacity() {
                return Err(ParseError::TooMany);
            }
            buf.push(level);
        }
        Ok(())
    }

    /// `{"price":<num>,"qty":<num>}` exactly as Kraken writes it, or `None` to take the
    /// general path (which also produces the precise error).
    #[inline]
    fn level_fast(c: &mut Cursor<'_>) -> Option<(Decimal, Decimal)> {
        let start = c.pos();
        let r = (|| {
            if !c.eat(b"{\"price\":") {
                return None;
            }
            let p = c.plain_decimal()?;
            if !c.eat(b",\"qty\":") {
                return None;
            }
            let q = c.plain_decimal()?;
            c.eat(b"}").then_some((p, q))
        })();
        if r.is_none() {
            c.rewind(start);
        }
        r
    }

    /// Any key order, extra keys, strings for numbers; every error named.
    fn level_general(
        c: &mut Cursor<'_>,
        side_field: Field,
    ) -> Result<(Decimal, Decimal), ParseError> {
        if c.peek_kind()? != Kind::Object {
            return Err(ParseError::BadValue(side_field));
        }
        c.begin_object()?;
        let (mut price, mut qty): (Option<Decimal>, Option<Decimal>) = (None, None);
        let mut f2 = true;
        while let Some(key) = c.next_key(&mut f2)? {
            match key {
                b"price" => set_once(&mut price, num_field(c, Field::Price)?, Field::Price)?,
                b"qty" => set_once(&mut qty, num_field(c, Field::Qty)?, Field::Qty)?,
                _ => c.skip_value()?,
            }
        }
        Ok((
            price.ok_or(ParseError::Missing(Field::Price))?,
            qty.ok_or(ParseError::Missing(Field::Qty))?,
        ))
    }

    fn price_units(&self, d: Decimal) -> Result<Price, ParseError> {
        let err = |err| ParseError::Number {
            field: Field::Price,
            err,
        };
        let u = d.to_units(self.price_precision).map_err(err)?;
        i64::try_from(u)
            .map(Price)
            .map_err(|_| err(NumError::Overflow))
    }

    fn qty_units(&self, d: Decimal) -> Result<Qty, ParseError> {
        d.to_units(self.qty_precision)
            .map(Qty)
            .map_err(|err| ParseError::Number {
                field: Field::Qty,
                err,
            })
    }

    fn parse_trade_data(&mut self, c: &mut Cursor<'_>) -> Result<DataOutcome, ParseError> {
        if c.peek_kind()? != Kind::Array {
            return Err(ParseError::BadValue(Field::Data));
        }
        c.begin_array()?;
        let mut first = true;
        while c.next_element(&mut first)? {
            if c.peek_kind()? != Kind::Object {
                return Err(ParseError::BadValue(Field::Data));
            }
            c.begin_object()?;
            let mut symbol: Option<&[u8]> = None;
            let (mut side, mut price, mut qty, mut id) = (None, None, None, None);
            let mut ts: Option<Option<Nanos>> = None;
            let mut f2 = true;
            while let Some(key) = c.next_key(&mut f2)? {
                match key {
                    b"symbol" => {
                        set_once(&mut symbol, string_field(c, Field::Symbol)?, Field::Symbol)?
                    }
                    b"side" => {
                        let s = match string_field(c, Field::Side)? {
                            b"buy" => Side::Buy,
                            b"sell" => Side::Sell,
                            _ => return Err(ParseError::BadValue(Field::Side)),
                        };
                        set_once(&mut side, s, Field::Side)?;
                    }
                    b"price" => set_once(&mut price, num_field(c, Field::Price)?, Field::Price)?,
                    b"qty" => set_once(&mut qty, num_field(c, Field::Qty)?, Field::Qty)?,
                    b"trade_id" => {
                        set_once(&mut id, u64_field(c, Field::TradeId)?, Field::TradeId)?
                    }
                    b"timestamp" => set_once(
                        &mut ts,
                        parse_rfc3339_cached(string_field(c, Field::Timestamp)?, &mut self.dates),
                        Field::Timestamp,
                    )?,
                    _ => c.skip_value()?,
                }
            }
            if symbol.ok_or(ParseError::Missing(Field::Symbol))? != &*self.symbol {
                continue;
            }
            let trade = Trade {
                side: side.ok_or(ParseError::Missing(Field::Side))?,
                price: self.price_units(price.ok_or(ParseError::Missing(Field::Price))?)?,
                qty: self.qty_units(qty.ok_or(ParseError::Missing(Field::Qty))?)?,
                trade_id: id.unwrap_or(0),
                exchange_ts: ts.flatten(),
            };
            if trade.price.0 <= 0 {
                return Err(ParseError::BadValue(Field::Price));
            }
            if self.trades.len() == self.trades.capacity() {
                return Err(ParseError::TooMany);
            }
            self.trades.push(trade);
        }
        Ok(DataOutcome::Trades)
    }

    fn parse_instrument_data(&mut self, c: &mut Cursor<'_>) -> Result<DataOutcome, ParseError> {
        if c.peek_kind()? != Kind::Object {
            return Err(ParseError::BadValue(Field::Data));
        }
        c.begin_object()?;
        let mut found = None;
        let mut first = true;
        while let Some(key) = c.next_key(&mut first)? {
            if key != b"pairs" {
                c.skip_value()?;
                continue;
            }
            if c.peek_kind()? != Kind::Array {
                return Err(ParseError::BadValue(Field::Pairs));
            }
            c.begin_array()?;
            let mut f2 = true;
            while c.next_element(&mut f2)? {
                if let Some(info) = self.parse_pair(c)? {
                    found = Some(info);
                }
            }
        }
        Ok(DataOutcome::Instrument(found))
    }

    fn parse_pair(&self, c: &mut Cursor<'_>) -> Result<Option<InstrumentInfo>, ParseError> {
        if c.peek_kind()? != Kind::Object {
            return Err(ParseError::BadValue(Field::Pairs));
        }
        c.begin_object()?;
        let mut symbol: Option<&[u8]> = None;
        let (mut pp, mut qp) = (None, None);
        let mut info = InstrumentInfo {
            price_precision: 0,
            qty_precision: 0,
            price_increment: None,
            qty_increment: None,
            qty_min: None,
            cost_min: None,
            status: PairStatus::Other,
        };
        let mut first = true;
        while let Some(key) = c.next_key(&mut first)? {
            match key {
                b"symbol" => set_once(&mut symbol, string_field(c, Field::Symbol)?, Field::Symbol)?,
                b"price_precision" => set_once(
                    &mut pp,
                    precision_field(c, Field::PricePrecision)?,
                    Field::PricePrecision,
                )?,
                b"qty_precision" => set_once(
                    &mut qp,
                    precision_field(c, Field::QtyPrecision)?,
                    Field::QtyPrecision,
                )?,
                b"price_increment" => {
                    info.price_increment = Some(num_field(c, Field::PriceIncrement)?)
                }
                b"qty_increment" => info.qty_increment = Some(num_field(c, Field::QtyIncrement)?),
                b"qty_min" => info.qty_min = Some(num_field(c, Field::QtyMin)?),
                b"cost_min" => info.cost_min = Some(num_field(c, Field::CostMin)?),
                b"status" => {
                    info.status = match string_field(c, Field::Status)? {
                        b"online" => PairStatus::Online,
                        b"cancel_only" => PairStatus::CancelOnly,
                        b"post_only" => PairStatus::PostOnly,
                        b"limit_only" => PairStatus::LimitOnly,
                        b"reduce_only" => PairStatus::ReduceOnly,
                        b"maintenance" => PairStatus::Maintenance,
                        b"delisted" => PairStatus::Delisted,
                        _ => PairStatus::Other,
                    }
                }
                _ => c.skip_value()?,
            }
        }
        if symbol != Some(&*self.symbol) {
            return Ok(None);
        }
        info.price_precision = pp.ok_or(ParseError::Missing(Field::PricePrecision))?;
        info.qty_precision = qp.ok_or(ParseError::Missing(Field::QtyPrecision))?;
        Ok(Some(info))
    }

    fn parse_status_data(c: &mut Cursor<'_>) -> Result<DataOutcome, ParseError> {
        if c.peek_kind()? != Kind::Array {
            return Err(ParseError::BadValue(Field::Data));
        }
        c.begin_array()?;
        let mut system = SystemState::Other;
        let mut conn = None;
        let mut first = true;
        while c.next_element(&mut first)? {
            if c.peek_kind()? != Kind::Object {
                return Err(ParseError::BadValue(Field::Data));
            }
            c.begin_object()?;
            let mut f2 = true;
            while let Some(key) = c.next_key(&mut f2)? {
                match key {
                    b"system" => {
                        system = match string_field(c, Field::System)? {
                            b"online" => SystemState::Online,
                            b"maintenance" => SystemState::Maintenance,
                            b"cancel_only" => SystemState::CancelOnly,
                            b"post_only" => SystemState::PostOnly,
                            _ => SystemState::Other,
                        }
                    }
                    b"connection_id" => conn = Some(u64_field(c, Field::ConnectionId)?),
                    _ => c.skip_value()?,
                }
            }
        }
        Ok(DataOutcome::Status(system, conn))
    }
}

#[cfg(test)]
mod tests;
