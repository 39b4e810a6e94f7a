//! A blocking client for Kraken's private REST API (ureq over native-tls).
//!
//! Every call is a signed form POST to `/0/private/<Method>`; the answer's `error` array decides
//! success (HTTP status codes are unreliable at Kraken), and every failure is a
//! [`KrakenError`]. Nothing here panics on a response, and no error text contains the key or
//! the secret.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::errors::{KrakenError, envelope};
use super::sign::{CredentialsError, NonceSource, Secret, api_sign};

/// API credentials from the environment.
#[derive(Clone)]
pub struct Credentials {
    key: String,
    secret: Secret,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(<redacted>)")
    }
}

impl Credentials {
    /// From an API key and its base64 secret.
    ///
    /// # Errors
    /// An empty key or a secret that is not base64.
    pub fn new(key: &str, secret_b64: &str) -> Result<Credentials, CredentialsError> {
        if key.trim().is_empty() {
            return Err(CredentialsError::EmptyKey);
        }
        Ok(Credentials {
            key: key.trim().to_string(),
            secret: Secret::from_base64(secret_b64)?,
        })
    }

    /// `KRAKEN_API_KEY` / `KRAKEN_API_SECRET`; `Ok(None)` when neither is set.
    ///
    /// # Errors
    /// Only one is set, or the secret is not base64.
    pub fn from_env() -> Result<Option<Credentials>, CredentialsError> {
        match (
            std::env::var("KRAKEN_API_KEY").ok(),
            std::env::var("KRAKEN_API_SECRET").ok(),
        ) {
            (None, None) => Ok(None),
            (Some(k), Some(s)) => Credentials::new(&k, &s).map(Some),
            _ => Err(CredentialsError::OnlyOne),
        }
    }
}

/// One order as OpenOrders / QueryOrders describe it (numbers kept as Kraken's decimal text).
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct OrderInfo {
    /// `pending`, `open`, `closed`, `canceled`, `expired`.
    pub status: String,
    /// Our client order id, when we set one.
    #[serde(default)]
    pub cl_ord_id: Option<String>,
    /// Ordered volume (base).
    pub vol: String,
    /// Executed volume (base).
    pub vol_exec: String,
    /// Executed cost (quote).
    pub cost: String,
    /// Fee paid (quote).
    pub fee: String,
    /// Average executed price.
    pub price: String,
    /// Why it closed (e.g. `"Post only order"`, `"User requested"`).
    #[serde(default)]
    pub reason: Option<String>,
    /// Order description.
    pub descr: OrderDescr,
    /// Open time (Unix seconds).
    #[serde(default)]
    pub opentm: f64,
}

/// `descr` of an order.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct OrderDescr {
    /// Pair.
    pub pair: String,
    /// `buy` / `sell`.
    #[serde(rename = "type")]
    pub side: String,
    /// Limit price.
    pub price: String,
}

/// An AddOrder request: a limit order, post-only or IOC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOrder {
    /// Our id, sent as `cl_ord_id` so a retried request can never create a second order.
    pub cl_ord_id: String,
    /// `buy` / `sell`.
    pub side: &'static str,
    /// Volume as decimal text.
    pub volume: String,
    /// Limit price as decimal text.
    pub price: String,
    /// Maker only.
    pub post_only: bool,
    /// Immediate or cancel.
    pub ioc: bool,
}

/// The blocking client.
pub struct RestClient {
    agent: ureq::Agent,
    base: String,
    pair: String,
    creds: Credentials,
    nonce: NonceSource,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("base", &self.base)
            .field("pair", &self.pair)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct AddResult {
    #[serde(default)]
    txid: Vec<String>,
}

#[derive(Deserialize)]
struct CountResult {
    #[serde(default)]
    count: u32,
}

#[derive(Deserialize)]
struct OpenResult {
    open: BTreeMap<String, OrderInfo>,
}

#[derive(Deserialize)]
struct ClosedResult {
    closed: BTreeMap<String, OrderInfo>,
    #[serde(default)]
    count: u64,
}

/// ClosedOrders pages read at most when looking for one order (50 orders a page).
const CLOSED_PAGES_MAX: u64 = 20;

/// One pair of REST AssetPairs: the asset codes its balances are kept under.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AssetPair {
    /// REST name (`XBTUSD`).
    #[serde(default)]
    pub altname: String,
    /// WebSocket name (`XBT/USD`).
    #[serde(default)]
    pub wsname: String,
    /// Base asset code as Balance keys it (`XXBT`).
    pub base: String,
    /// Quote asset code (`ZUSD`).
    pub quote: String,
}

/// An asset code without Kraken's legacy prefix (`XXBT` → `XBT`, `ZUSD` → `USD`), with
/// `BTC` spelled `XBT` and `DOGE` spelled `XDG` as Kraken's REST does.
#[must_use]
pub fn normalise_asset(code: &str) -> String {
    let c = code.to_ascii_uppercase();
    let bare = if c.len() == 4 && (c.starts_with('X') || c.starts_with('Z')) {
        c[1..].to_string()
    } else {
        c
    };
    match bare.as_str() {
        "BTC" => "XBT".into(),
        "DOGE" => "XDG".into(),
        _ => bare,
    }
}

impl RestClient {
    /// A client for `base` (e.g. `https://api.kraken.com`) trading `pair` (e.g. `XBTUSD`).
    #[must_use]
    pub fn new(base: &str, pair: &str, creds: Credentials, timeout: Duration) -> RestClient {
        let tls = ureq::tls::TlsConfig::builder()
            .provider(ureq::tls::TlsProvider::NativeTls)
            .root_certs(ureq::tls::RootCerts::PlatformVerifier)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .tls_config(tls)
            .user_agent(concat!("wildbot/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        RestClient {
            agent,
            base: base.trim_end_matches('/').to_string(),
            pair: pair.to_string(),
            creds,
            nonce: NonceSource::default(),
        }
    }

    /// One signed private call; returns the `result` JSON text.
    ///
    /// # Errors
    /// Kraken's first error, typed; network failures and non-envelope bodies as
    /// [`KrakenError::Network`] / [`KrakenError::Unavailable`].
    pub fn private(
        &mut self,
        method: &str,
        params: &[(&str, &str)],
    ) -> Result<String, KrakenError> {
        let nonce = self.nonce.next_now().to_string();
        let mut body = format!("nonce={nonce}");
        for (k, v) in params {
            body.push('&');
            body.push_str(k);
            body.push('=');
            url_encode_into(v, &mut body);
        }
        let path = format!("/0/private/{method}");
        let sign = api_sign(&self.creds.secret, &path, &nonce, &body);
        let resp = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("API-Key", &self.creds.key)
            .header("API-Sign", &sign)
            .content_type("application/x-www-form-urlencoded")
            .send(&body);
        let mut resp = resp.map_err(|e| KrakenError::Network(network_text(&e)))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| KrakenError::Network(network_text(&e)))?;
        match envelope(&text) {
            Ok(result) => Ok(result.get().to_string()),
            Err(KrakenError::Network(_)) if status == 429 => {
                Err(KrakenError::RateLimit(format!("HTTP 429 from {method}")))
            }
            Err(KrakenError::Network(_)) if status >= 500 => Err(KrakenError::Unavailable(
                format!("HTTP {status} from {method}"),
            )),
            Err(e) => Err(e),
        }
    }

    fn parse<T: for<'de> Deserialize<'de>>(method: &str, text: &str) -> Result<T, KrakenError> {
        serde_json::from_str(text)
            .map_err(|e| KrakenError::Network(format!("{method}: unexpected result: {e}")))
    }

    /// Balances by asset code, as decimal text.
    ///
    /// # Errors
    /// See [`RestClient::private`].
    pub fn balance(&mut self) -> Result<BTreeMap<String, String>, KrakenError> {
        let t = self.private("Balance", &[])?;
        Self::parse("Balance", &t)
    }

    /// Places a limit order; returns Kraken's txid.
    ///
    /// # Errors
    /// See [`RestClient::private`].
    pub fn add_order(&mut self, o: &AddOrder) -> Result<String, KrakenError> {
        let pair = self.pair.clone();
        let mut p: Vec<(&str, &str)> = vec![
            ("ordertype", "limit"),
            ("type", o.side),
            ("volume", &o.volume),
            ("pair", &pair),
            ("price", &o.price),
            ("cl_ord_id", &o.cl_ord_id),
        ];
        if o.post_only {
            p.push(("oflags", "post"));
        }
        if o.ioc {
            p.push(("timeinforce", "IOC"));
        }
        let t = self.private("AddOrder", &p)?;
        let r: AddResult = Self::parse("AddOrder", &t)?;
        r.txid
            .into_iter()
            .next()
            .ok_or_else(|| KrakenError::Other("AddOrder returned no txid".into()))
    }

    /// Changes the price and size of a resting order in place.
    ///
    /// # Errors
    /// See [`RestClient::private`].
    pub fn amend_order(
        &mut self,
        cl_ord_id: &str,
        qty: &str,
        price: &str,
    ) -> Result<(), KrakenError> {
        self.private(
            "AmendOrder",
            &[
                ("cl_ord_id", cl_ord_id),
                ("order_qty", qty),
                ("limit_price", price),
                ("post_only", "true"),
            ],
        )
        .map(|_| ())
    }

    /// Cancels one order by our id; returns how many were cancelled.
    ///
    /// # Errors
    /// See [`RestClient::private`].
    pub fn cancel_order(&mut self, cl_ord_id: &str) -> Result<u32, KrakenError> {
        let t = self.private("CancelOrder", &[("cl_ord_id", cl_ord_id)])?;
        Ok(Self::parse::<CountResult>("CancelOrder", &t)?.count)
    }

    /// Cancels every open order of the account.
    ///
    /// # Errors
    /// See [`RestClient::private`].
    pub fn cancel_all(&mut self) -> Result<u32, KrakenError> {
        let t = self.private("CancelAll", &[])?;
        Ok(Self::parse::<CountResult>("CancelAll", &t)?.count)
    }

    /// A token for the authenticated WebSocket (valid 15 minutes until a subscription uses
    /// it). A key without the "WebSocket interface" permission gets no token: Kraken answers
    /// `EGeneral:Permission denied`, or no `result` at all.
    ///
    /// # Errors
    /// See [`RestClient::private`]; a result without a token is [`KrakenError::Auth`].
    pub fn websockets_token(&mut self) -> Result<String, KrakenError> {
        #[derive(Deserialize)]
        struct Token {
            token: String,
        }
        let t = self.private("GetWebSocketsToken", &[])?;
        serde_json::from_str::<Token>(&t)
            .map(|t| t.token)
            .map_err(|_| KrakenError::Auth("GetWebSocketsToken returned no token".into()))
    }

    /// Arms (or with 0 disarms) the dead man's switch.
    ///
    /// # Errors
    /// See [`RestClient::private`].
    pub fn cancel_all_orders_after(&mut self, timeout_s: u64) -> Result<(), KrakenError> {
        let t = timeout_s.to_string();
        self.private("CancelAllOrdersAfter", &[("timeout", &t)])
            .map(|_| ())
    }

    /// Open orders by txid.
    ///
    /// # Errors
    /// See [`RestClient::private`].
    pub fn open_orders(&mut self) -> Result<BTreeMap<String, OrderInfo>, KrakenError> {
        let t = self.private("OpenOrders", &[])?;
        Ok(Self::parse::<OpenResult>("OpenOrders", &t)?.open)
    }

    /// Orders closed (filled, cancelled, expired) that were opened after `start` (Unix
    /// seconds); Kraken returns the 50 most recent.
    ///
    /// # Errors
    /// See [`RestClient::private`].
    pub fn closed_orders(
        &mut self,
        start: f64,
    ) -> Result<BTreeMap<String, OrderInfo>, KrakenError> {
        self.find_closed(start, |_| false)
    }

    /// Orders closed since `start` (Unix seconds), paging through Kraken's 50-a-page answer
    /// (`ofs`) until every page since `start` is read or `found` holds for one of them.
    ///
    /// # Errors
    /// See [`RestClient::private`].
    pub fn find_closed(
        &mut self,
        start: f64,
        found: impl Fn(&OrderInfo) -> bool,
    ) -> Result<BTreeMap<String, OrderInfo>, KrakenError> {
        let start = format!("{start:.3}");
        let mut all = BTreeMap::new();
        for page in 0..CLOSED_PAGES_MAX {
            let ofs = (page * 50).to_string();
            let params = [
                ("start", start.as_str()),
                ("trades", "false"),
                ("ofs", &ofs),
            ];
            let t = self.private("ClosedOrders", &params)?;
            let r = Self::parse::<ClosedResult>("ClosedOrders", &t)?;
            let n = r.closed.len() as u64;
            let hit = r.closed.values().any(&found);
            all.extend(r.closed);
            if hit || n < 50 || (page + 1) * 50 >= r.count {
                break;
            }
        }
        Ok(all)
    }

    /// The configured pair as REST AssetPairs describes it (public, unsigned).
    ///
    /// # Errors
    /// `EQuery:Unknown asset pair` as [`KrakenError::InvalidArguments`]; network failures.
    pub fn asset_pair(&mut self) -> Result<AssetPair, KrakenError> {
        let url = format!("{}/0/public/AssetPairs?pair={}", self.base, self.pair);
        let mut resp = self
            .agent
            .get(url)
            .call()
            .map_err(|e| KrakenError::Network(network_text(&e)))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .read_to_string()
            .map_err(|e| KrakenError::Network(network_text(&e)))?;
        let result = match envelope(&text) {
            Ok(r) => r.get().to_string(),
            Err(KrakenError::Network(_)) if status >= 500 => {
                return Err(KrakenError::Unavailable(format!(
                    "HTTP {status} from AssetPairs"
                )));
            }
            Err(e) => return Err(e),
        };
        let pairs: BTreeMap<String, AssetPair> = Self::parse("AssetPairs", &result)?;
        pairs.into_values().next().ok_or_else(|| {
            KrakenError::InvalidArguments(format!("EQuery:Unknown asset pair {}", self.pair))
        })
    }

    /// The given orders (at most 50 txids per call, as Kraken allows).
    ///
    /// # Errors
    /// See [`RestClient::private`].
    pub fn query_orders(
        &mut self,
        txids: &[&str],
    ) -> Result<BTreeMap<String, OrderInfo>, KrakenError> {
        let mut out = BTreeMap::new();
        for chunk in txids.chunks(50) {
            let list = chunk.join(",");
            let t = self.private("QueryOrders", &[("txid", &list), ("trades", "false")])?;
            out.extend(Self::parse::<BTreeMap<String, OrderInfo>>(
                "QueryOrders",
                &t,
            )?);
        }
        Ok(out)
    }
}

/// A ureq error as text that cannot contain our headers (ureq errors do not echo requests).
fn network_text(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timeout ({t:?})"),
        other => other.to_string(),
    }
}

/// Percent-encodes a form value (everything but unreserved characters).
fn url_encode_into(v: &str, out: &mut String) {
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
}

/// Decodes a form body into pairs (for the simulator, and tests).
#[must_use]
pub fn form_decode(body: &str) -> Vec<(String, String)> {
    let dec = |s: &str| {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let h = std::str::from_utf8(&b[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match h {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    body.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (dec(k), dec(v)),
            None => (dec(p), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_round_trip() {
        let mut s = String::new();
        url_encode_into("a b&c=d/é,1.5", &mut s);
        assert_eq!(s, "a%20b%26c%3Dd%2F%C3%A9%2C1.5");
        let pairs = form_decode(&format!("nonce=1&x={s}&y=%"));
        assert_eq!(pairs[1], ("x".into(), "a b&c=d/é,1.5".into()));
        assert_eq!(pairs[2], ("y".into(), "%".into()));
    }

    #[test]
    fn credentials_never_show_and_need_both_parts() {
        let c = Credentials::new("my-key", "c2VjcmV0").unwrap();
        assert_eq!(format!("{c:?}"), "Credentials(<redacted>)");
        assert!(Credentials::new(" ", "c2VjcmV0").is_err());
    }

    #[test]
    fn recorded_order_responses_parse() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rest/");
        let open = std::fs::read_to_string(format!("{dir}nautilus_http_open_orders.json")).unwrap();
        let r: OpenResult =
            RestClient::parse("OpenOrders", envelope(&open).unwrap().get()).unwrap();
        let (txid, o) = r.open.iter().next().unwrap();
        assert!(txid.starts_with('O'));
        assert_eq!(o.status, "open");
        let q = std::fs::read_to_string(format!("{dir}krakennet_QueryOrders.json")).unwrap();
        let m: BTreeMap<String, OrderInfo> =
            RestClient::parse("QueryOrders", envelope(&q).unwrap().get()).unwrap();
        assert!(!m.is_empty());
        let a = std::fs::read_to_string(format!("{dir}krakennet_AddOrder.json")).unwrap();
        let r: AddResult = RestClient::parse("AddOrder", envelope(&a).unwrap().get()).unwrap();
        assert_eq!(r.txid.len(), 1);
    }
}
