//! The fuzz targets' invariants (`wildbot::devtools::fuzzing`, also run coverage-guided by cargo-fuzz
//! in `fuzz/`) over random inputs on every `cargo test`: never a panic; the book stays sorted,
//! within depth and uncrossed when valid; an exchange-consistent sequence always matches its
//! checksums and equals the exchange's view; a config that loads is valid.

use proptest::prelude::*;
use wildbot::app::config::check_arbitrary_text;
use wildbot::devtools::fuzzing;

/// Lines that look like Kraken frames, mutated: the shape the parser mostly sees.
fn frame_like() -> impl Strategy<Value = Vec<u8>> {
    let seeds = [
        r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":60000.1,"qty":0.5}],"asks":[],"checksum":1,"timestamp":"2026-01-01T00:00:00.000001Z"}]}"#,
        r#"{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":59999.9,"qty":1.00000000}],"asks":[{"price":60000.5,"qty":2.0}],"checksum":3310070434}]}"#,
        r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":60000.5,"qty":0.01,"ord_type":"market","trade_id":1,"timestamp":"2026-01-01T00:00:00Z"}]}"#,
        r#"{"channel":"status","type":"update","data":[{"system":"online","api_version":"v2","connection_id":12345678901234567890,"version":"2.0.0"}]}"#,
        r#"{"method":"subscribe","result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"x","time_out":"y"}"#,
        r#"{"channel":"heartbeat"}"#,
    ];
    (
        prop::sample::select(seeds.to_vec()),
        prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 0..6),
    )
        .prop_map(|(seed, edits)| {
            let mut b = seed.as_bytes().to_vec();
            for (at, byte, how) in edits {
                let i = at % (b.len() + 1);
                match how {
                    0 => b.insert(i, byte),
                    1 if i < b.len() => b[i] = byte,
                    _ => b.truncate(i),
                }
            }
            b
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_through_the_core(data in prop::collection::vec(any::<u8>(), 0..600)) {
        fuzzing::frames(&data);
    }

    #[test]
    fn mutated_frames_through_the_core(lines in prop::collection::vec(frame_like(), 1..20)) {
        fuzzing::frames(&lines.join(&b'\n'));
    }

    #[test]
    fn arbitrary_book_sequences_keep_the_book_well_formed(
        data in prop::collection::vec(any::<u8>(), 0..4000)) {
        let _ = fuzzing::book_ops(&data);
    }

    #[test]
    fn exchange_consistent_sequences_always_match(
        data in prop::collection::vec(any::<u8>(), 0..6000)) {
        let _ = fuzzing::consistent_book(&data);
    }

    #[test]
    fn config_text_never_panics(text in r#"([a-z_]{1,22} = ("[a-z0-9:./]{0,12}"|-?[0-9]{1,6}(\.[0-9]{1,9})?|true|false)\n){0,6}"#,
                                raw in prop::collection::vec(any::<u8>(), 0..200)) {
        check_arbitrary_text(text.as_bytes());
        check_arbitrary_text(&raw);
    }
}

/// Every known key with a random value: the loader names the key or accepts a valid config.
#[test]
fn every_key_with_odd_values() {
    let defaults =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/wildbot.toml"))
            .expect("config/wildbot.toml");
    let keys: Vec<&str> = defaults
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
        .filter(|k| !k.starts_with('#'))
        .collect();
    assert!(keys.len() > 20, "{keys:?}");
    for key in keys {
        for value in [
            "0",
            "-1",
            "1e400",
            "\"\"",
            "\"x\"",
            "99999999999999999999",
            "0.000000001",
            "[]",
            "true",
        ] {
            let text = format!("{key} = {value}\n");
            check_arbitrary_text(text.as_bytes());
            if let Err(e) = wildbot::app::config::Config::from_toml_str(&text, &[]) {
                let msg = e.to_string();
                assert!(
                    msg.contains(key) || msg.contains("TOML"),
                    "{key} = {value}: {msg}"
                );
            }
        }
    }
}
