use super::*;
use crate::backtest::replay::replay;

/// The repo's sample recording (60 s of the simulator, with fills) under stub settings.
fn traced(points: usize) -> (crate::backtest::replay::ReplayReport, Trace) {
    let data = include_bytes!("../../../data/sim-btcusd-seed7-60s.jsonl");
    let mut t = Trace::with_capacity(points);
    let r = replay(
        &crate::core::stubs::settings(),
        data,
        Some(&mut t),
        |_, _| {},
    )
    .unwrap();
    (r, t)
}

#[test]
fn merging_keeps_memory_bounded_and_every_pause_counted() {
    let (r, fine) = traced(POINTS);
    let (again, coarse) = traced(8);
    assert_eq!(r, again, "tracing changes nothing in the replay");
    assert!(coarse.len() <= 8);
    assert!(coarse.spacing() > fine.spacing());
    assert!(fine.len() >= 200, "a point every 250 ms: {}", fine.len());
    // Merged or not, the points' counts add up to the report's.
    for t in [&fine, &coarse] {
        let ticks: u64 = t.samples.iter().map(|s| s.ticks).sum();
        assert_eq!(ticks, r.ticks);
        for rule in Rule::ALL {
            let held: u64 = t.samples.iter().map(|s| s.held[rule as usize]).sum();
            assert_eq!(held, r.paused_by[rule.name()], "{}", rule.name());
        }
        // The last point is the end state, at the last input.
        let last = t.samples.last().unwrap();
        assert_eq!(last.at, fine.samples.last().unwrap().at);
    }
    assert_eq!(
        coarse.fills(),
        fine.fills(),
        "fills are kept whatever the spacing"
    );
}

#[test]
fn every_fill_and_round_trip_is_listed_once_in_order() {
    let (r, t) = traced(POINTS);
    assert!(r.fills >= 2);
    assert_eq!(t.fills().len() as u64, r.fills);
    assert!(t.fills().windows(2).all(|w| w[0].ts <= w[1].ts));
    assert_eq!(t.trips().len() as u64, r.round_trips);
    let gross: f64 = t.trips().iter().map(|x| x.gross.to_f64(9)).sum();
    assert!(
        (gross - r.realized_pnl).abs() < 1e-6,
        "{gross} vs {}",
        r.realized_pnl
    );
    for trip in t.trips() {
        assert!(trip.opened_at < trip.closed_at);
    }
    assert_eq!((t.fills_unlisted(), t.trips_unlisted()), (0, 0));
    let j = t.to_json();
    assert_eq!(j["fills"].as_array().unwrap().len() as u64, r.fills);
    assert_eq!(j["points"]["t"].as_array().unwrap().len(), t.len());
}

#[test]
fn drawdown_is_the_fall_from_the_peak_in_percent() {
    assert_eq!(drawdown_pct(Cash(990), Cash(1_000)), 1.0);
    assert_eq!(drawdown_pct(Cash(1_000), Cash(1_000)), 0.0);
    assert_eq!(drawdown_pct(Cash(5), Cash(0)), 0.0, "no peak, no drawdown");
    assert_eq!(signed_qty(-150_000, 8), -0.0015);
}
