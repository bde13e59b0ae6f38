//! Scenario 5, profile of the facade under scenario 2's load:
//!
//! - instructions per call with valgrind's callgrind (deterministic, user
//!   space only): the counters are zeroed after a warm-up, h2load sends a
//!   fixed number of calls, the counters are dumped; the same for the bare
//!   baseline. Note that valgrind hides SHA extensions from the CPU, so
//!   SigV4's SHA-256 runs in software there and weighs more than natively;
//! - where the CPU time goes at full speed with `perf record -e cpu-clock`
//!   (kernel included; flat, as release builds carry no frame pointers),
//!   grouped by component.
//!
//! Raw files stay in `target/tmp/bench/` for `callgrind_annotate
//! --inclusive=yes` and `perf report`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context as _, ensure};
use tokio::runtime::Runtime;

use crate::load::{self, Rpc};
use crate::procs::{self, Child, Stdout};
use crate::throughput;

/// How much.
#[derive(Debug, Clone)]
pub struct Params {
    /// Calls measured under callgrind per target; `None` skips callgrind.
    pub callgrind_calls: Option<(u64, u64)>,
    /// Seconds of perf sampling per target; `None` skips perf.
    pub perf_for: Option<Duration>,
    /// Calls that warm up and size each perf run.
    pub perf_warmup_calls: u64,
}

impl Params {
    pub fn full() -> Self {
        Self {
            callgrind_calls: Some((2_000, 300)),
            perf_for: Some(Duration::from_secs(3)),
            perf_warmup_calls: 2_000,
        }
    }

    /// Perf only (callgrind of a debug build takes too long).
    pub fn smoke() -> Self {
        Self {
            callgrind_calls: None,
            perf_for: Some(Duration::from_millis(500)),
            perf_warmup_calls: 200,
        }
    }
}

/// Instructions per call of one target.
#[derive(Debug)]
pub struct Instructions {
    pub label: &'static str,
    pub calls: u64,
    pub per_call: u64,
    /// Instructions per call under chosen functions.
    pub probes: Vec<(String, u64)>,
    pub file: PathBuf,
}

/// Where CPU time went for one target.
#[derive(Debug)]
pub struct Samples {
    pub label: &'static str,
    pub samples: u64,
    /// (share, component), largest first.
    pub components: Vec<(f64, String)>,
    /// (share, dso, symbol), largest first.
    pub symbols: Vec<(f64, String, String)>,
    pub file: PathBuf,
}

/// The scenario's result.
#[derive(Debug, Default)]
pub struct Outcome {
    pub instructions: Vec<Instructions>,
    pub samples: Vec<Samples>,
    pub skipped: Vec<String>,
}

/// Runs the scenario.
pub fn run(client_rt: &Runtime, params: &Params, scratch: &Path) -> anyhow::Result<Outcome> {
    let mut outcome = Outcome::default();
    if !procs::have("h2load") {
        outcome.skipped.push("h2load is not installed".into());
        return Ok(outcome);
    }
    if let Some((token_calls, describe_calls)) = params.callgrind_calls {
        if procs::have("valgrind") && procs::have("callgrind_control") {
            outcome.instructions = callgrind(client_rt, token_calls, describe_calls, scratch)?;
        } else {
            outcome
                .skipped
                .push("valgrind is not installed: no instruction counts".into());
        }
    } else {
        outcome
            .skipped
            .push("instruction counts (callgrind) are skipped in a smoke run".into());
    }
    if let Some(duration) = params.perf_for {
        if perf_works() {
            outcome.samples = perf(duration, params.perf_warmup_calls, scratch)?;
        } else {
            outcome
                .skipped
                .push("perf cannot sample here: no CPU-time profile".into());
        }
    }
    Ok(outcome)
}

const SERVE: [&str; 5] = [
    "serve",
    "--emulator",
    "--seed-demo",
    "--listen",
    "127.0.0.1:0",
];

fn callgrind(
    client_rt: &Runtime,
    token_calls: u64,
    describe_calls: u64,
    scratch: &Path,
) -> anyhow::Result<Vec<Instructions>> {
    let facade_out = scratch.join("callgrind.facade.out");
    let echo_out = scratch.join("callgrind.baseline.out");
    clear_dumps(&facade_out)?;
    clear_dumps(&echo_out)?;
    let wrapper = |out: &Path| {
        vec![
            "valgrind".to_owned(),
            "--tool=callgrind".to_owned(),
            format!("--callgrind-out-file={}", out.display()),
            "--dump-instr=no".to_owned(),
        ]
    };
    let spawn = |bin: &Path, out: &Path, log: &str| {
        let wrapper = wrapper(out);
        let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
        let mut served = procs::spawn_facade(
            bin,
            &wrapper,
            &SERVE,
            &[],
            Stdout::File(&scratch.join(log)),
            Duration::from_secs(120),
        )?;
        served.child.discard_output();
        anyhow::Ok(served)
    };
    let facade = spawn(&procs::facade_bin(), &facade_out, "facade-callgrind.log")?;
    let compared_out = scratch.join("callgrind.compared.out");
    clear_dumps(&compared_out)?;
    let compared = std::env::var_os(throughput::COMPARE_ENV)
        .map(|bin| spawn(Path::new(&bin), &compared_out, "compared-callgrind.log"))
        .transpose()?;
    let (token_answer, describe_answer) = throughput::record_answers(client_rt, &facade, scratch)?;

    let mut echo_command = Command::new("valgrind");
    echo_command
        .args(wrapper(&echo_out))
        .arg(std::env::current_exe()?)
        .arg("--serve-echo")
        .arg(&token_answer)
        .arg(&describe_answer);
    let mut echo = Child::spawn(echo_command, Stdout::Pipe)?;
    let echo_addr = echo
        .wait_for_field("listen", Duration::from_secs(120))?
        .parse()?;

    let mut targets = vec![
        Target {
            label: "bare tonic baseline: GetAuthorizationToken",
            pid: echo.pid(),
            addr: echo_addr,
            rpc: Rpc::Token,
            calls: token_calls,
            out: &echo_out,
            probes: &[],
        },
        Target {
            label: "facade: GetAuthorizationToken (cached)",
            pid: facade.child.pid(),
            addr: facade.addr,
            rpc: Rpc::Token,
            calls: token_calls,
            out: &facade_out,
            probes: TOKEN_PROBES,
        },
        Target {
            label: "facade + in-process emulator: DescribeRepositories",
            pid: facade.child.pid(),
            addr: facade.addr,
            rpc: Rpc::Describe,
            calls: describe_calls,
            out: &facade_out,
            probes: DESCRIBE_PROBES,
        },
    ];
    if let Some(compared) = &compared {
        targets.push(Target {
            label: "compared build: GetAuthorizationToken (cached)",
            pid: compared.child.pid(),
            addr: compared.addr,
            rpc: Rpc::Token,
            calls: token_calls,
            out: &compared_out,
            probes: TOKEN_PROBES,
        });
        targets.push(Target {
            label: "compared build + in-process emulator: DescribeRepositories",
            pid: compared.child.pid(),
            addr: compared.addr,
            rpc: Rpc::Describe,
            calls: describe_calls,
            out: &compared_out,
            probes: DESCRIBE_PROBES,
        });
    }
    let mut results = Vec::new();
    for target in targets {
        let Target {
            label,
            pid,
            addr,
            rpc,
            calls,
            out,
            probes,
        } = target;
        let body = scratch.join(format!("{rpc:?}.grpc-body"));
        std::fs::write(&body, rpc.framed_body())?;
        load::h2load(addr, rpc, &body, 200, 4, 4)?;
        control(pid, "-z")?;
        let seen = load::h2load(addr, rpc, &body, calls, 16, 16)?;
        ensure!(
            seen.failed == 0 && seen.succeeded == calls,
            "{label}: h2load failures under callgrind"
        );
        let before = dumps(out)?;
        control(pid, "-d")?;
        let file = wait_new_dump(out, &before)?;
        let annotated = annotate(&file)?;
        let total = program_total(&annotated).context("no PROGRAM TOTALS in callgrind_annotate")?;
        results.push(Instructions {
            label,
            calls,
            per_call: total / calls,
            probes: probe(&annotated, calls, probes),
            file,
        });
    }
    drop(echo);
    for served in [Some(facade), compared].into_iter().flatten() {
        served.child.stop(Duration::from_secs(30))?;
    }
    for log in ["facade-callgrind.log", "compared-callgrind.log"] {
        let _ = std::fs::remove_file(scratch.join(log));
    }
    Ok(results)
}

/// One process and call measured under callgrind.
struct Target<'a> {
    label: &'static str,
    pid: u32,
    addr: SocketAddr,
    rpc: Rpc,
    calls: u64,
    out: &'a Path,
    probes: &'static [(&'static str, &'static str)],
}

fn control(pid: u32, action: &str) -> anyhow::Result<()> {
    let status = Command::new("callgrind_control")
        .arg(action)
        .arg(pid.to_string())
        .stdout(std::process::Stdio::null())
        .status()?;
    ensure!(status.success(), "callgrind_control {action} {pid} failed");
    Ok(())
}

fn clear_dumps(out: &Path) -> anyhow::Result<()> {
    for file in dumps(out)? {
        std::fs::remove_file(file)?;
    }
    Ok(())
}

/// Dump files of `out` (`out.1`, `out.2`, …).
fn dumps(out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let dir = out.parent().context("dump dir")?;
    let stem = out
        .file_name()
        .context("dump name")?
        .to_string_lossy()
        .into_owned();
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| n.starts_with(&stem)) {
            found.push(path);
        }
    }
    Ok(found)
}

fn wait_new_dump(out: &Path, before: &[PathBuf]) -> anyhow::Result<PathBuf> {
    for _ in 0..200 {
        if let Some(new) = dumps(out)?.into_iter().find(|p| !before.contains(p)) {
            // Let callgrind finish writing it.
            std::thread::sleep(Duration::from_millis(200));
            return Ok(new);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::bail!("callgrind wrote no dump next to {}", out.display())
}

fn annotate(file: &Path) -> anyhow::Result<String> {
    let output = Command::new("callgrind_annotate")
        .args(["--inclusive=yes", "--threshold=100"])
        .arg(file)
        .output()?;
    ensure!(output.status.success(), "callgrind_annotate failed");
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `1,234 (…)  PROGRAM TOTALS`.
fn program_total(annotated: &str) -> Option<u64> {
    annotated
        .lines()
        .find(|l| l.contains("PROGRAM TOTALS"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.replace(',', "").parse().ok())
}

/// Instructions per call spent in (and under) chosen functions: the
/// largest inclusive count among the functions whose name contains the
/// needle (recursion shows a function more than once).
fn probe(
    annotated: &str,
    calls: u64,
    probes: &[(&'static str, &'static str)],
) -> Vec<(String, u64)> {
    probes
        .iter()
        .filter_map(|(label, needle)| {
            let count = annotated
                .lines()
                .filter(|line| line.contains(needle))
                .filter_map(|line| {
                    line.split_whitespace()
                        .next()?
                        .replace(',', "")
                        .parse::<u64>()
                        .ok()
                })
                .max()?;
            Some(((*label).to_owned(), count / calls))
        })
        .collect()
}

/// Where a cached GetAuthorizationToken's instructions go in the facade.
const TOKEN_PROBES: &[(&str, &str)] = &[
    (
        "RPC envelope: the `rpc` span (`tracing::span::Span::new`)",
        "tracing::span::Span::new",
    ),
    (
        "RPC envelope: end of call — log line, span fields, metrics (`call_slot::Ending::finish`)",
        "ecr_facade::call_slot::Ending::finish",
    ),
    (
        "… the log line (`tracing_core::event::Event::child_of`)",
        "tracing_core::event::Event::child_of",
    ),
    (
        "… `code` and `latency_ms` recorded into the span (`Span::record_all`)",
        "tracing::span::Span::record_all",
    ),
    (
        "… RPC metrics (`Metrics::rpc_finished`)",
        "ecr_facade::metrics::Metrics::rpc_finished",
    ),
    (
        "RPC envelope: trace context (`TraceContext::from_headers`)",
        "ecr_facade::rpc_layer::trace::TraceContext::from_headers",
    ),
    (
        "RPC envelope: OpenTelemetry parent (`telemetry::parent_from_headers`)",
        "ecr_facade::telemetry::parent_from_headers",
    ),
    (
        "RPC envelope: request id (`rpc_layer::trace::request_id`)",
        "ecr_facade::rpc_layer::trace::request_id",
    ),
    (
        "RPC envelope: `grpc-status` lookups (`rpc_layer::grpc_code`)",
        "ecr_facade::rpc_layer::grpc_code",
    ),
    (
        "header names parsed from strings, all callers (`HdrName::from_bytes`)",
        "http::header::name::HdrName::from_bytes",
    ),
    (
        "handler: deadline, validation, authorization, cache, response",
        "EcrService>::get_authorization_token::{{closure}}",
    ),
    (
        "… token cache lookup (`TokenCache::plan`)",
        "ecr_facade::token_cache::TokenCache::plan",
    ),
];

/// Where a forwarded DescribeRepositories' instructions go.
const DESCRIBE_PROBES: &[(&str, &str)] = &[
    (
        "handler (`describe_repositories`), SDK call included",
        "EcrService>::describe_repositories::{{closure}}",
    ),
    (
        "… SDK call (`orchestrator::try_op`)",
        "aws_smithy_runtime::client::orchestrator::try_op::{{closure}}",
    ),
    (
        "… … SigV4 signing (`orchestrator::auth::sign_request`)",
        "aws_smithy_runtime::client::orchestrator::auth::sign_request",
    ),
    (
        "… … … signing-key derivation, per call (`generate_signing_key`)",
        "aws_sigv4::sign::v4::generate_signing_key",
    ),
    (
        "… … client configuration applied per call (`orchestrator::apply_configuration`)",
        "aws_smithy_runtime::client::orchestrator::apply_configuration",
    ),
    (
        "… … user-agent header built per call (`UserAgentInterceptor`)",
        "UserAgentInterceptor as aws_smithy_runtime_api::client::interceptors::Intercept>::modify_before_signing",
    ),
    (
        "… … response deserialization",
        "DescribeRepositoriesResponseDeserializer as",
    ),
    (
        "emulator: HTTP/1.1 server side (`axum::serve::handle_connection`)",
        "axum::serve::handle_connection",
    ),
    (
        "… emulator: the operation itself (`emulator::ops::dispatch`)",
        "ecr_facade::emulator::ops::dispatch",
    ),
    (
        "RPC envelope: end of call (`call_slot::Ending::finish`)",
        "ecr_facade::call_slot::Ending::finish",
    ),
];

fn perf_works() -> bool {
    procs::have("perf")
        && Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-o", "/dev/null", "--", "true"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn perf(duration: Duration, warmup_calls: u64, scratch: &Path) -> anyhow::Result<Vec<Samples>> {
    let mut facade = procs::spawn_facade(
        &procs::facade_bin(),
        &[],
        &SERVE,
        &[],
        Stdout::File(&scratch.join("facade-perf.log")),
        Duration::from_secs(30),
    )?;
    facade.child.discard_output();
    let mut results = Vec::new();
    for (label, rpc) in [
        ("facade: GetAuthorizationToken (cached)", Rpc::Token),
        (
            "facade + in-process emulator: DescribeRepositories",
            Rpc::Describe,
        ),
    ] {
        let body = scratch.join(format!("{rpc:?}.grpc-body"));
        std::fs::write(&body, rpc.framed_body())?;
        let warm = load::h2load(facade.addr, rpc, &body, warmup_calls, 16, 16)?;
        // Enough calls to outlast the sampling window.
        let calls = (warm.requests_per_sec * (duration.as_secs_f64() + 1.0)) as u64;
        let file = scratch.join(format!("perf.{rpc:?}.data"));
        let mut recorder = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", "1999", "-p"])
            .arg(facade.child.pid().to_string())
            .arg("-o")
            .arg(&file)
            .args(["--", "sleep", &format!("{:.2}", duration.as_secs_f64())])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let seen = load::h2load(facade.addr, rpc, &body, calls, 16, 16)?;
        ensure!(seen.failed == 0, "{label}: h2load failures under perf");
        ensure!(recorder.wait()?.success(), "perf record failed");
        results.push(report(label, &file)?);
    }
    facade.child.stop(Duration::from_secs(10))?;
    let _ = std::fs::remove_file(scratch.join("facade-perf.log"));
    Ok(results)
}

fn report(label: &'static str, file: &Path) -> anyhow::Result<Samples> {
    let output = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--no-children",
            "--sort",
            "dso,sym",
            "-i",
        ])
        .arg(file)
        .stderr(std::process::Stdio::null())
        .output()?;
    ensure!(output.status.success(), "perf report failed");
    let text = String::from_utf8_lossy(&output.stdout);
    let samples = text
        .lines()
        .find_map(|l| l.strip_prefix("# Samples: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| {
            let scale = if n.ends_with('K') { 1000.0 } else { 1.0 };
            n.trim_end_matches('K')
                .parse::<f64>()
                .ok()
                .map(|v| (v * scale) as u64)
        })
        .unwrap_or(0);
    let mut symbols = Vec::new();
    let mut components: BTreeMap<String, f64> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let mut words = line.split_whitespace();
        let Some(share) = words
            .next()
            .and_then(|p| p.strip_suffix('%')?.parse::<f64>().ok())
        else {
            continue;
        };
        let Some(dso) = words.next() else { continue };
        let _kind = words.next();
        let symbol = words.collect::<Vec<_>>().join(" ");
        *components.entry(component(dso, &symbol)).or_default() += share;
        symbols.push((share, dso.to_owned(), symbol));
    }
    symbols.truncate(15);
    let mut components: Vec<(f64, String)> = components.into_iter().map(|(c, s)| (s, c)).collect();
    components.sort_by(|a, b| b.0.total_cmp(&a.0));
    Ok(Samples {
        label,
        samples,
        components,
        symbols,
        file: file.to_owned(),
    })
}

/// A coarse owner for one sampled symbol.
fn component(dso: &str, symbol: &str) -> String {
    if dso.contains("kernel") {
        return "kernel (syscalls, TCP, scheduling)".into();
    }
    if dso.starts_with("libc") {
        let allocator = [
            "malloc",
            "free",
            "_int_",
            "realloc",
            "unlink_chunk",
            "consolidate",
            "tcache",
        ];
        return if allocator.iter().any(|a| symbol.contains(a)) {
            "allocator (glibc malloc/free)".into()
        } else if symbol.contains("mem") || symbol.contains("str") {
            "memcpy/memcmp".into()
        } else {
            "libc, other".into()
        };
    }
    if dso.contains("vdso") {
        return "clock_gettime (vdso)".into();
    }
    // jemalloc, linked in as the global allocator (symbols prefixed by
    // tikv-jemalloc-sys).
    if symbol.starts_with("_rjem_") || symbol.starts_with("je_") || symbol.contains("jemalloc") {
        return "allocator (jemalloc)".into();
    }
    let path = symbol
        .trim_start_matches('<')
        .trim_start_matches("&mut ")
        .trim_start_matches('&');
    let krate = path.split("::").next().unwrap_or(path);
    match krate {
        "ecr_facade" => "ecr_facade (own code)".into(),
        "core" | "alloc" | "std" => format!("{krate} (std library: fmt, collections, …)"),
        k if k.starts_with("aws_") => "aws sdk (aws_*)".into(),
        k if k.starts_with("tracing") => "tracing, tracing_subscriber".into(),
        k if k.starts_with("0x") || k.is_empty() => "unresolved".into(),
        k => k.to_owned(),
    }
}
