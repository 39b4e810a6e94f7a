//! Parser tests on real Kraken frames (from ../shared/kraken-facts.md and the recorded vectors).

use super::*;
use crate::core::event::Side;

fn btc() -> Parser {
    Parser::new("BTC/USD", 1, 8)
}

#[test]
fn book_snapshot_with_number_text_kept_exact() {
    let mut p = btc();
    let f = br#"{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":81011.5,"qty":0.00123440}],"asks":[{"price":81015.4,"qty":0.5}],"checksum":2348297322,"timestamp":"2026-05-14T15:06:08.234374Z"}]}"#;
    let Message::Book(h) = p.parse(f).unwrap() else {
        panic!("not a book message")
    };
    assert!(h.snapshot);
    assert_eq!(h.checksum, Some(2_348_297_322));
    assert!(h.exchange_ts.is_some());
    assert_eq!(
        p.bids(),
        &[RawLevel {
            price: Price(810_115),
            qty: Qty(123_440),
            price_dec: 1,
            qty_dec: 8
        }]
    );
    assert_eq!(p.asks()[0].qty, Qty(50_000_000));
    assert_eq!(p.asks()[0].qty_dec, 1);
}

#[test]
fn book_update_any_key_order_and_string_numbers() {
    let mut p = btc();
    let f = br#"{"data":[{"checksum":1,"asks":[],"bids":[{"qty":"0.00000000","price":"45283.5"}],"symbol":"BTC/USD"}],"type":"update","channel":"book"}"#;
    let Message::Book(h) = p.parse(f).unwrap() else {
        panic!()
    };
    assert!(!h.snapshot);
    assert_eq!(p.bids()[0].qty, Qty(0));
    assert!(p.asks().is_empty());
}

#[test]
fn other_symbols_are_skipped() {
    let mut p = btc();
    let f = br#"{"channel":"book","type":"update","data":[{"symbol":"ETH/USD","bids":[{"price":1.0,"qty":1.0}],"asks":[],"checksum":5}]}"#;
    assert_eq!(p.parse(f).unwrap(), Message::Ignored);
    assert!(p.bids().is_empty());
    let f = br#"{"channel":"trade","type":"update","data":[{"symbol":"ETH/USD","side":"buy","price":1.0,"qty":1.0,"ord_type":"limit","trade_id":1,"timestamp":"2024-07-27T21:16:00.512060Z"}]}"#;
    assert_eq!(p.parse(f).unwrap(), Message::Trades(false));
    assert!(p.trades().is_empty());
}

#[test]
fn trade_update() {
    let mut p = btc();
    let f = br#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"buy","price":68580.0,"qty":0.14225864,"ord_type":"limit","trade_id":72166031,"timestamp":"2024-07-27T21:16:00.512060Z"}]}"#;
    assert_eq!(p.parse(f).unwrap(), Message::Trades(false));
    let t = p.trades()[0];
    assert_eq!(
        (t.side, t.price, t.qty, t.trade_id),
        (Side::Buy, Price(685_800), Qty(14_225_864), 72_166_031)
    );
}

#[test]
fn status_connection_id_beyond_2_pow_53() {
    let mut p = btc();
    let f = br#"{"channel":"status","type":"update","data":[{"version":"2.0.10","system":"online","api_version":"v2","connection_id":16389994220698793191}]}"#;
    assert_eq!(
        p.parse(f).unwrap(),
        Message::Status {
            system: SystemState::Online,
            connection_id: Some(16_389_994_220_698_793_191)
        }
    );
}

#[test]
fn heartbeat_pong_acks_and_errors() {
    let mut p = btc();
    assert_eq!(
        p.parse(br#"{"channel":"heartbeat"}"#).unwrap(),
        Message::Heartbeat
    );
    assert_eq!(
        p.parse(br#"{"method":"pong","req_id":1,"time_in":"2024-05-20T11:08:49.272922Z","time_out":"2024-05-20T11:08:49.272940Z"}"#).unwrap(),
        Message::Pong { req_id: Some(1) }
    );
    assert_eq!(
        p.parse(br#"{"method":"subscribe","req_id":1,"result":{"channel":"book","depth":10,"snapshot":true,"symbol":"BTC/USD"},"success":true,"time_in":"2026-05-14T15:06:07.846137Z","time_out":"2026-05-14T15:06:07.846205Z"}"#).unwrap(),
        Message::Subscribed(Ack { channel: Channel::Book, depth: Some(10), req_id: Some(1) })
    );
    assert_eq!(
        p.parse(br#"{"method":"unsubscribe","result":{"channel":"book","depth":25,"symbol":"BTC/USD"},"success":true}"#).unwrap(),
        Message::Unsubscribed(Ack { channel: Channel::Book, depth: Some(25), req_id: None })
    );
    assert_eq!(
        p.parse(br#"{"error":"Currency pair not supported XBT/USD","method":"subscribe","req_id":999,"success":false,"symbol":"XBT/USD","time_in":"x","time_out":"y"}"#).unwrap(),
        Message::MethodError { method: b"subscribe", req_id: Some(999), error: b"Currency pair not supported XBT/USD" }
    );
}

#[test]
fn instrument_snapshot_finds_our_pair() {
    let mut p = btc();
    let f = br#"{"channel":"instrument","type":"snapshot","data":{"assets":[{"id":"BTC"}],"pairs":[{"symbol":"ETH/USD","price_precision":2,"qty_precision":5},{"symbol":"BTC/USD","base":"BTC","quote":"USD","status":"online","qty_precision":8,"qty_increment":0.00000001,"price_precision":1,"cost_precision":5,"cost_min":0.5,"tick_size":0.1,"price_increment":0.1,"qty_min":0.0001}]}}"#;
    let Message::Instrument(Some(i)) = p.parse(f).unwrap() else {
        panic!()
    };
    assert_eq!(
        (i.price_precision, i.qty_precision, i.status),
        (1, 8, PairStatus::Online)
    );
    assert_eq!(i.qty_min.unwrap().to_units(8), Ok(10_000));
    assert_eq!(i.price_increment.unwrap().to_units(1), Ok(1));
    // GST/USD style exponent notation.
    let mut g = Parser::new("GST/USD", 3, 8);
    let f = br#"{"channel":"instrument","type":"snapshot","data":{"pairs":[{"symbol":"GST/USD","price_precision":3,"price_increment":0.001,"qty_precision":8,"qty_increment":1E-8,"qty_min":200.0,"cost_min":0.5,"cost_precision":5}]}}"#;
    let Message::Instrument(Some(i)) = g.parse(f).unwrap() else {
        panic!()
    };
    assert_eq!(i.qty_increment.unwrap().to_units(8), Ok(1));
}

#[test]
fn malformed_frames_are_typed_errors() {
    let mut p = btc();
    let cases: &[(&[u8], ParseError)] = &[
        (br#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1.0"#, ParseError::Json(JsonError::Eof(82))),
        (br#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":"abc","qty":1}]}]}"#,
            ParseError::Number { field: Field::Price, err: NumError::Syntax }),
        (br#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1.05,"qty":1}]}]}"#,
            ParseError::Number { field: Field::Price, err: NumError::TooPrecise }),
        (br#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1.0,"qty":-1}]}]}"#,
            ParseError::Number { field: Field::Qty, err: NumError::Negative }),
        (br#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1e400,"qty":1}]}]}"#,
            ParseError::Number { field: Field::Price, err: NumError::Overflow }),
        (br#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"qty":1}]}]}"#, ParseError::Missing(Field::Price)),
        (br#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1.0,"price":2.0,"qty":1}]}]}"#,
            ParseError::Duplicate(Field::Price)),
        (br#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[],"checksum":99999999999}]}"#,
            ParseError::BadValue(Field::Checksum)),
        (br#"{"channel":"book","type":"weird","data":[]}"#, ParseError::BadValue(Field::Type)),
        (br#"{"channel":"book","type":"update","data":{}}"#, ParseError::BadValue(Field::Data)),
        (br#"{"channel":"book","type":"update","data":[],"data":[]}"#, ParseError::Duplicate(Field::Data)),
        (br#"{"channel":"book","type":"update"}"#, ParseError::Missing(Field::Data)),
        (br#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD"}],"x":1} junk"#, ParseError::Json(JsonError::Trailing(71))),
        (br#"{"foo":1}"#, ParseError::Missing(Field::Channel)),
        (br#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":0,"qty":1}]}]}"#, ParseError::BadValue(Field::Price)),
        (br#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"up","price":1.0,"qty":1}]}"#, ParseError::BadValue(Field::Side)),
    ];
    for (frame, want) in cases {
        assert_eq!(
            p.parse(frame),
            Err(*want),
            "{}",
            String::from_utf8_lossy(frame)
        );
        assert!(
            p.bids().is_empty() && p.asks().is_empty(),
            "buffers cleared after an error"
        );
    }
    // Hostile inputs: never panic.
    for frame in [
        &b""[..],
        b"\xff\xfe",
        b"[]",
        b"null",
        b"{",
        b"{\"channel\":\"\xff\"}",
    ] {
        assert!(p.parse(frame).is_err() || p.parse(frame) == Ok(Message::Ignored));
    }
    let deep = format!(
        r#"{{"channel":"book","type":"update","data":[{{"symbol":"BTC/USD","x":{}{}}}]}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(matches!(
        p.parse(deep.as_bytes()),
        Err(ParseError::Json(JsonError::TooDeep(_)))
    ));
}

#[test]
fn too_many_levels_is_an_error_not_a_reallocation() {
    let mut p = btc();
    let mut f =
        String::from(r#"{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":["#);
    for i in 0..(MAX_LEVELS_PER_MSG + 1) {
        if i > 0 {
            f.push(',');
        }
        f.push_str(&format!(r#"{{"price":{}.0,"qty":1.0}}"#, i + 1));
    }
    f.push_str(r#"],"asks":[]}]}"#);
    assert_eq!(p.parse(f.as_bytes()), Err(ParseError::TooMany));
}

/// Every frame of every recorded vector, the synthetic stream, and damaged copies of them:
/// the book fast path and the general parser give the same message, levels and errors.
#[test]
fn fast_path_agrees_with_the_general_parser() {
    let mut frames: Vec<Vec<u8>> = crate::core::stubs::recorded_frames();
    for (_, f) in crate::core::stubs::frames(3_000, 5) {
        frames.push(f.into_bytes());
    }
    // Damage: a byte changed, the tail cut, whitespace added, keys reordered.
    let originals = frames.len();
    for i in 0..originals {
        let f = frames[i].clone();
        for at in [1, 12, 27, 45, f.len() / 2, f.len().saturating_sub(3)] {
            if at < f.len() {
                for b in [b'x', b'"', b'0', b' ', b'}'] {
                    let mut g = f.clone();
                    g[at] = b;
                    frames.push(g);
                }
                frames.push(f[..at].to_vec());
            }
        }
        // Numbers in shapes the plain-number path leaves to the general one.
        let text = String::from_utf8_lossy(&f).into_owned();
        for (from, to) in [
            (r#""qty":0."#, r#""qty":0e0+0."#),
            (r#""qty":1."#, r#""qty":1.0e0"#),
            (r#","qty":"#, r#","qty":000000000"#),
            (r#""price":"#, r#""price":100000000"#),
            (r#""price":"#, r#""price":-"#),
            (r#"},{"#, r#"e1},{"#),
            (".", ".0000000000"),
        ] {
            frames.push(text.replacen(from, to, 1).into_bytes());
        }
        frames.push(
            String::from_utf8_lossy(&f)
                .replacen(r#""type":"update","#, "", 1)
                .replacen(
                    r#""channel":"book","#,
                    r#""channel":"book","type":"update","#,
                    1,
                )
                .into_bytes(),
        );
    }
    let mut fast = btc();
    let mut general = btc();
    general.fast_path = false;
    let mut fast_hits = 0;
    for f in &frames {
        let a = fast.parse(f);
        let b = general.parse(f);
        assert_eq!(a, b, "{}", String::from_utf8_lossy(f));
        assert_eq!(fast.bids(), general.bids());
        assert_eq!(fast.asks(), general.asks());
        assert_eq!(fast.trades(), general.trades());
        if matches!(a, Ok(Message::Book(_))) && fast.book_fast(f).is_some() {
            fast_hits += 1;
        }
    }
    assert!(fast_hits > 2_000, "the fast path is taken: {fast_hits}");
}
