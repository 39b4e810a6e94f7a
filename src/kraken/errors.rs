//! Kraken's `error` array, typed. Every response is `{"error":[...],"result":{...}}`; an empty
//! array means success, and strings are shaped `E<Category>:<Message>` (warnings start with
//! `W` and are not failures). HTTP status codes are unreliable (errors usually come with 200),
//! so the array decides.

use serde::Deserialize;
use serde_json::value::RawValue;

/// One Kraken API error, classified for what the worker and the core must do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KrakenError {
    /// `EAPI:Invalid nonce`: our nonce went backwards (another client on the key?).
    #[error("invalid nonce")]
    InvalidNonce,
    /// `EAPI:Invalid key`, `EAPI:Invalid signature`, `EGeneral:Permission denied`.
    #[error("authentication refused: {0}")]
    Auth(String),
    /// `EAPI:Rate limit exceeded`, `EOrder:Rate limit exceeded`, `EOrder:Domain rate limit
    /// exceeded`, `EGeneral:Temporary lockout`, `EService:Throttled`: always back off.
    #[error("rate limited: {0}")]
    RateLimit(String),
    /// `EOrder:Insufficient funds`.
    #[error("insufficient funds")]
    InsufficientFunds,
    /// A post-only order that would have crossed.
    #[error("post-only order rejected")]
    PostOnly,
    /// `EGeneral:Invalid arguments`, order minimum, cost minimum, tick size, invalid price,
    /// unknown pair.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// `EOrder:Unknown order` (cancel of an order that is already gone).
    #[error("unknown order")]
    UnknownOrder,
    /// `EService:Unavailable`, `EService:Busy`, cancel-only / post-only market modes,
    /// `EGeneral:Internal error`, `EService:Deadline elapsed`.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// No answer: DNS, connect, TLS, timeout, or a body that is not Kraken's envelope.
    #[error("network: {0}")]
    Network(String),
    /// Anything else Kraken says.
    #[error("kraken: {0}")]
    Other(String),
}

impl KrakenError {
    /// Classifies one error string.
    #[must_use]
    pub fn from_kraken(s: &str) -> KrakenError {
        let t = s.to_string();
        match s {
            "EAPI:Invalid nonce" => KrakenError::InvalidNonce,
            "EOrder:Insufficient funds" => KrakenError::InsufficientFunds,
            "EOrder:Unknown order" => KrakenError::UnknownOrder,
            _ if s.starts_with("EAPI:Invalid key")
                || s.starts_with("EAPI:Invalid signature")
                || s.starts_with("EGeneral:Permission denied") =>
            {
                KrakenError::Auth(t)
            }
            _ if s.contains("Rate limit exceeded")
                || s.starts_with("EGeneral:Temporary lockout")
                || s.starts_with("EService:Throttled") =>
            {
                KrakenError::RateLimit(t)
            }
            _ if s.contains("Post only") => KrakenError::PostOnly,
            _ if s.starts_with("EGeneral:Invalid arguments")
                || s.starts_with("EOrder:Order minimum not met")
                || s.starts_with("EOrder:Cost minimum not met")
                || s.starts_with("EOrder:Tick size check failed")
                || s.starts_with("EOrder:Invalid price")
                || s.starts_with("EQuery:Unknown asset pair") =>
            {
                KrakenError::InvalidArguments(t)
            }
            _ if s.starts_with("EService:") || s.starts_with("EGeneral:Internal error") => {
                KrakenError::Unavailable(t)
            }
            _ => KrakenError::Other(t),
        }
    }

    /// Whether the worker must back off before its next call.
    #[must_use]
    pub fn needs_backoff(&self) -> bool {
        !matches!(
            self,
            KrakenError::InsufficientFunds
                | KrakenError::PostOnly
                | KrakenError::InvalidArguments(_)
                | KrakenError::UnknownOrder
        )
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default)]
    error: Vec<String>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
}

/// Splits a response body into its `result` or its first error (warnings are ignored).
///
/// # Errors
/// The first `E…` error, or [`KrakenError::Network`] when the body is not Kraken's envelope.
pub fn envelope(body: &str) -> Result<&RawValue, KrakenError> {
    let env: Envelope<'_> = serde_json::from_str(body)
        .map_err(|e| KrakenError::Network(format!("response is not Kraken's envelope: {e}")))?;
    if let Some(e) = env.error.iter().find(|e| !e.starts_with('W')) {
        return Err(KrakenError::from_kraken(e));
    }
    env.result
        .ok_or_else(|| KrakenError::Network("response has neither error nor result".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_error_strings_are_typed() {
        use KrakenError as K;
        let cases = [
            ("EAPI:Invalid nonce", K::InvalidNonce),
            ("EOrder:Insufficient funds", K::InsufficientFunds),
            ("EOrder:Unknown order", K::UnknownOrder),
            ("EAPI:Invalid key", K::Auth("EAPI:Invalid key".into())),
            (
                "EAPI:Rate limit exceeded",
                K::RateLimit("EAPI:Rate limit exceeded".into()),
            ),
            (
                "EOrder:Rate limit exceeded",
                K::RateLimit("EOrder:Rate limit exceeded".into()),
            ),
            (
                "EService:Throttled: 1700000000",
                K::RateLimit("EService:Throttled: 1700000000".into()),
            ),
            (
                "EOrder:Cost minimum not met",
                K::InvalidArguments("EOrder:Cost minimum not met".into()),
            ),
            (
                "EService:Unavailable",
                K::Unavailable("EService:Unavailable".into()),
            ),
            (
                "EService:Market in cancel_only mode",
                K::Unavailable("EService:Market in cancel_only mode".into()),
            ),
            (
                "EFuture:Something new",
                K::Other("EFuture:Something new".into()),
            ),
        ];
        for (s, want) in cases {
            assert_eq!(KrakenError::from_kraken(s), want, "{s}");
        }
        assert!(KrakenError::InvalidNonce.needs_backoff());
        assert!(KrakenError::RateLimit(String::new()).needs_backoff());
        assert!(!KrakenError::InsufficientFunds.needs_backoff());
    }

    #[test]
    fn envelopes_split_into_result_or_typed_error() {
        let ok = envelope(r#"{"error":[],"result":{"count":1}}"#).unwrap();
        assert_eq!(ok.get(), r#"{"count":1}"#);
        let warned = envelope(r#"{"error":["WGeneral:Something"],"result":{"count":2}}"#);
        assert_eq!(warned.unwrap().get(), r#"{"count":2}"#);
        assert_eq!(
            envelope(r#"{"error":["EAPI:Invalid nonce"],"result":{}}"#).unwrap_err(),
            KrakenError::InvalidNonce
        );
        assert!(matches!(
            envelope("<html>502</html>"),
            Err(KrakenError::Network(_))
        ));
        assert!(matches!(
            envelope(r#"{"error":[]}"#),
            Err(KrakenError::Network(_))
        ));
    }

    /// The recorded REST responses in tests/data/rest are Kraken envelopes with results.
    #[test]
    fn recorded_responses_have_results() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rest");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            // Some files wrap the response with provenance; find the envelope.
            let body = if v.get("error").is_some() {
                text.clone()
            } else if let Some(r) = v.get("response") {
                r.to_string()
            } else {
                continue;
            };
            envelope(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
        assert!(n >= 1);
    }
}
