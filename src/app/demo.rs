//! The demo: the Kraken simulator on free loopback ports and a session trading against it,
//! live through the simulator's private REST API with its demo key pair (the real signed order
//! path), or on paper.

use crate::app::output::errln;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use crate::app::commands::usage_error;
use crate::app::config::load_config;
use crate::app::session::{SessionArgs, run_session};
use crate::exec::ws_entry::OrderTransport;
use crate::kraken::rest::Credentials;
use crate::sim::rest::{DEMO_KEY, DEMO_SECRET, RestSim};
use crate::sim::{SimConfig, SimTls, Simulator};

/// The demo's own choices (`wildbot demo --help`).
#[derive(Debug, Clone, PartialEq)]
pub struct DemoArgs {
    /// Seed of the simulated market.
    pub seed: u64,
    /// Volatility multiplier of the simulated market.
    pub volatility: f64,
    /// Milliseconds between market steps.
    pub step_ms: u64,
    /// Serve and connect over `wss://` with a certificate generated now.
    pub tls: bool,
    /// Paper trade instead of trading live against the simulator's REST API.
    pub paper: bool,
    /// Base (BTC) the simulated account holds at start, decimal text.
    pub base: String,
    /// Quote (USD) the simulated account holds at start, decimal text.
    pub quote: String,
    /// The order path (`--transport`); `None`: the config's `order_transport`.
    pub transport: Option<OrderTransport>,
}

impl Default for DemoArgs {
    /// `cargo run --release` without a subcommand: a lively first 20 s, with fills.
    fn default() -> DemoArgs {
        DemoArgs {
            seed: 3,
            volatility: 1.0,
            step_ms: 2,
            tls: false,
            paper: false,
            base: "0".into(),
            quote: "10000".into(),
            transport: None,
        }
    }
}

/// Runs the demo until `--duration` ends or Ctrl-C; says how many orders the simulator still
/// has open afterwards (0).
#[must_use]
pub fn demo(config: Option<&Path>, d: &DemoArgs, args: &SessionArgs) -> ExitCode {
    let mut cfg = match load_config(config, &args.set) {
        Ok(c) => c,
        Err(e) => return usage_error(&e.to_string()),
    };
    cfg.live_mode = false;
    cfg.simulator = true;
    let tls_id = if d.tls {
        match SimTls::generate() {
            Ok(t) => Some(t),
            Err(e) => return failed(&e.to_string()),
        }
    } else {
        None
    };
    let ca_file = tls_id.as_ref().map(|t| {
        let path = std::env::temp_dir().join(format!("wildbot-demo-ca-{}.pem", std::process::id()));
        let _ = std::fs::write(&path, &t.cert_pem);
        path
    });
    let sim = match Simulator::start(SimConfig {
        seed: d.seed,
        volatility: d.volatility,
        step: Duration::from_millis(d.step_ms.max(1)),
        tls: tls_id,
        ..SimConfig::default()
    }) {
        Ok(s) => s,
        Err(e) => return failed(&format!("kraken simulator: {e}")),
    };
    cfg.ws_url = sim.url();
    cfg.ws_ca_file = ca_file.as_ref().map(|p| p.display().to_string());
    // Live against the simulator's private REST API, with its public demo key pair: the real
    // signed order path. A local exchange answers in microseconds, so the demo polls faster.
    let rest = if d.paper {
        None
    } else {
        match RestSim::start(&d.quote, &d.base, sim.market()) {
            Ok(r) => Some(r),
            Err(e) => return failed(&format!("kraken simulator REST: {e}")),
        }
    };
    let mut creds = None;
    if let Some(r) = &rest {
        cfg.live_mode = true;
        cfg.rest_url = r.url();
        // The simulator's private stream, unless asked for polls only (`--set ws_auth_url=`).
        if !args.set.iter().any(|kv| {
            kv.split('=')
                .next()
                .is_some_and(|k| k.trim() == "ws_auth_url")
        }) {
            cfg.ws_auth_url = r.private().url();
        }
        cfg.rest_min_interval_ms = 200;
        cfg.fill_poll_s = 1;
        if let Some(t) = d.transport {
            cfg.order_transport = t;
        }
        if cfg.order_transport == OrderTransport::Ws && cfg.ws_auth_url.is_empty() {
            return usage_error(
                "--transport ws needs the private stream (drop --set ws_auth_url=)",
            );
        }
        match Credentials::new(DEMO_KEY, DEMO_SECRET) {
            Ok(c) => creds = Some(c),
            Err(e) => return failed(&format!("the demo key pair: {e}")),
        }
    }
    errln(&format!(
        "demo: Kraken simulator at {} (seed {}, volatility x{}){}",
        sim.url(),
        d.seed,
        d.volatility,
        rest.as_ref()
            .map(|r| format!(
                ", private REST at {} and WebSocket at {} (LIVE against the simulator, orders \
                 over {})",
                r.url(),
                r.private().url(),
                cfg.order_transport.name()
            ))
            .unwrap_or_default()
    ));
    let code = run_session(&cfg, args, creds);
    if let Some(r) = &rest {
        let x = r.exchange();
        let open = x.orders.values().filter(|o| o.status == "open").count();
        errln(&format!(
            "demo: the simulator has {open} open order(s) after shutdown"
        ));
        errln(&format!(
            "demo: the simulated account holds {} BTC and {} USD (it started with {} BTC and {} USD)",
            x.btc.show(8),
            x.usd.show(9),
            d.base,
            d.quote
        ));
    }
    drop(rest);
    sim.stop();
    if let Some(p) = ca_file {
        let _ = std::fs::remove_file(p);
    }
    code
}

fn failed(e: &str) -> ExitCode {
    errln(&format!("error: {e}"));
    ExitCode::from(1)
}
