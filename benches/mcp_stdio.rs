//! `basis mcp` over stdio, measured through the real binary with raw JSON-RPC lines (so the
//! figures are the server's, not a client library's):
//!
//! - cold start: spawn to the `initialize` response, median of 31 runs (target ≤ 5 ms);
//! - `ping` pipelined with 16 requests in flight, calls per second (target ≥ 50,000/s);
//! - sequential `resources/read` of `basis://worker/env`, median round trip (target ≤ 100 µs);
//! - peak RSS (`VmHWM`) after more than 10,000 calls (target ≤ 20 MiB).
//!
//! Run with `cargo bench --bench mcp_stdio` (release profile). It prints the figures and
//! whether each meets its target; it fails only if the server misbehaves.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

const COLD_RUNS: usize = 31;
const PINGS: usize = 50_000;
const IN_FLIGHT: usize = 16;
const READS: usize = 2_000;

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

struct Server {
    child: Child,
    stdin: BufWriter<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Server {
    fn spawn(home: &std::path::Path) -> Result<Self> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_basis"))
            .arg("mcp")
            .env("BASIS_HOME", home)
            .env("BASIS_ORCHESTRATOR_URL", "http://127.0.0.1:9")
            .env("RUST_LOG", "warn")
            .current_dir(home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdin = BufWriter::new(child.stdin.take().ok_or("no stdin")?);
        let stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        Ok(Self {
            child,
            stdin,
            stdout,
        })
    }

    fn send(&mut self, line: &str) -> Result {
        self.stdin.write_all(line.as_bytes())?;
        self.stdin.write_all(b"\n")?;
        self.stdin.flush()?;
        Ok(())
    }

    /// The next line that is a response (has an `id`), skipping notifications.
    fn response(&mut self) -> Result<String> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                return Err("the server closed stdout".into());
            }
            if line.contains("\"id\"") {
                if line.contains("\"error\"") {
                    return Err(format!("error response: {line}").into());
                }
                return Ok(line.clone());
            }
        }
    }

    fn initialize(&mut self) -> Result {
        self.send(INITIALIZE)?;
        self.response()?;
        self.send(INITIALIZED)
    }

    fn peak_rss_kib(&self) -> Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmHWM:"))
            .ok_or("no VmHWM")?;
        Ok(line.split_whitespace().nth(1).ok_or("bad VmHWM")?.parse()?)
    }

    fn close(mut self) -> Result {
        drop(self.stdin);
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                self.child.kill()?;
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        Ok(())
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn cold_start(home: &std::path::Path) -> Result<Duration> {
    let mut samples = Vec::with_capacity(COLD_RUNS);
    for _ in 0..COLD_RUNS {
        let started = Instant::now();
        let mut server = Server::spawn(home)?;
        server.send(INITIALIZE)?;
        server.response()?;
        samples.push(started.elapsed());
        server.close()?;
    }
    Ok(median(samples))
}

/// Pings with `IN_FLIGHT` outstanding: a reader thread hands back one credit per response.
fn pipelined_pings(server: Server) -> Result<(f64, Server)> {
    let Server {
        child,
        mut stdin,
        mut stdout,
    } = server;
    let (credits, credit) = mpsc::channel::<()>();
    let reader = std::thread::spawn(move || -> Result<BufReader<ChildStdout>> {
        let mut line = String::new();
        let mut seen = 0;
        while seen < PINGS {
            line.clear();
            if stdout.read_line(&mut line)? == 0 {
                return Err("the server closed stdout".into());
            }
            if line.contains("\"id\"") {
                seen += 1;
                let _ = credits.send(());
            }
        }
        Ok(stdout)
    });
    let started = Instant::now();
    for id in 0..PINGS {
        if id >= IN_FLIGHT {
            credit.recv()?;
        }
        writeln!(
            stdin,
            r#"{{"jsonrpc":"2.0","id":{},"method":"ping"}}"#,
            id + 1
        )?;
        stdin.flush()?;
    }
    let stdout = reader.join().map_err(|_| "the reader panicked")??;
    #[allow(clippy::cast_precision_loss)] // 50,000 is exact in an f64
    let rate = PINGS as f64 / started.elapsed().as_secs_f64();
    Ok((
        rate,
        Server {
            child,
            stdin,
            stdout,
        },
    ))
}

fn sequential_reads_n(server: &mut Server, reads: usize) -> Result<Duration> {
    let mut samples = Vec::with_capacity(reads);
    for id in 0..reads {
        let request = format!(
            r#"{{"jsonrpc":"2.0","id":{},"method":"resources/read","params":{{"uri":"basis://worker/env"}}}}"#,
            PINGS + id + 10
        );
        let started = Instant::now();
        server.send(&request)?;
        let response = server.response()?;
        samples.push(started.elapsed());
        if id == 0 && !response.contains("BASIS_WORKER_WALLET") {
            return Err(format!("unexpected resource: {response}").into());
        }
    }
    Ok(median(samples))
}

fn write_env(home: &std::path::Path) -> Result {
    let mut server = Server::spawn(home)?;
    server.initialize()?;
    server.send(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_env","arguments":{"wallet":"0x52908400098527886E0F7030069857D2E4169EE7","worker_id":"bench-1"}}}"#)?;
    server.response()?;
    server.close()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "meets target" } else { "MISSES target" }
}

fn main() -> Result {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not: then run a quick smoke
    // test of the same paths instead of measuring a debug build.
    let measure = std::env::args().any(|a| a == "--bench");
    let home = tempfile::tempdir()?;
    write_env(home.path())?;
    if !measure {
        let mut server = Server::spawn(home.path())?;
        server.initialize()?;
        server.send(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#)?;
        server.response()?;
        sequential_reads_n(&mut server, 3)?;
        return server.close();
    }

    let cold = cold_start(home.path())?;
    let mut server = Server::spawn(home.path())?;
    server.initialize()?;
    let (rate, mut server) = pipelined_pings(server)?;
    let read = sequential_reads_n(&mut server, READS)?;
    let peak_kib = server.peak_rss_kib()?;
    server.close()?;

    let cold_ms = cold.as_secs_f64() * 1e3;
    let read_us = read.as_secs_f64() * 1e6;
    #[allow(clippy::cast_precision_loss)] // a process's KiB count is far below 2^52
    let rss_mib = peak_kib as f64 / 1024.0;
    println!(
        "basis mcp over stdio ({} calls on one server)",
        PINGS + READS + 1
    );
    println!(
        "  cold start to initialize response  {cold_ms:8.2} ms median   (≤ 5 ms: {})",
        verdict(cold_ms <= 5.0)
    );
    println!(
        "  ping, {IN_FLIGHT} in flight                {rate:8.0} calls/s   (≥ 50,000/s: {})",
        verdict(rate >= 50_000.0)
    );
    println!(
        "  resources/read round trip          {read_us:8.1} µs median   (≤ 100 µs: {})",
        verdict(read_us <= 100.0)
    );
    println!(
        "  peak RSS (VmHWM)                   {rss_mib:8.1} MiB        (≤ 20 MiB: {})",
        verdict(rss_mib <= 20.0)
    );
    Ok(())
}
