//! `kraken-sim`: the Kraken WS v2 simulator as a stand-alone server.
//!
//! `kraken-sim --port 8790` serves `ws://127.0.0.1:8790/v2`; `--tls` serves `wss://` with a
//! certificate generated at start-up, written to `--cert-out` for clients to trust
//! (`ws_ca_file` in WildBot's config). It also serves Kraken's private REST API on another
//! loopback port, accepting the public demo key pair it prints. Runs until Ctrl-C.
//!
//! `kraken-sim record --seconds N --seed S > file` writes N seconds of the simulated market,
//! in simulated time (instantly), in WildBot's recorder format: data for replay, sweeps,
//! tests and benches without a network.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use wildbot::app::output::outln;
use wildbot::sim::{SimConfig, SimTls, Simulator};

#[derive(Parser)]
#[command(
    name = "kraken-sim",
    version,
    about = "Offline Kraken WebSocket v2 simulator"
)]
#[command(args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8790)]
    port: u16,
    /// Address to bind instead of 127.0.0.1.
    #[arg(long, default_value = "127.0.0.1")]
    bind: String,
    /// Market seed (connection n uses seed + n).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Milliseconds between market steps.
    #[arg(long, default_value_t = 2)]
    step_ms: u64,
    /// Volatility multiplier (1 = the bench market).
    #[arg(long, default_value_t = 1.0)]
    volatility: f64,
    /// Serve wss:// with a freshly generated self-signed certificate.
    #[arg(long)]
    tls: bool,
    /// Where to write that certificate (PEM).
    #[arg(long, default_value = "kraken-sim-ca.pem")]
    cert_out: String,
    /// Starting USD balance of the simulated account.
    #[arg(long, visible_alias = "quote", default_value = "10000")]
    usd: String,
    /// Starting BTC balance of the simulated account (e.g. `--base 0.5`: a holding the bot
    /// must never sell).
    #[arg(long, visible_alias = "base", default_value = "0")]
    btc: String,
}

#[derive(clap::Subcommand)]
enum Cmd {
    /// Write simulated market data to stdout in WildBot's recorder format.
    Record {
        /// Simulated seconds to write.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
        /// Market seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Mean milliseconds between market steps.
        #[arg(long, default_value_t = 10)]
        step_ms: u64,
        /// Volatility multiplier.
        #[arg(long, default_value_t = 1.0)]
        volatility: f64,
    },
}

/// Writes `seconds` of the seeded market, a book snapshot first, one recorder line per frame.
fn record(seconds: u64, seed: u64, step_ms: u64, volatility: f64) -> std::io::Result<u64> {
    use std::io::Write;
    let mut m = wildbot::sim::synth::SynthMarket::new(wildbot::sim::synth::SynthConfig {
        seed,
        volatility,
        mean_step_ns: step_ms.max(1) as i64 * 1_000_000,
        // As the simulator serves it: occasional sweeps through the book.
        sweep_probability: 0.01,
        ..wildbot::sim::synth::SynthConfig::default()
    });
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let start = m.now();
    let end = start + seconds as i64 * 1_000_000_000;
    let snapshot = m.snapshot_frame();
    writeln!(out, r#"{{"rx_ns":{start},"frame":{snapshot}}}"#)?;
    let mut n = 1;
    loop {
        let (t, frame) = m.next_frame();
        if t > end {
            break;
        }
        writeln!(out, r#"{{"rx_ns":{t},"frame":{frame}}}"#)?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

fn main() -> std::process::ExitCode {
    let a = Args::parse();
    if let Some(Cmd::Record {
        seconds,
        seed,
        step_ms,
        volatility,
    }) = a.command
    {
        return match record(seconds, seed, step_ms, volatility) {
            Ok(n) => {
                eprintln!("kraken-sim record: {n} frames, {seconds} s of market, seed {seed}");
                std::process::ExitCode::SUCCESS
            }
            // `kraken-sim record | head`: the reader chose to stop; nothing went wrong.
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                std::process::ExitCode::from(1)
            }
        };
    }
    let bind: SocketAddr = match format!("{}:{}", a.bind, a.port).parse() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: --bind/--port: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let tls = if a.tls {
        match SimTls::generate() {
            Ok(t) => {
                if let Err(e) = std::fs::write(&a.cert_out, &t.cert_pem) {
                    eprintln!("error: --cert-out {}: {e}", a.cert_out);
                    return std::process::ExitCode::from(1);
                }
                Some(t)
            }
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let sim = match Simulator::start(SimConfig {
        bind,
        seed: a.seed,
        step: Duration::from_millis(a.step_ms.max(1)),
        volatility: a.volatility,
        tls,
        ..SimConfig::default()
    }) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let rest = match wildbot::sim::rest::RestSim::start(&a.usd, &a.btc, sim.market()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    outln(&format!("kraken-sim listening on {}", sim.url()));
    outln(&format!(
        "private REST on {} (rest_url); key {} / secret {} (KRAKEN_API_KEY / KRAKEN_API_SECRET)",
        rest.url(),
        wildbot::sim::rest::DEMO_KEY,
        wildbot::sim::rest::DEMO_SECRET
    ));
    outln(&format!(
        "authenticated WebSocket on {} (ws_auth_url; tokens from GetWebSocketsToken)",
        rest.private().url()
    ));
    if a.tls {
        outln(&format!(
            "certificate: {} (set ws_ca_file to it)",
            a.cert_out
        ));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(rest);
    sim.stop();
    std::process::ExitCode::SUCCESS
}
