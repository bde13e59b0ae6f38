//! Child processes: the release `ecr-facade` binary, the bare echo server
//! (this bench re-executed), h2load and valgrind. Each child is stopped by
//! its own pid (SIGTERM, then SIGKILL) when its guard drops.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The `ecr-facade` binary under test: `ECR_FACADE_BENCH_BIN` when set (to
/// compare two builds), else the one cargo built alongside this bench.
pub fn facade_bin() -> PathBuf {
    std::env::var_os("ECR_FACADE_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_ecr-facade")))
}

/// Whether `program` is on `PATH`.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Where a child's stdout goes.
#[derive(Debug, Clone, Copy)]
pub enum Stdout<'a> {
    /// A pipe read by a thread of ours (no polling delay).
    Pipe,
    /// A file, followed by a thread of ours polling every millisecond: a
    /// chatty child (a log line per call) never waits for our reader.
    File(&'a Path),
}

/// A running child whose stdout lines are read by a thread.
pub struct Child {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: Option<mpsc::Receiver<String>>,
    seen: Vec<String>,
}

impl Child {
    /// Spawns `command` with stdout going to `stdout` (stderr inherited);
    /// its lines are forwarded to [`Child::wait_for_field`] either way.
    pub fn spawn(mut command: Command, stdout: Stdout<'_>) -> anyhow::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let mut child = match stdout {
            Stdout::Pipe => {
                let mut child = command
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .with_context(|| format!("spawning {command:?}"))?;
                let stdout = child.stdout.take().expect("piped stdout");
                std::thread::spawn(move || forward_lines(stdout, &tx));
                child
            }
            Stdout::File(path) => {
                let file = std::fs::File::create(path)
                    .with_context(|| format!("creating {}", path.display()))?;
                let child = command
                    .stdin(Stdio::piped())
                    .stdout(file)
                    .stderr(Stdio::inherit())
                    .spawn()
                    .with_context(|| format!("spawning {command:?}"))?;
                let reader = std::fs::File::open(path)?;
                std::thread::spawn(move || follow_file(reader, &tx));
                child
            }
        };
        Ok(Self {
            stdin: child.stdin.take(),
            child,
            lines: Some(rx),
            seen: Vec::new(),
        })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Reads lines until one has `key=<value>`; returns the value.
    pub fn wait_for_field(&mut self, key: &str, timeout: Duration) -> anyhow::Result<String> {
        let deadline = Instant::now() + timeout;
        if let Some(value) = self.seen.iter().find_map(|l| field(l, key)) {
            return Ok(value);
        }
        loop {
            let lines = self.lines.as_ref().context("child output no longer read")?;
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left.min(Duration::from_millis(100))) {
                Ok(line) => {
                    let value = field(&line, key);
                    self.seen.push(line);
                    if let Some(value) = value {
                        return Ok(value);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) if !left.is_zero() => {
                    // A child that died says nothing more: fail now.
                    if let Some(status) = self.child.try_wait()? {
                        bail!(
                            "the child exited ({status}) before saying {key}=; it said:\n{}",
                            self.seen.join("\n")
                        );
                    }
                }
                Err(_) => bail!(
                    "no {key}= from the child within {timeout:?}; it said:\n{}",
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Forgets the lines read so far, so the next [`Child::wait_for_field`]
    /// waits for a new one.
    pub fn forget_seen(&mut self) {
        self.seen.clear();
    }

    /// Stops forwarding stdout lines (they are read and discarded), so a
    /// chatty child cannot fill memory.
    pub fn discard_output(&mut self) {
        self.lines = None;
    }

    /// Writes one line to the child's stdin.
    pub fn send_line(&mut self, line: &str) -> anyhow::Result<()> {
        let stdin = self.stdin.as_mut().context("stdin closed")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    /// Resident memory, from /proc.
    pub fn rss(&self) -> anyhow::Result<Rss> {
        rss(self.pid())
    }

    /// SIGTERM, then waits up to `grace` (SIGKILL after). Returns the exit
    /// status.
    pub fn stop(mut self, grace: Duration) -> anyhow::Result<std::process::ExitStatus> {
        self.terminate(grace)
    }

    fn terminate(&mut self, grace: Duration) -> anyhow::Result<std::process::ExitStatus> {
        self.stdin.take();
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        signal(self.pid(), libc::SIGTERM);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.child.kill()?;
        Ok(self.child.wait()?)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.terminate(Duration::from_secs(5));
    }
}

fn forward_lines(stdout: std::process::ChildStdout, tx: &mpsc::Sender<String>) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if tx.send(line.trim_end().to_owned()).is_err() {
                    break;
                }
            }
        }
    }
    // Nobody listens any more: drain in large reads.
    let mut buf = vec![0u8; 64 * 1024];
    while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
}

/// Forwards the lines appended to `file` until nobody listens.
fn follow_file(file: std::fs::File, tx: &mpsc::Sender<String>) {
    let mut reader = BufReader::new(file);
    let mut line = String::new();
    loop {
        match reader.read_line(&mut line) {
            Ok(0) => std::thread::sleep(Duration::from_millis(1)),
            Ok(_) if line.ends_with('\n') => {
                if tx.send(line.trim_end().to_owned()).is_err() {
                    return;
                }
                line.clear();
            }
            // A partial line: wait for the rest.
            Ok(_) => std::thread::sleep(Duration::from_millis(1)),
            Err(_) => return,
        }
    }
}

/// Sends `sig` to our own child `pid`.
pub fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: kill(2) on a pid we spawned; no memory is shared.
    unsafe {
        libc::kill(pid, sig);
    }
}

/// The value of `key=value` in a log line (text logs), if present.
pub fn field(line: &str, key: &str) -> Option<String> {
    line.split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim_matches('"').to_owned())
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Default, Clone, Copy)]
pub struct Rss {
    /// VmRSS: everything resident, the binary's mapped pages included.
    pub total: u64,
    /// VmHWM: the peak of `total`.
    pub peak: u64,
    /// RssAnon: heap, stacks and other anonymous memory — what the process
    /// allocated, without the file pages of its binary (which vary with the
    /// page cache).
    pub anon: u64,
}

/// [`Rss`] of `pid`.
pub fn rss(pid: u32) -> anyhow::Result<Rss> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let get = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("{name} missing from /proc/{pid}/status"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("malformed /proc status line")?
            .parse()?)
    };
    Ok(Rss {
        total: get("VmRSS:")?,
        peak: get("VmHWM:")?,
        anon: get("RssAnon:")?,
    })
}

/// The facade's Prometheus exposition, over plain HTTP/1.0.
pub fn scrape(metrics: SocketAddr) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect_timeout(&metrics, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {metrics}\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    anyhow::ensure!(text.starts_with("HTTP/1."), "odd metrics answer: {text}");
    Ok(text)
}

/// Sum of `family{...}` samples whose labels contain every `needle`,
/// split into (matching `code="Ok"`, others) when `by_code`.
pub fn counter(exposition: &str, family: &str, needles: &[&str]) -> (u64, u64) {
    let mut ok = 0;
    let mut other = 0;
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix(family) else {
            continue;
        };
        if !rest.starts_with('{') || !needles.iter().all(|n| rest.contains(n)) {
            continue;
        }
        let value: f64 = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        if rest.contains(r#"code="Ok""#) {
            ok += value as u64;
        } else {
            other += value as u64;
        }
    }
    (ok, other)
}

/// The gauge `name`'s value.
pub fn gauge(exposition: &str, name: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// A running `ecr-facade serve` and where it listens.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    pub metrics: Option<SocketAddr>,
    /// When the process was spawned.
    pub spawned: Instant,
}

/// Dummy credentials for `serve --endpoint-url` (the emulator accepts any).
pub const STATIC_AWS_CREDENTIALS: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
    (
        "AWS_SECRET_ACCESS_KEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

/// `ecr-facade <args>` (under `wrapper`, e.g. valgrind), with `env`, text
/// logs at the default level and no inherited `ECR_FACADE_*` or `RUST_LOG`.
fn spawn_bin(
    bin: &Path,
    wrapper: &[&str],
    args: &[&str],
    env: &[(&str, &str)],
    stdout: Stdout<'_>,
) -> anyhow::Result<(Child, Instant)> {
    let mut command = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut command = Command::new(program);
            command.args(rest).arg(bin);
            command
        }
        None => Command::new(bin),
    };
    command.args(args).env_remove("RUST_LOG");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("ECR_FACADE_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().copied());
    let spawned = Instant::now();
    Ok((Child::spawn(command, stdout)?, spawned))
}

/// A running `ecr-facade emulator`.
pub struct Emulated {
    pub child: Child,
    pub url: String,
}

/// Spawns `ecr-facade emulator --listen 127.0.0.1:0 <args>` and waits for
/// its endpoint line.
pub fn spawn_emulator(args: &[&str]) -> anyhow::Result<Emulated> {
    let mut all = vec!["emulator", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    let (mut child, _) = spawn_bin(&facade_bin(), &[], &all, &[], Stdout::Pipe)?;
    let url = child.wait_for_field("endpoint_url", Duration::from_secs(30))?;
    child.discard_output();
    Ok(Emulated { child, url })
}

/// Spawns `ecr-facade <args>` (see [`spawn_bin`]) and waits for its listen
/// line (and metrics line when `--metrics-listen` is among `args`).
pub fn spawn_facade(
    bin: &Path,
    wrapper: &[&str],
    args: &[&str],
    env: &[(&str, &str)],
    stdout: Stdout<'_>,
    timeout: Duration,
) -> anyhow::Result<Served> {
    let (mut child, spawned) = spawn_bin(bin, wrapper, args, env, stdout)?;
    let metrics = if args.contains(&"--metrics-listen") {
        let url = child.wait_for_field("metrics", timeout)?;
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/metrics")
            .parse()
            .with_context(|| format!("metrics address in {url:?}"))?;
        Some(addr)
    } else {
        None
    };
    let addr = child
        .wait_for_field("listen", timeout)?
        .parse()
        .context("listen address")?;
    Ok(Served {
        child,
        addr,
        metrics,
        spawned,
    })
}

/// Polls a process's [`Rss`] on a thread of its own until stopped, keeping
/// the largest readings: the peak of a phase in a process whose VmHWM
/// already holds an earlier phase's.
pub struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(Rss, usize)>,
}

impl RssSampler {
    /// Starts sampling `pid` every `every`.
    pub fn start(pid: u32, every: Duration) -> Self {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = std::sync::Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut max = Rss::default();
            let mut samples = 0;
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(now) = rss(pid) {
                    max.total = max.total.max(now.total);
                    max.anon = max.anon.max(now.anon);
                    max.peak = max.peak.max(now.peak);
                    samples += 1;
                }
                std::thread::sleep(every);
            }
            (max, samples)
        });
        Self { stop, thread }
    }

    /// Stops sampling; returns the largest VmRSS and RssAnon seen (each on
    /// its own), VmHWM at the last reading, and the number of readings.
    pub fn finish(self) -> (Rss, usize) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}
