//! Kraken's authenticated WebSocket v2 frames, read without allocating: the envelope once,
//! then each `executions` / `balances` entry through a callback, every field a borrowed slice
//! or an exact fixed-point value.
//!
//! Key order is not assumed (Kraken's acks start with `method`, data with `channel`), and
//! fields the bot does not use are skipped with full syntax checks: any input is either read
//! or a typed [`JsonError`], never a panic.

use crate::core::money::{Cash, Decimal, Precision, Qty};
use crate::core::wire::json::{Cursor, JsonError, Kind};

/// What one frame on the private connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// `executions` data: the raw `data` array.
    Executions {
        /// A snapshot (authoritative) rather than an update.
        snapshot: bool,
        /// The `data` array's text.
        data: &'a [u8],
        /// The per-subscription sequence number.
        sequence: Option<u64>,
    },
    /// `balances` data.
    Balances {
        /// A snapshot rather than a ledger update.
        snapshot: bool,
        /// The `data` array's text.
        data: &'a [u8],
    },
    /// The answer to one of our requests.
    Ack(Ack<'a>),
    /// A pong to our ping.
    Pong,
    /// A heartbeat, or a channel we do not use.
    Other,
}

/// A method's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ack<'a> {
    /// `subscribe`, `add_order`, ...
    pub method: &'a [u8],
    /// Whether Kraken did it.
    pub success: bool,
    /// Our `req_id`, echoed.
    pub req_id: Option<u64>,
    /// Kraken's error text.
    pub error: Option<&'a [u8]>,
    /// `result.channel` (subscribe acks).
    pub channel: Option<&'a [u8]>,
    /// `result.maxratecount` (the executions ack).
    pub maxratecount: Option<u64>,
    /// `result.order_id` (order acks).
    pub order_id: Option<&'a [u8]>,
}

/// One execution report (sparse: what is absent is `None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Exec<'a> {
    /// Kraken's order id.
    pub order_id: &'a [u8],
    /// Our client id, when the order has one.
    pub cl_ord_id: Option<&'a [u8]>,
    /// The fill's unique id (trade events).
    pub exec_id: Option<&'a [u8]>,
    /// `pending_new`, `new`, `trade`, `filled`, `canceled`, `expired`, `amended`, ...
    pub exec_type: &'a [u8],
    /// `new`, `partially_filled`, `filled`, `canceled`, `expired`, ...
    pub order_status: &'a [u8],
    /// Why it ended (`User requested`, `Post only order`, ...).
    pub reason: Option<&'a [u8]>,
    /// This fill's quantity.
    pub last_qty: Option<Qty>,
    /// This fill's price × quantity (or `last_price` × `last_qty` when `cost` is absent).
    pub cost: Option<Cash>,
    /// This fill's fees in quote currency (the `fees` array summed, else `fee_usd_equiv`).
    pub fee: Option<Cash>,
    /// Executed quantity over the order's life.
    pub cum_qty: Option<Qty>,
    /// Executed value over the order's life.
    pub cum_cost: Option<Cash>,
    /// The trading rate counter, where Kraken includes it (`ratecount`; placement in v2 is
    /// not documented).
    pub ratecount: Option<Decimal>,
}

/// Reads the envelope.
///
/// # Errors
/// Malformed JSON.
pub fn frame(buf: &[u8]) -> Result<Frame<'_>, JsonError> {
    let mut c = Cursor::new(buf);
    c.begin_object()?;
    let mut first = true;
    let (mut channel, mut kind, mut data, mut sequence) = (None, None, None, None);
    let mut ack = Ack::default();
    let mut is_ack = false;
    while let Some(key) = c.next_key(&mut first)? {
        match key {
            b"channel" => channel = Some(c.string()?),
            b"type" => kind = Some(c.string()?),
            b"data" => data = Some(c.value_span()?),
            b"sequence" => sequence = c.number().ok().and_then(parse_u64),
            b"method" => {
                is_ack = true;
                ack.method = c.string()?;
            }
            b"success" => ack.success = c.boolean()?,
            b"req_id" => ack.req_id = c.number().ok().and_then(parse_u64),
            b"error" => {
                ack.error = match c.peek_kind()? {
                    Kind::String => Some(c.string()?),
                    _ => Some(c.value_span()?),
                }
            }
            b"result" => result(&mut c, &mut ack)?,
            _ => c.skip_value()?,
        }
    }
    c.end()?;
    if is_ack {
        if ack.method == b"pong" {
            return Ok(Frame::Pong);
        }
        return Ok(Frame::Ack(ack));
    }
    let snapshot = kind == Some(b"snapshot".as_slice());
    Ok(match (channel, data) {
        (Some(b"executions"), Some(data)) => Frame::Executions {
            snapshot,
            data,
            sequence,
        },
        (Some(b"balances"), Some(data)) => Frame::Balances { snapshot, data },
        _ => Frame::Other,
    })
}

fn result<'a>(c: &mut Cursor<'a>, ack: &mut Ack<'a>) -> Result<(), JsonError> {
    if c.peek_kind()? != Kind::Object {
        return c.skip_value();
    }
    c.begin_object()?;
    let mut first = true;
    while let Some(key) = c.next_key(&mut first)? {
        match key {
            b"channel" => ack.channel = Some(c.string()?),
            b"maxratecount" => ack.maxratecount = c.number().ok().and_then(parse_u64),
            b"order_id" if c.peek_kind()? == Kind::String => ack.order_id = Some(c.string()?),
            _ => c.skip_value()?,
        }
    }
    Ok(())
}

fn parse_u64(n: &[u8]) -> Option<u64> {
    std::str::from_utf8(n).ok()?.parse().ok()
}

/// A number (or a string holding one); `None` for anything else, skipped.
fn decimal(c: &mut Cursor<'_>) -> Result<Option<Decimal>, JsonError> {
    match c.peek_kind()? {
        Kind::Number | Kind::String => {
            let at = c.pos();
            match c.decimal() {
                Ok(d) => Ok(Some(d)),
                Err(Err(e)) => Err(e),
                Err(Ok(_)) => {
                    // Not a decimal we can hold: skip it as a value.
                    c.rewind(at);
                    c.skip_value()?;
                    Ok(None)
                }
            }
        }
        _ => {
            c.skip_value()?;
            Ok(None)
        }
    }
}

fn qty(d: Option<Decimal>, p: Precision) -> Option<Qty> {
    d.and_then(|d| d.to_units_floor(p.qty).ok()).map(Qty)
}

/// The `fees` array summed (quote currency), rounded up: a fee is never understated.
fn fees(c: &mut Cursor<'_>, p: Precision) -> Result<Option<Cash>, JsonError> {
    let mut total = None;
    for_each_object(c, |c| {
        c.begin_object()?;
        let mut f = true;
        while let Some(key) = c.next_key(&mut f)? {
            match key {
                b"qty" => {
                    if let Some(d) = decimal(c)? {
                        let add = Cash::from_decimal_round_up(d, p.cash());
                        total = Some(Cash(total.map_or(0, |t: Cash| t.0) + add.0));
                    }
                }
                _ => c.skip_value()?,
            }
        }
        Ok(())
    })?;
    Ok(total)
}

/// Calls `each` at every object of the array that comes next (other elements are skipped;
/// a value that is not an array is skipped whole).
fn for_each_object<'a>(
    c: &mut Cursor<'a>,
    mut each: impl FnMut(&mut Cursor<'a>) -> Result<(), JsonError>,
) -> Result<(), JsonError> {
    if c.peek_kind()? != Kind::Array {
        return c.skip_value();
    }
    c.begin_array()?;
    let mut first = true;
    while c.next_element(&mut first)? {
        if c.peek_kind()? == Kind::Object {
            each(c)?;
        } else {
            c.skip_value()?;
        }
    }
    Ok(())
}

/// A `data` value: an array, or a malformed frame.
fn data_array(data: &[u8]) -> Result<Cursor<'_>, JsonError> {
    let mut c = Cursor::new(data);
    if c.peek_kind()? != Kind::Array {
        return Err(JsonError::Unexpected(0));
    }
    Ok(c)
}

fn text<'a>(c: &mut Cursor<'a>) -> Result<Option<&'a [u8]>, JsonError> {
    if c.peek_kind()? == Kind::String {
        Ok(Some(c.string()?))
    } else {
        c.skip_value()?;
        Ok(None)
    }
}

/// One entry of an `executions` `data` array.
fn exec<'a>(c: &mut Cursor<'a>, p: Precision) -> Result<Exec<'a>, JsonError> {
    c.begin_object()?;
    let mut e = Exec::default();
    let (mut last_price, mut fee_usd) = (None, None);
    let mut first = true;
    while let Some(key) = c.next_key(&mut first)? {
        match key {
            b"order_id" => e.order_id = text(c)?.unwrap_or_default(),
            b"cl_ord_id" => e.cl_ord_id = text(c)?,
            b"exec_id" => e.exec_id = text(c)?,
            b"exec_type" => e.exec_type = text(c)?.unwrap_or_default(),
            b"order_status" => e.order_status = text(c)?.unwrap_or_default(),
            b"reason" => e.reason = text(c)?,
            b"last_qty" => e.last_qty = qty(decimal(c)?, p),
            b"last_price" => last_price = decimal(c)?,
            b"cost" => e.cost = decimal(c)?.map(|d| Cash::from_decimal_round_down(d, p.cash())),
            b"cum_qty" => e.cum_qty = qty(decimal(c)?, p),
            b"cum_cost" => {
                e.cum_cost = decimal(c)?.map(|d| Cash::from_decimal_round_down(d, p.cash()));
            }
            b"fees" => e.fee = fees(c, p)?,
            b"fee_usd_equiv" => {
                fee_usd = decimal(c)?.map(|d| Cash::from_decimal_round_up(d, p.cash()));
            }
            b"ratecount" => e.ratecount = decimal(c)?,
            _ => c.skip_value()?,
        }
    }
    if e.fee.is_none() && e.exec_type == b"trade" {
        e.fee = fee_usd;
    }
    if e.cost.is_none()
        && let (Some(q), Some(px)) = (e.last_qty, last_price)
        && let Ok(px) = px.to_units_floor(p.price)
    {
        e.cost = Some(Cash(i128::from(q.0) * i128::from(px)));
    }
    Ok(e)
}

/// Calls `each` for every execution report in `data`.
///
/// # Errors
/// Malformed JSON (entries before the fault have been handed over).
pub fn executions<'a>(
    data: &'a [u8],
    p: Precision,
    mut each: impl FnMut(&Exec<'a>),
) -> Result<(), JsonError> {
    let mut c = data_array(data)?;
    for_each_object(&mut c, |c| {
        each(&exec(c, p)?);
        Ok(())
    })?;
    c.end()
}

/// One asset's spot balance, from a `balances` snapshot entry (its spot wallet) or an update
/// (a spot ledger entry's new total).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Balance<'a> {
    /// The asset (`BTC`, `USD`: v2 codes).
    pub asset: &'a [u8],
    /// The spot total.
    pub balance: Decimal,
}

/// Calls `each` for every spot balance in `data`.
///
/// # Errors
/// Malformed JSON.
pub fn balances<'a>(data: &'a [u8], mut each: impl FnMut(Balance<'a>)) -> Result<(), JsonError> {
    let mut c = data_array(data)?;
    for_each_object(&mut c, |c| {
        c.begin_object()?;
        let mut f = true;
        let (mut asset, mut total, mut spot, mut wallet_type) = (None, None, None, None);
        while let Some(key) = c.next_key(&mut f)? {
            match key {
                b"asset" => asset = text(c)?,
                b"balance" => total = decimal(c)?,
                b"wallet_type" => wallet_type = text(c)?,
                b"wallets" => spot = spot_wallet(c)?,
                _ => c.skip_value()?,
            }
        }
        // A snapshot entry names its wallets; an update is one wallet's ledger entry.
        let balance = match (spot, wallet_type) {
            (Some(s), _) => Some(s),
            (None, Some(b"spot")) => total,
            (None, Some(_)) => None,
            (None, None) => total,
        };
        if let (Some(asset), Some(balance)) = (asset, balance) {
            each(Balance { asset, balance });
        }
        Ok(())
    })?;
    c.end()
}

fn spot_wallet(c: &mut Cursor<'_>) -> Result<Option<Decimal>, JsonError> {
    let mut spot = None;
    for_each_object(c, |c| {
        c.begin_object()?;
        let mut f = true;
        let (mut kind, mut bal) = (None, None);
        while let Some(key) = c.next_key(&mut f)? {
            match key {
                b"type" => kind = text(c)?,
                b"balance" => bal = decimal(c)?,
                _ => c.skip_value()?,
            }
        }
        if kind == Some(b"spot".as_slice()) {
            spot = bal;
        }
        Ok(())
    })?;
    Ok(spot)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: Precision = Precision { price: 1, qty: 8 };

    #[test]
    fn krakens_own_examples_are_read_exactly() {
        // kraken-private-ws.md §3: the docs' partial fill, and a real snap_trades entry.
        let f = br#"{"channel":"executions","type":"update","data":[{"order_id":"OK4GJX-KSTLS-7DZZO5","order_userref":3,"exec_id":"TGBB7L-HT5LX-J3BZ4A","exec_type":"trade","trade_id":62887576,"symbol":"BTC/USD","side":"sell","last_qty":0.005,"last_price":26599.9,"liquidity_ind":"t","cost":132.9995,"order_type":"limit","timestamp":"2023-09-22T10:33:05.709993Z","order_status":"partially_filled","cum_qty":0.005,"cum_cost":132.9995,"avg_price":26599.9,"fee_usd_equiv":0.3458,"fees":[{"asset":"USD","qty":0.3458}]}],"sequence":10}"#;
        let Frame::Executions {
            snapshot,
            data,
            sequence,
        } = frame(f).unwrap()
        else {
            panic!("executions")
        };
        assert!(!snapshot);
        assert_eq!(sequence, Some(10));
        let mut seen = Vec::new();
        executions(data, P, |e| seen.push(*e)).unwrap();
        let e = seen[0];
        assert_eq!(e.exec_id, Some(b"TGBB7L-HT5LX-J3BZ4A".as_slice()));
        assert_eq!(e.last_qty, Some(Qty(500_000)));
        assert_eq!(e.cum_qty, Some(Qty(500_000)));
        assert_eq!(e.cost, Some(Cash(132_999_500_000)));
        assert_eq!(e.fee, Some(Cash(345_800_000)));
        assert_eq!(e.cl_ord_id, None);
        let snap = br#"[{"order_id":"NG6PUE-C7MXN-CFCAMC","order_userref":0,"exec_id":"B1Y0D9-6JIJG-W1IB7L","exec_type":"trade","trade_id":37496584,"symbol":"BTC/USD","side":"sell","last_qty":0.00016000,"last_price":63377.2,"liquidity_ind":"t","cost":10.12445,"order_status":"filled","order_type":"limit","timestamp":"2024-04-16T10:54:38.243302Z","fee_usd_equiv":0.04050,"fees":[{"asset":"USD","qty":0.04051}]}]"#;
        let mut s = Vec::new();
        executions(snap, P, |e| s.push(*e)).unwrap();
        assert_eq!(s[0].cum_qty, None, "snapshot fills carry no totals");
        assert_eq!(s[0].fee, Some(Cash(40_510_000)), "fees, not fee_usd_equiv");
    }

    #[test]
    fn acks_and_balances() {
        let ack = br#"{"method":"subscribe","result":{"channel":"executions","maxratecount":125,"snap_orders":true,"snap_trades":true},"success":true,"time_in":"2023-10-16T13:18:35.303171Z","time_out":"2023-10-16T13:18:35.318297Z"}"#;
        let Frame::Ack(a) = frame(ack).unwrap() else {
            panic!()
        };
        assert!(a.success);
        assert_eq!(a.maxratecount, Some(125));
        assert_eq!(a.channel, Some(b"executions".as_slice()));
        let err = br#"{"error":"EOrder:Insufficient funds","method":"add_order","success":false,"req_id":7,"time_in":"x","time_out":"y"}"#;
        let Frame::Ack(a) = frame(err).unwrap() else {
            panic!()
        };
        assert_eq!(
            (a.success, a.req_id, a.error),
            (
                false,
                Some(7),
                Some(b"EOrder:Insufficient funds".as_slice())
            )
        );
        let snap = br#"[{"asset":"BTC","asset_class":"currency","balance":1.2,"wallets":[{"type":"spot","id":"main","balance":1.0},{"type":"earn","id":"x","balance":0.2}]},{"asset":"USD","asset_class":"currency","balance":80595.4943,"wallets":[{"type":"spot","id":"main","balance":80595.4943}]}]"#;
        let mut b = Vec::new();
        balances(snap, |x| {
            b.push((x.asset.to_vec(), x.balance.to_units(4).unwrap()))
        })
        .unwrap();
        assert_eq!(
            b,
            vec![(b"BTC".to_vec(), 10_000), (b"USD".to_vec(), 805_954_943)],
            "the spot wallet only"
        );
        let upd = br#"[{"ledger_id":"A5KS77","ref_id":"AGBB7L","timestamp":"2023-09-22T10:33:05.710082Z","type":"trade","asset":"USD","asset_class":"currency","category":"trade","wallet_type":"spot","wallet_id":"main","amount":132.9995,"fee":0.3458,"balance":500}]"#;
        let mut u = Vec::new();
        balances(upd, |x| u.push(x.balance.to_units(0).unwrap())).unwrap();
        assert_eq!(u, vec![500]);
    }

    #[test]
    fn hostile_input_is_an_error_never_a_panic() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            br#"{"channel":"executions","data":[{"order_id":1,"last_qty":"x"}]"#,
            br#"{"channel":"executions","data":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"#,
        ] {
            if let Ok(Frame::Executions { data, .. }) = frame(bad) {
                let _ = executions(data, P, |_| {});
            }
        }
        // Wrong types are skipped, not trusted.
        let odd = br#"[{"order_id":5,"exec_type":"trade","exec_id":["x"],"last_qty":"1e999999","fees":"none"}]"#;
        let mut n = 0;
        executions(odd, P, |e| {
            n += 1;
            assert_eq!((e.exec_id, e.last_qty, e.fee), (None, None, None));
        })
        .unwrap();
        assert_eq!(n, 1);
    }
}
