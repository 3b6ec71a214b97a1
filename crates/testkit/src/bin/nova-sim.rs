//! `nova-sim`: the simulator as a standalone process.
//!
//! * `nova-sim serve --listen 127.0.0.1:PORT [--scenario FILE] [--pid-file F]
//!   [--log-file F] [--tls-cert PEM --tls-key PEM]` serves Keystone, Nova,
//!   Glance and the `/sim/` control API until SIGTERM/SIGINT. `--log-file`
//!   receives the request log as JSON lines.
//! * `nova-sim compute --host NAME --url http://SIM [--interval SECS]` is the
//!   heartbeat loop standing in for nova-compute on a lab compute node; its
//!   first heartbeat announces a (re)start. Exits 0 on SIGTERM/SIGINT.
//! * `nova-sim example-scenario` prints a scenario that uses every field.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Arg, ArgAction, ArgMatches, Command};
use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};

use iha_testkit::{Scenario, Simulator, TlsConfig};

fn cli() -> Command {
    Command::new("nova-sim")
        .about("Nova/Keystone/Glance simulator for instance-ha tests, lab and benchmarks")
        .subcommand_required(true)
        .arg_required_else_help(true)
        .subcommand(
            Command::new("serve")
                .about("Serve the simulated cloud")
                .arg(Arg::new("listen").long("listen").value_name("ADDR").default_value("127.0.0.1:5999"))
                .arg(Arg::new("scenario").long("scenario").value_name("FILE").value_parser(clap::value_parser!(PathBuf)))
                .arg(Arg::new("pid-file").long("pid-file").value_name("FILE").value_parser(clap::value_parser!(PathBuf)))
                .arg(Arg::new("log-file").long("log-file").value_name("FILE").value_parser(clap::value_parser!(PathBuf)))
                .arg(Arg::new("tls-cert").long("tls-cert").value_name("PEM").value_parser(clap::value_parser!(PathBuf)))
                .arg(Arg::new("tls-key").long("tls-key").value_name("PEM").value_parser(clap::value_parser!(PathBuf))),
        )
        .subcommand(Command::new("example-scenario").about("Print an example scenario showing every field"))
        .subcommand(
            Command::new("compute")
                .about("Heartbeat loop standing in for nova-compute on a host")
                .arg(Arg::new("host").long("host").value_name("NAME").required(true))
                .arg(Arg::new("url").long("url").value_name("URL").required(true).help("simulator base URL, e.g. http://10.0.0.1:5999"))
                .arg(
                    Arg::new("interval")
                        .long("interval")
                        .value_name("SECS")
                        .default_value("10")
                        .value_parser(clap::value_parser!(f64)),
                )
                .arg(Arg::new("quiet").long("quiet").short('q').action(ArgAction::SetTrue)),
        )
}

/// Blocks SIGTERM and SIGINT in this thread (and every thread spawned after),
/// so that `wait_for_signal` can receive them synchronously.
fn block_signals() -> anyhow::Result<SigSet> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(set)
}

fn main() {
    let matches = cli().get_matches();
    let result = match matches.subcommand() {
        Some(("serve", m)) => serve(m),
        Some(("compute", m)) => compute(m),
        Some(("example-scenario", _)) => {
            println!("{}", serde_json::to_string_pretty(&iha_testkit::scenario::example()).unwrap_or_default());
            Ok(())
        }
        _ => Ok(()),
    };
    if let Err(e) = result {
        eprintln!("nova-sim: {e:#}");
        std::process::exit(1);
    }
}

fn serve(m: &ArgMatches) -> anyhow::Result<()> {
    let signals = block_signals()?;
    let listen = m.get_one::<String>("listen").map(String::as_str).unwrap_or("127.0.0.1:5999");
    let scenario = match m.get_one::<PathBuf>("scenario") {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Scenario::from_json(&text).with_context(|| format!("parsing scenario {}", p.display()))?
        }
        None => Scenario::default(),
    };
    let tls = match (m.get_one::<PathBuf>("tls-cert"), m.get_one::<PathBuf>("tls-key")) {
        (None, None) => TlsConfig::default(),
        (Some(c), Some(k)) => tls_config(c, k)?,
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    };
    let sim = Simulator::start_on(listen, scenario, tls)?;
    let pid_file = m.get_one::<PathBuf>("pid-file").cloned();
    if let Some(p) = &pid_file {
        std::fs::write(p, format!("{}\n", std::process::id())).with_context(|| format!("writing {}", p.display()))?;
    }
    println!("nova-sim listening on {} (auth_url {})", sim.base_url(), sim.auth_url());
    let _ = std::io::stdout().flush();
    let stop = Arc::new(AtomicBool::new(false));
    let log_thread = m
        .get_one::<PathBuf>("log-file")
        .cloned()
        .map(|path| spawn_log_writer(path, stop.clone(), sim.log_reader()));
    let _ = signals.wait();
    stop.store(true, Ordering::SeqCst);
    // Stop serving first so the last entries are final when flushed.
    drop(sim);
    if let Some(t) = log_thread {
        let _ = t.join();
    }
    if let Some(p) = &pid_file {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

fn spawn_log_writer(path: PathBuf, stop: Arc<AtomicBool>, reader: iha_testkit::LogReader) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&path);
        let Ok(mut file) = file else {
            eprintln!("nova-sim: cannot open log file {}", path.display());
            return;
        };
        let mut since = 0u64;
        loop {
            let done = stop.load(Ordering::SeqCst);
            // At the end, flush what is left, even requests never answered.
            let batch = if done { reader.all_since(since) } else { reader.finished_since(since) };
            for e in batch {
                since = e.seq;
                if let Ok(line) = serde_json::to_string(&e) {
                    let _ = writeln!(file, "{line}");
                }
            }
            let _ = file.flush();
            if done {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

#[cfg(feature = "tls")]
fn tls_config(cert: &PathBuf, key: &PathBuf) -> anyhow::Result<TlsConfig> {
    let c = std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
    let k = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
    TlsConfig::from_pem(&c, &k)
}

#[cfg(not(feature = "tls"))]
fn tls_config(_cert: &PathBuf, _key: &PathBuf) -> anyhow::Result<TlsConfig> {
    anyhow::bail!("this nova-sim was built without the `tls` feature")
}

fn compute(m: &ArgMatches) -> anyhow::Result<()> {
    let signals = block_signals()?;
    let host = m.get_one::<String>("host").cloned().unwrap_or_default();
    let base = m.get_one::<String>("url").cloned().unwrap_or_default();
    let interval = m.get_one::<f64>("interval").copied().unwrap_or(10.0);
    let quiet = m.get_flag("quiet");
    if host.is_empty() || host.contains('/') {
        anyhow::bail!("invalid --host {host:?}");
    }
    if !(interval.is_finite() && interval > 0.0) {
        anyhow::bail!("--interval must be a positive number of seconds");
    }
    iha_testkit::client::split_url(&base)?;
    let stop = Arc::new(AtomicBool::new(false));
    let worker_stop = stop.clone();
    let url = format!("{}/sim/hosts/{}/heartbeat", base.trim_end_matches('/'), iha_testkit::util::percent_encode(&host));
    let worker = std::thread::spawn(move || {
        let mut first = true;
        while !worker_stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            let body = format!("{{\"restart\": {first}}}");
            match iha_testkit::client::request(
                "POST",
                &url,
                &[("Content-Type", "application/json")],
                Some(body.as_bytes()),
                Duration::from_secs_f64(interval.clamp(1.0, 30.0)),
            ) {
                Ok(r) if r.status == 200 => {
                    if first && !quiet {
                        eprintln!("nova-sim compute: {host} reporting to {url} every {interval}s");
                    }
                    // Only a delivered heartbeat counts as the start announcement.
                    first = false;
                }
                Ok(r) => eprintln!("nova-sim compute: heartbeat for {host}: HTTP {}: {}", r.status, r.text()),
                Err(e) => eprintln!("nova-sim compute: heartbeat for {host} failed: {e:#}"),
            }
            let period = Duration::from_secs_f64(interval);
            while started.elapsed() < period && !worker_stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(50).min(period));
            }
        }
    });
    let _ = signals.wait();
    stop.store(true, Ordering::SeqCst);
    let _ = worker.join();
    Ok(())
}
