//! The ecr-facade benchmark suite (`harness = false`).
//!
//! - `scripts/bench` (`cargo bench --bench facade -- --write BENCHMARKS.md`):
//!   every scenario in a release build, results written to BENCHMARKS.md;
//! - `scripts/bench --smoke` (`cargo test --bench facade -- --smoke`): every
//!   scenario with tiny counts in a debug build, in seconds; prints the
//!   tables, judges no timing, fails when a scenario fails (e.g. a non-OK
//!   status);
//! - `--only 1,3`: a subset; `--write PATH`: update PATH's blocks.
//!
//! Run by `cargo test --all-targets` without either flag, it only says so:
//! the suite is compiled there, and run by the commands above.

mod echo;
mod fanout;
mod footprint;
mod latency;
mod layer_io;
mod load;
mod procs;
mod profile;
mod render;
mod report;
mod stack;
mod stats;
mod throughput;
mod transfer;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// What to run.
struct Options {
    smoke: bool,
    only: Option<Vec<u8>>,
    write: Option<PathBuf>,
    command: String,
}

fn parse_options(args: &[String]) -> anyhow::Result<Option<Options>> {
    let mut smoke = false;
    let mut bench = false;
    let mut only = None;
    let mut write = None;
    let mut command = None;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--bench" => bench = true,
            "--smoke" => smoke = true,
            "--only" => {
                let list = rest.next().context("--only needs a list, e.g. 1,3")?;
                only = Some(
                    list.split(',')
                        .map(|n| n.trim().parse::<u8>())
                        .collect::<Result<Vec<_>, _>>()
                        .context("--only takes scenario numbers 1-6")?,
                );
            }
            "--write" => write = Some(PathBuf::from(rest.next().context("--write needs a path")?)),
            "--command" => command = rest.next().cloned(),
            other if other.starts_with("--") => bail!("unknown flag {other}"),
            // cargo test passes name filters; they select nothing here.
            _ => {}
        }
    }
    if !bench && !smoke {
        return Ok(None);
    }
    let default_command = if smoke {
        "scripts/bench --smoke"
    } else {
        "scripts/bench"
    };
    Ok(Some(Options {
        smoke,
        only,
        write,
        command: command.unwrap_or_else(|| default_command.to_owned()),
    }))
}

/// The binary's allocator, so that the in-process scenarios (1, 3) and
/// the bare tonic baseline (this program re-executed) measure what the
/// facade binary does, and the baseline differs from the facade only in
/// the work the facade does.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve-echo") {
        let [token, describe] = &args[1..] else {
            bail!("--serve-echo TOKEN_ANSWER DESCRIBE_ANSWER");
        };
        return echo::serve(token.as_ref(), describe.as_ref());
    }
    let Some(options) = parse_options(&args)? else {
        println!(
            "facade benchmarks: run by `scripts/bench` (or `scripts/bench --smoke`); nothing to do"
        );
        return Ok(());
    };
    run(&options)
}

fn run(options: &Options) -> anyhow::Result<()> {
    let started = Instant::now();
    let wanted = |n: u8| options.only.as_ref().is_none_or(|o| o.contains(&n));
    let info = report::RunInfo::collect(&options.command);
    let client_rt = stack::runtime("bench-client", 2)?;
    let server_rt = stack::runtime("bench-server", 2)?;
    stack::install_log_sink()?;
    let scratch = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench");
    std::fs::create_dir_all(&scratch)?;
    let smoke = options.smoke;

    let mut blocks: Vec<(&str, anyhow::Result<String>)> = Vec::new();
    if wanted(1) {
        let params = if smoke {
            latency::Params {
                rates: vec![50, 200],
                calls_per_path: vec![20, 80],
                warmup: Duration::from_millis(100),
                connections: 16,
            }
        } else {
            latency::Params {
                rates: vec![100, 1000],
                calls_per_path: vec![2_000, 10_000],
                warmup: Duration::from_secs(1),
                connections: 16,
            }
        };
        let result = timed("1 added latency", || {
            latency::run(&client_rt, &server_rt, &params)
        });
        blocks.push((
            "latency",
            result.map(|rows| render::latency(&info, rows, &params, smoke)),
        ));
    }
    if wanted(2) {
        let params = if smoke {
            throughput::Params {
                rounds: 1,
                run_for: Duration::from_millis(300),
                warmup_calls: 200,
                connections: 4,
                streams_per_connection: 4,
                closed_loop_for: Duration::from_millis(300),
                require_h2load: false,
            }
        } else {
            throughput::Params {
                rounds: 5,
                run_for: Duration::from_secs(3),
                warmup_calls: 5_000,
                connections: 16,
                streams_per_connection: 16,
                closed_loop_for: Duration::from_secs(3),
                require_h2load: true,
            }
        };
        let result = timed("2 throughput", || {
            throughput::run(&client_rt, &params, &scratch)
        });
        blocks.push((
            "throughput",
            result.map(|o| render::throughput(&info, &o, &params, smoke)),
        ));
    }
    if wanted(3) {
        let params = if smoke {
            fanout::Params {
                digests: 1_000,
                latency: Duration::from_millis(2),
                concurrency: vec![1, 8, 32],
                repeats: 1,
            }
        } else {
            fanout::Params {
                digests: 10_000,
                latency: Duration::from_millis(20),
                concurrency: vec![1, 8, 32],
                repeats: 3,
            }
        };
        let result = timed("3 fan-out", || fanout::run(&client_rt, &server_rt, &params));
        blocks.push((
            "fanout",
            result.map(|o| render::fanout(&info, &o, &params, smoke)),
        ));
    }
    if wanted(4) {
        let params = if smoke {
            footprint::Params {
                starts: 1,
                streams: 50,
                stream_rounds: 1,
                settle: Duration::from_millis(100),
            }
        } else {
            footprint::Params {
                starts: 5,
                streams: 1_000,
                stream_rounds: 3,
                settle: Duration::from_secs(1),
            }
        };
        let result = timed("4 footprint", || footprint::run(&client_rt, &params));
        blocks.push((
            "footprint",
            result.map(|o| render::footprint(&info, &o, smoke)),
        ));
    }
    if wanted(5) {
        let params = if smoke {
            profile::Params::smoke()
        } else {
            profile::Params::full()
        };
        let result = timed("5 profile", || profile::run(&client_rt, &params, &scratch));
        blocks.push(("profile", result.map(|o| render::profile(&info, &o))));
    }

    if wanted(6) {
        let params = if smoke {
            transfer::Params {
                layer_bytes: 1024 * 1024,
                chunk_bytes: 256 * 1024,
                rounds: 1,
                concurrent: 2,
                check_pulled: true,
            }
        } else {
            transfer::Params {
                layer_bytes: 256 * 1024 * 1024,
                chunk_bytes: 1024 * 1024,
                rounds: 3,
                concurrent: 8,
                check_pulled: false,
            }
        };
        let result = timed("6 layer transfer", || transfer::run(&client_rt, &params));
        blocks.push((
            "transfer",
            result.map(|o| render::transfer(&info, &o, &params, smoke)),
        ));
    }

    let mut failed = Vec::new();
    for (id, block) in &blocks {
        match block {
            Ok(text) => println!("\n{text}"),
            Err(err) => {
                println!("\n### {id}: FAILED\n\n{err:#}");
                failed.push(*id);
            }
        }
    }
    if !failed.is_empty() {
        bail!("scenarios failed: {}", failed.join(", "));
    }
    if let Some(path) = &options.write {
        for (id, block) in blocks {
            report::write_block(path, id, &block?)?;
        }
        println!("\nwrote {}", path.display());
    }
    println!(
        "\nsuite finished in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    drop(server_rt);
    drop(client_rt);
    Ok(())
}

fn timed<T>(name: &str, scenario: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    eprintln!("[bench] scenario {name}…");
    let started = Instant::now();
    let result = scenario();
    eprintln!(
        "[bench] scenario {name}: {} in {:.1}s",
        if result.is_ok() { "done" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    result
}
