//! Our client order ids as Kraken sees them (`cl_ord_id`): `wb` + the id in hex, at most 18
//! ASCII characters, Kraken's limit for free text. An amended order keeps the id it was
//! placed with, so the id in a report names the order's first owner.

use crate::core::event::ClientId;

/// What every one of our `cl_ord_id`s starts with (the id follows in lowercase hex).
pub const CL_PREFIX: &str = "wb";

/// The `cl_ord_id` of client id `cl_id`.
#[must_use]
pub fn kraken_cl(cl_id: ClientId) -> String {
    format!("{CL_PREFIX}{cl_id:x}")
}

/// The client id in one of our `cl_ord_id`s, `None` for anyone else's.
#[must_use]
pub fn origin_of(cl_ord_id: &[u8]) -> Option<ClientId> {
    let hex = cl_ord_id.strip_prefix(CL_PREFIX.as_bytes())?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    let mut v: u64 = 0;
    for &b in hex {
        let d = (b as char).to_digit(16)?;
        v = (v << 4) | u64::from(d);
    }
    (v != 0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_within_krakens_limit() {
        for id in [1, 0xff, u64::MAX] {
            let cl = kraken_cl(id);
            assert!(cl.len() <= 18, "{cl}");
            assert_eq!(origin_of(cl.as_bytes()), Some(id));
        }
        assert_eq!(origin_of(b"wb"), None);
        assert_eq!(origin_of(b"arb-20240509-00010"), None);
        assert_eq!(origin_of(b"wb00000000000000001"), None, "17 digits");
        assert_eq!(origin_of(b"wbxyz"), None);
    }
}
