//! Start-up after a long run: 30 simulated days of journal records (about 270 000 lines a
//! day, Kraken's busiest rate for this bot: ~40 MB a day uncompacted) go through the journal
//! thread with compaction, then the journal is loaded and restored as `wildbot run` does at
//! start. Prints the file size and the time to load + restore.
//!
//! `cargo bench --bench journal_restore` (`JOURNAL_DAYS=N` for another span).

use std::time::Instant;

use wildbot::core::event::{JournalEntry, JournalKind, OrderEvent, OrderRequest, Purpose, Side};
use wildbot::core::money::{Cash, Precision, Price, Qty};
use wildbot::core::{Core, Settings};
use wildbot::side::journal::{self, Compaction, Journal, Loaded, Record};

const LINES_PER_DAY: u64 = 270_000;
const P: Precision = Precision { price: 1, qty: 8 };

fn order(t: i64, id: u64, side: Side, price: i64) -> [Record; 4] {
    let core = |t, kind| Record::Core(JournalEntry { t, kind });
    let req = OrderRequest {
        cl_id: id,
        side,
        price: Price(price),
        qty: Qty(100_000),
        post_only: true,
        ioc: false,
        purpose: Purpose::Entry,
    };
    let cost = Cash::notional(req.price, req.qty);
    [
        core(t, JournalKind::Placed(req)),
        core(t, JournalKind::Order(OrderEvent::Accepted { cl_id: id })),
        core(
            t + 1,
            JournalKind::Order(OrderEvent::Fill {
                cl_id: id,
                cum_qty: req.qty,
                cum_cost: cost,
                cum_fee: Cash(cost.0 * 16 / 10_000),
            }),
        ),
        Record::Txid {
            t: t + 1,
            cl_id: id,
            txid: format!("O{id:06}-AAAAA-BBBBBB"),
            kraken_cl: format!("wb{id:x}"),
        },
    ]
}

fn main() {
    let days: u64 = std::env::var("JOURNAL_DAYS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(30);
    let path = std::env::temp_dir().join(format!(
        "wildbot-bench-journal-{}.jsonl",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    let settings = Settings::default();
    let every = 50_000; // journal_snapshot_every's default
    let mirror = Core::new(&settings, 1).expect("settings");
    let c = Compaction::new(mirror, &Loaded::default(), false, every);
    let j = Journal::start(&path, P, None, Some(c)).expect("journal");
    let tx = j.sender();
    let total = days * LINES_PER_DAY;
    let t0 = Instant::now();
    let mut id = 1;
    let mut n = 0;
    let day_ns = 86_400_000_000_000 / (LINES_PER_DAY as i64 / 8);
    while n < total {
        let t = n as i64 / 8 * day_ns;
        for (side, price) in [(Side::Buy, 600_000), (Side::Sell, 600_100)] {
            for r in order(t, id, side, price) {
                tx.send(r);
                n += 1;
            }
            id += 1;
            // Never outrun the journal thread (the bot sends a few records a second).
            while tx.pending() > journal::CAPACITY / 2 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
    }
    drop(tx);
    let stats = j.finish();
    let wrote = t0.elapsed();
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let t1 = Instant::now();
    let loaded = journal::load(&path, P).expect("load");
    let mut core = Core::new(&settings, 1).expect("settings");
    core.restore(loaded.snapshot.as_ref(), &loaded.entries);
    let restore = t1.elapsed();
    println!(
        "journal: {days} simulated days, {total} records ({} dropped) written in {:.1} s with {} \
         compactions; at start-up the file holds {} lines, {:.1} kB; load + restore {:.1} ms; \
         restored {} round trips (expected {})",
        stats.dropped.load(std::sync::atomic::Ordering::Relaxed),
        wrote.as_secs_f64(),
        stats.compactions.load(std::sync::atomic::Ordering::Relaxed),
        loaded.lines,
        size as f64 / 1e3,
        restore.as_secs_f64() * 1e3,
        core.account().round_trips,
        id / 2,
    );
    let _ = std::fs::remove_file(&path);
}
