#!/usr/bin/env python3
"""Writes the small Tardis.dev-format sample files in tests/data/tardis/ (ours, synthetic).

They follow Tardis's documented `incremental_book_L2` and `trades` CSV layouts for exchange
`kraken`: a BTC/USD random walk, 25 levels a side, an update every ~50 ms, trades through the
touch, a snapshot again in the middle of the file (a reconnect), rows before the first
snapshot, the pre-2026-07-10 symbol `XBT/USD`, and a few malformed rows. Seeded: the same
bytes every run.

    tools/make-tardis-sample.py tests/data/tardis
"""
import gzip
import random
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "tests/data/tardis")
out.mkdir(parents=True, exist_ok=True)
rng = random.Random(20260701)
SYMBOL = "XBT/USD"
T0 = 1_782_864_000_000_000  # 2026-07-01T00:00:00Z in µs
TICK = 1  # price units of 0.1 USD
mid = 600_000  # 60 000.0 USD in 0.1 units


def px(units):
    return f"{units // 10}.{units % 10}"


def amount():
    return f"{rng.uniform(0.001, 2.5):.8f}"


book_rows = ["exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"]
trade_rows = ["exchange,symbol,timestamp,local_timestamp,id,side,price,amount"]
t = T0
bids, asks = {}, {}


def row(ts, snap, side, price, qty):
    book_rows.append(f"kraken,{SYMBOL},{ts},{ts + 800},{'true' if snap else 'false'},{side},{px(price)},{qty}")


def snapshot(ts):
    bids.clear()
    asks.clear()
    for i in range(25):
        bids[mid - 1 - i * 3] = amount()
        asks[mid + 1 + i * 3] = amount()
    for p, q in sorted(bids.items(), reverse=True):
        row(ts, True, "bid", p, q)
    for p, q in sorted(asks.items()):
        row(ts, True, "ask", p, q)


# Updates before the first snapshot: skipped by the reader.
for k in range(3):
    row(t + k, False, "bid", mid - 5, amount())
t += 1000
snapshot(t)
trade_id = 1
for step in range(4000):
    t += rng.randint(20_000, 80_000)
    if step == 2000:
        snapshot(t)  # a reconnect: a new book mid-file
        continue
    mid += rng.randint(-25, 25)
    # Keep the book around the new mid: drop crossed levels, add near ones.
    for p in [p for p in bids if p >= mid]:
        del bids[p]
        row(t, False, "bid", p, "0")
    for p in [p for p in asks if p <= mid]:
        del asks[p]
        row(t, False, "ask", p, "0")
    for _ in range(rng.randint(1, 4)):
        side = rng.choice(["bid", "ask"])
        off = rng.randint(1, 40)
        p = mid - off if side == "bid" else mid + off
        q = "0" if rng.random() < 0.3 else amount()
        book = bids if side == "bid" else asks
        if q == "0":
            if p in book:
                del book[p]
                row(t, False, side, p, q)
        else:
            book[p] = q
            row(t, False, side, p, q)
    if rng.random() < 0.25:
        buy = rng.random() < 0.5
        p = mid + rng.randint(0, 60) if buy else mid - rng.randint(0, 60)
        trade_rows.append(
            f"kraken,{SYMBOL},{t},{t + 800},{trade_id},{'buy' if buy else 'sell'},{px(p)},{rng.uniform(0.0005, 0.3):.8f}"
        )
        trade_id += 1
# Malformed rows, as a damaged download might have them.
book_rows.insert(400, f"kraken,{SYMBOL},{T0},{T0},false,bid,60000.0")
book_rows.insert(900, f"kraken,{SYMBOL},oops,{T0},false,bid,60000.0,1")
book_rows.insert(1500, f"kraken,{SYMBOL},{T0},{T0 + 9},false,middle,60000.0,1")
text = "\n".join(book_rows) + "\n"
with gzip.GzipFile(out / "kraken_incremental_book_L2_2026-07-01_XBT-USD.csv.gz", "wb", mtime=0) as f:
    f.write(text.encode())
with gzip.GzipFile(out / "kraken_trades_2026-07-01_XBT-USD.csv.gz", "wb", mtime=0) as f:
    f.write(("\n".join(trade_rows) + "\n").encode())
print(f"{len(book_rows) - 1} book rows, {len(trade_rows) - 1} trades")
