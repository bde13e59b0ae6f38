//! Scenario 2, throughput: saturating load from h2load on the facade's
//! cached GetAuthorizationToken and forwarded DescribeRepositories, and on
//! the bare tonic baseline ([`crate::echo`]), each server in its own process
//! (`ecr-facade serve --emulator`, default flags and logging).
//!
//! h2load counts a gRPC error as a success (HTTP 200), so every h2load run
//! is checked on the server side: the facade's
//! `ecr_facade_rpc_requests_total{method,code}` and the baseline's count of
//! answered calls must grow by exactly h2load's successes, with no other
//! code. The closed-loop tonic generator then checks every status itself.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use ecr_facade::pb;
use prost::Message;
use tokio::runtime::Runtime;

use crate::load::{self, Rpc};
use crate::procs::{self, Child, Served, Stdout};
use crate::stack;
use crate::stats::median_f64;

/// How hard and how long.
#[derive(Debug, Clone)]
pub struct Params {
    /// h2load rounds (targets interleaved); the median is reported.
    pub rounds: usize,
    /// Wall time each measured h2load run aims at.
    pub run_for: Duration,
    /// Calls of the warm-up run that sizes the measured ones.
    pub warmup_calls: u64,
    pub connections: usize,
    pub streams_per_connection: usize,
    /// Length of each status-checked tonic run.
    pub closed_loop_for: Duration,
    /// Whether h2load must be there (a smoke run does without).
    pub require_h2load: bool,
}

/// One target's result.
#[derive(Debug)]
pub struct Row {
    pub label: &'static str,
    pub rpc: Rpc,
    pub server: Server,
    /// Median h2load requests/s (`None` without h2load).
    pub h2load_rps: Option<f64>,
    /// Every h2load round's requests/s.
    pub h2load_rounds: Vec<f64>,
    /// Calls h2load saw succeed, and the server's count of OK answers.
    pub h2load_calls: u64,
    pub server_ok: u64,
    /// CPU time of the server process per call (all its threads), µs.
    pub cpu_us_per_call: Option<f64>,
    pub closed: load::Closed,
}

/// The scenario's result.
#[derive(Debug)]
pub struct Outcome {
    pub rows: Vec<Row>,
    pub h2load_args: String,
    /// The compared build, if any.
    pub compared: Option<PathBuf>,
}

/// Which server a target calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The bare tonic baseline.
    Baseline,
    /// `serve --emulator`, default flags (a log line per RPC).
    Facade,
    /// The same with [`QUIET_LOG`]: no per-RPC span or log line.
    QuietFacade,
    /// The build named by `ECR_FACADE_BENCH_COMPARE`, default flags.
    Compared,
}

/// `RUST_LOG` that keeps the startup lines and drops the RPC envelope's
/// span and per-RPC line.
pub const QUIET_LOG: &str = "info,ecr_facade::rpc_layer=warn";

/// Another build of the binary to measure alongside, interleaved in the
/// same rounds (a before/after comparison immune to the machine's drift).
pub const COMPARE_ENV: &str = "ECR_FACADE_BENCH_COMPARE";

struct Target {
    label: &'static str,
    rpc: Rpc,
    server: Server,
}

fn targets(compare: bool) -> Vec<Target> {
    let mut targets = vec![
        Target {
            label: "bare tonic baseline (constant GetAuthorizationToken)",
            rpc: Rpc::Token,
            server: Server::Baseline,
        },
        Target {
            label: "facade: GetAuthorizationToken (cached)",
            rpc: Rpc::Token,
            server: Server::Facade,
        },
        Target {
            label: "facade: GetAuthorizationToken (cached), per-RPC span and log line off",
            rpc: Rpc::Token,
            server: Server::QuietFacade,
        },
        Target {
            label: "facade: DescribeRepositories (forwarded to the in-process emulator)",
            rpc: Rpc::Describe,
            server: Server::Facade,
        },
    ];
    if compare {
        targets.push(Target {
            label: "compared build: GetAuthorizationToken (cached)",
            rpc: Rpc::Token,
            server: Server::Compared,
        });
        targets.push(Target {
            label: "compared build: DescribeRepositories",
            rpc: Rpc::Describe,
            server: Server::Compared,
        });
    }
    targets
}

/// The servers of one run.
struct Servers {
    echo: Child,
    echo_addr: SocketAddr,
    facade: Served,
    quiet: Served,
    compared: Option<Served>,
}

impl Servers {
    fn facade(&self, server: Server) -> &Served {
        match server {
            Server::QuietFacade => &self.quiet,
            Server::Compared => self.compared.as_ref().expect("compared build started"),
            Server::Baseline | Server::Facade => &self.facade,
        }
    }

    fn addr(&self, server: Server) -> SocketAddr {
        match server {
            Server::Baseline => self.echo_addr,
            other => self.facade(other).addr,
        }
    }

    fn pid(&self, server: Server) -> u32 {
        match server {
            Server::Baseline => self.echo.pid(),
            other => self.facade(other).child.pid(),
        }
    }
}

/// Runs the scenario; `scratch` holds body, answer and log files.
pub fn run(client_rt: &Runtime, params: &Params, scratch: &Path) -> anyhow::Result<Outcome> {
    let use_h2load = procs::have("h2load");
    ensure!(
        use_h2load || !params.require_h2load,
        "h2load is missing: apt-get install nghttp2-client (scripts/bench does)"
    );
    let compared_bin = std::env::var_os(COMPARE_ENV).map(PathBuf::from);
    let main_bin = procs::facade_bin();
    let facade = spawn_served(&main_bin, &[], &scratch.join("facade.log"))?;
    let quiet = spawn_served(
        &main_bin,
        &[("RUST_LOG", QUIET_LOG)],
        &scratch.join("facade-quiet.log"),
    )?;
    let compared = compared_bin
        .as_deref()
        .map(|bin| spawn_served(bin, &[], &scratch.join("facade-compared.log")))
        .transpose()?;
    let (token_file, describe_file) = record_answers(client_rt, &facade, scratch)?;
    let mut echo = spawn_echo(&token_file, &describe_file)?;
    let echo_addr = echo
        .wait_for_field("listen", Duration::from_secs(10))?
        .parse()?;
    let mut servers = Servers {
        echo,
        echo_addr,
        facade,
        quiet,
        compared,
    };

    let targets = targets(compared_bin.is_some());
    let mut rows: Vec<Row> = targets
        .iter()
        .map(|t| Row {
            label: t.label,
            rpc: t.rpc,
            server: t.server,
            h2load_rps: None,
            h2load_rounds: Vec::new(),
            h2load_calls: 0,
            server_ok: 0,
            cpu_us_per_call: None,
            closed: load::Closed::default(),
        })
        .collect();

    if use_h2load {
        let mut sizes = Vec::new();
        for target in &targets {
            let body = body_file(scratch, target.rpc)?;
            let warm = run_checked(target, &body, params.warmup_calls, params, &mut servers)?;
            let n = (warm.0.requests_per_sec * params.run_for.as_secs_f64()) as u64;
            sizes.push(n.max(params.warmup_calls));
        }
        let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); targets.len()];
        for _ in 0..params.rounds {
            for (i, target) in targets.iter().enumerate() {
                let body = body_file(scratch, target.rpc)?;
                let (seen, server_ok, cpu_us) =
                    run_checked(target, &body, sizes[i], params, &mut servers)?;
                let row = &mut rows[i];
                row.h2load_rounds.push(seen.requests_per_sec);
                row.h2load_calls += seen.succeeded;
                row.server_ok += server_ok;
                cpu[i].push(cpu_us);
            }
        }
        for (row, cpu) in rows.iter_mut().zip(cpu) {
            row.h2load_rps = Some(median_f64(&row.h2load_rounds));
            row.cpu_us_per_call = Some(median_f64(&cpu));
        }
    }

    for (row, target) in rows.iter_mut().zip(&targets) {
        let closed = client_rt.block_on(load::closed_loop(
            servers.addr(target.server),
            target.rpc,
            params.connections,
            params.streams_per_connection,
            params.closed_loop_for,
        ))?;
        ensure!(
            closed.failures() == 0 && closed.ok > 0,
            "{}: {} calls OK, failures {:?}",
            target.label,
            closed.ok,
            closed.failed
        );
        row.closed = closed;
    }
    let Servers {
        echo,
        facade,
        quiet,
        compared,
        ..
    } = servers;
    for served in [Some(facade), Some(quiet), compared].into_iter().flatten() {
        let status = served.child.stop(Duration::from_secs(10))?;
        ensure!(status.success(), "the facade exited with {status}");
    }
    drop(echo);
    // A log line per call: these grow by megabytes per second.
    for log in ["facade.log", "facade-quiet.log", "facade-compared.log"] {
        let _ = std::fs::remove_file(scratch.join(log));
    }
    Ok(Outcome {
        rows,
        h2load_args: format!(
            "h2load -n <≈{}s of calls> -c {} -m {} -t 1 --data <framed request> \
             -H 'content-type: application/grpc' -H 'te: trailers'",
            params.run_for.as_secs(),
            params.connections,
            params.streams_per_connection
        ),
        compared: compared_bin,
    })
}

/// One h2load run, checked against the server's own count of OK answers.
/// Returns h2load's view, the server's OK count and CPU µs per call.
fn run_checked(
    target: &Target,
    body: &Path,
    total: u64,
    params: &Params,
    servers: &mut Servers,
) -> anyhow::Result<(load::H2load, u64, f64)> {
    let pid = servers.pid(target.server);
    let before = server_count(target, servers)?;
    let cpu_before = cpu_ticks(pid)?;
    let seen = load::h2load(
        servers.addr(target.server),
        target.rpc,
        body,
        total,
        params.connections,
        params.streams_per_connection,
    )?;
    let cpu_after = cpu_ticks(pid)?;
    let after = server_count(target, servers)?;
    let ok = after.0 - before.0;
    let other = after.1 - before.1;
    ensure!(
        seen.failed == 0 && seen.succeeded == total,
        "{}: h2load saw {} of {total} succeed and {} fail",
        target.label,
        seen.succeeded,
        seen.failed
    );
    ensure!(
        ok == total && other == 0,
        "{}: h2load sent {total} calls; the server answered {ok} OK and {other} with another code",
        target.label
    );
    let ticks = cpu_after.saturating_sub(cpu_before) as f64;
    let cpu_us = ticks / clock_ticks_per_sec() * 1e6 / total as f64;
    Ok((seen, ok, cpu_us))
}

/// (OK answers, other answers) the server has given so far.
fn server_count(target: &Target, servers: &mut Servers) -> anyhow::Result<(u64, u64)> {
    if target.server == Server::Baseline {
        servers.echo.send_line("count")?;
        let calls = servers
            .echo
            .wait_for_field("calls", Duration::from_secs(5))?;
        servers.echo.forget_seen();
        return Ok((calls.parse()?, 0));
    }
    let metrics = servers
        .facade(target.server)
        .metrics
        .context("facade metrics address")?;
    let exposition = procs::scrape(metrics)?;
    let method = format!(r#"method="{}""#, target.rpc.path());
    Ok(procs::counter(
        &exposition,
        "ecr_facade_rpc_requests_total",
        &[&method],
    ))
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat.rsplit_once(')').context("malformed stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Ok(fields[11].parse::<u64>()? + fields[12].parse::<u64>()?)
}

fn clock_ticks_per_sec() -> f64 {
    // SAFETY: sysconf reads a constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// `<bin> serve --emulator --seed-demo` with metrics, on ephemeral ports.
/// Its log lines go to `log`, a file, as a container runtime's would: the
/// facade never waits for a reader.
fn spawn_served(bin: &Path, env: &[(&str, &str)], log: &Path) -> anyhow::Result<Served> {
    let mut served = procs::spawn_facade(
        bin,
        &[],
        &[
            "serve",
            "--emulator",
            "--seed-demo",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
        env,
        Stdout::File(log),
        Duration::from_secs(30),
    )?;
    served.child.discard_output();
    Ok(served)
}

fn body_file(scratch: &Path, rpc: Rpc) -> anyhow::Result<PathBuf> {
    let path = scratch.join(format!("{rpc:?}.grpc-body"));
    std::fs::write(&path, rpc.framed_body())?;
    Ok(path)
}

/// The facade's answers to both calls, saved for the baseline to replay.
pub fn record_answers(
    client_rt: &Runtime,
    facade: &Served,
    scratch: &Path,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (token, repositories) = client_rt.block_on(async {
        let channel = stack::connections(facade.addr, 1).await?.remove(0);
        let mut client = stack::client(channel);
        let token = client
            .get_authorization_token(pb::GetAuthorizationTokenRequest::default())
            .await?
            .into_inner();
        let repositories = client
            .describe_repositories(load::describe_request())
            .await?
            .into_inner();
        anyhow::Ok((token, repositories))
    })?;
    ensure!(
        !token.authorization_data.is_empty() && !repositories.repositories.is_empty(),
        "the facade's answers are empty"
    );
    let token_file = scratch.join("token.answer");
    let describe_file = scratch.join("describe.answer");
    std::fs::write(&token_file, token.encode_to_vec())?;
    std::fs::write(&describe_file, repositories.encode_to_vec())?;
    Ok((token_file, describe_file))
}

fn spawn_echo(token: &Path, describe: &Path) -> anyhow::Result<Child> {
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.arg("--serve-echo").arg(token).arg(describe);
    Child::spawn(command, Stdout::Pipe)
}
