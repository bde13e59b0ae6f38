//! Each scenario's result as a markdown block, with its targets judged
//! (a smoke run, in a debug build with tiny counts, judges nothing).

use std::fmt::Write as _;
use std::time::Duration;

use crate::footprint::STREAMS_PER_CONNECTION;
use crate::procs::Rss;
use crate::report::{RunInfo, Table};
use crate::stats::{self, mb, ms, ms_diff, thousands, verdict};
use crate::throughput::Server;
use crate::{fanout, footprint, latency, layer_io, profile, throughput, transfer};

fn judged(smoke: bool, met: bool) -> &'static str {
    if smoke {
        "not judged (smoke)"
    } else {
        verdict(met)
    }
}

fn head(title: &str, info: &RunInfo) -> String {
    format!("### {title}\n\n{}\n\n", info.line)
}

pub fn latency(
    info: &RunInfo,
    rows: Vec<latency::Row>,
    params: &latency::Params,
    smoke: bool,
) -> String {
    let mut out = head(
        "1. Added latency — DescribeRepositories, facade vs direct aws-sdk-ecr",
        info,
    );
    let _ = writeln!(
        out,
        "Open loop at a fixed rate per path, three paths interleaved in one run: through the facade \
         ({} connections), directly with aws-sdk-ecr (the facade's client settings), and a bare tonic \
         server answering a constant DescribeRepositories on the same server runtime (the gRPC hop \
         alone, with no upstream call). Latency from the scheduled send time. Added = facade − direct. \
         Targets: added p50 ≤ 0.100 ms, added p99 ≤ 0.500 ms.\n",
        params.connections
    );
    let mut table = Table::new(&[
        "rate per path",
        "calls per path",
        "facade p50 / p90 / p99 (ms)",
        "direct p50 / p90 / p99 (ms)",
        "**added** p50 / p90 / p99 (ms)",
        "bare gRPC hop p50 / p90 / p99 (ms)",
        "p50 target",
        "p99 target",
    ]);
    let triple = |s: &mut crate::stats::Samples| [50.0, 90.0, 99.0].map(|p| s.percentile(p));
    for mut row in rows {
        let f = triple(&mut row.facade);
        let d = triple(&mut row.direct);
        let b = triple(&mut row.bare);
        let added = |i: usize| stats::diff_secs(f[i], d[i]);
        table.push(&[
            format!("{} /s", row.rate),
            thousands(row.facade.len() as u64),
            format!("{} / {} / {}", ms(f[0]), ms(f[1]), ms(f[2])),
            format!("{} / {} / {}", ms(d[0]), ms(d[1]), ms(d[2])),
            format!(
                "**{} / {} / {}**",
                ms_diff(f[0], d[0]),
                ms_diff(f[1], d[1]),
                ms_diff(f[2], d[2])
            ),
            format!("{} / {} / {}", ms(b[0]), ms(b[1]), ms(b[2])),
            judged(smoke, added(0) <= 0.000_100).to_owned(),
            judged(smoke, added(2) <= 0.000_500).to_owned(),
        ]);
    }
    out.push_str(&table.finish());
    out
}

pub fn throughput(
    info: &RunInfo,
    outcome: &throughput::Outcome,
    params: &throughput::Params,
    smoke: bool,
) -> String {
    let mut out = head("2. Throughput — saturating unary load", info);
    let _ = writeln!(
        out,
        "Each server in its own process; load from `{}`; {} rounds, targets interleaved, median shown. \
         Every h2load call was checked on the server side (facade: `ecr_facade_rpc_requests_total` \
         by code; baseline: its count of answered calls), then a closed-loop tonic generator \
         ({} connections × {} in flight, {:.1} s per target, in the bench process) checked every \
         status itself. Target: cached token ≥ 90 % of the baseline's requests/s.\n",
        outcome.h2load_args,
        params.rounds,
        params.connections,
        params.streams_per_connection,
        params.closed_loop_for.as_secs_f64()
    );
    let baseline = outcome
        .rows
        .iter()
        .find(|r| r.server == Server::Baseline)
        .and_then(|r| r.h2load_rps);
    let mut table = Table::new(&[
        "server: call",
        "h2load req/s (rounds)",
        "% of baseline",
        "server CPU per call",
        "h2load calls: OK (server-checked) / failed",
        "tonic generator req/s",
        "tonic generator: OK / non-OK",
    ]);
    for row in &outcome.rows {
        let rps = row.h2load_rps.map_or_else(
            || "h2load not installed".to_owned(),
            |median| {
                let rounds: Vec<String> = row
                    .h2load_rounds
                    .iter()
                    .map(|r| format!("{r:.0}"))
                    .collect();
                format!("**{median:.0}** ({})", rounds.join(", "))
            },
        );
        let share = match (row.h2load_rps, baseline) {
            (Some(r), Some(b)) if b > 0.0 => format!("{:.0} %", r / b * 100.0),
            _ => "–".to_owned(),
        };
        table.push(&[
            row.label.to_owned(),
            rps,
            share,
            row.cpu_us_per_call
                .map_or_else(|| "–".to_owned(), |c| format!("{c:.1} µs")),
            format!("{} / 0", thousands(row.server_ok)),
            format!("{:.0}", row.closed.requests_per_sec()),
            format!("{} / {}", thousands(row.closed.ok), row.closed.failures()),
        ]);
    }
    out.push_str(&table.finish());
    let token = outcome
        .rows
        .iter()
        .find(|r| r.server == Server::Facade && r.rpc == crate::load::Rpc::Token)
        .and_then(|r| r.h2load_rps);
    if let Some(compared) = &outcome.compared {
        let _ = writeln!(
            out,
            "\nCompared build (`{}`): `{}`.",
            crate::throughput::COMPARE_ENV,
            compared.display()
        );
    }
    if let (Some(token), Some(baseline)) = (token, baseline) {
        let share = token / baseline;
        let _ = writeln!(
            out,
            "\nCached token at {:.0} % of the baseline: target {}. Failed calls: 0 (every h2load \
             success matched a server-side OK; the tonic generator saw no non-OK status).",
            share * 100.0,
            judged(smoke, share >= 0.9)
        );
    }
    out
}

pub fn fanout(info: &RunInfo, o: &fanout::Outcome, params: &fanout::Params, smoke: bool) -> String {
    let mut out = head("3. Fan-out — BatchCheckLayerAvailability", info);
    let _ = writeln!(
        out,
        "One stream of {} digests ({} upstream batches of ≤ 100) with {} ms injected into every \
         upstream call (emulator fault `latency`), emulator and facade in-process on one 2-worker \
         runtime; median of {} streams per concurrency. Ideal = ceil(batches / c) × {} ms. \
         Cores busy: CPU time of the bench process (client, facade and emulator) during the median \
         stream over its wall time; near the machine's core count the stream is CPU-bound. Targets: \
         total ≤ 1.1 × ideal, first message ≤ 25 ms.\n",
        thousands(params.digests as u64),
        params.digests.div_ceil(100),
        params.latency.as_millis(),
        params.repeats,
        params.latency.as_millis(),
    );
    let mut table = Table::new(&[
        "upstream concurrency c",
        "batches",
        "ideal (ms)",
        "total (ms)",
        "total / ideal",
        "total / (waves × measured batch latency)",
        "first message (ms)",
        "messages",
        "upstream calls",
        "cores busy (bench process)",
        "total target",
        "first-message target",
    ]);
    for row in &o.rows {
        let ratio = row.total.as_secs_f64() / row.ideal.as_secs_f64();
        let waves = row.batches.div_ceil(row.concurrency) as f64;
        let measured = row.total.as_secs_f64() / (waves * o.direct_batch.as_secs_f64());
        table.push(&[
            row.concurrency.to_string(),
            row.batches.to_string(),
            ms(row.ideal),
            ms(row.total),
            format!("{ratio:.3}"),
            format!("{measured:.3}"),
            ms(row.first_message),
            row.messages.to_string(),
            row.upstream_calls.to_string(),
            format!("{:.2}", row.cores_busy),
            judged(smoke, ratio <= 1.1).to_owned(),
            judged(smoke, row.first_message <= Duration::from_millis(25)).to_owned(),
        ]);
    }
    out.push_str(&table.finish());
    let _ = writeln!(
        out,
        "\nCalibration: one upstream batch of 100 digests called directly with aws-sdk-ecr against \
         the same emulator takes {} ms with the fault (median of 5), not {} ms, and {} ms without it. \
         Without the fault, the {}-digest stream at c = 1 gives its first message after {} ms — so \
         {} ms pass before the first upstream answer is the facade's and the transport's (request \
         transfer and decoding, validation, deduplication, batching) — and ends after {} ms. In-process, \
         decoding the request takes {} ms and validating it {} ms (median of 5).",
        ms(o.direct_batch),
        params.latency.as_millis(),
        ms(o.unfaulted_batch),
        thousands(params.digests as u64),
        ms(o.unfaulted_first),
        ms(o.unfaulted_first.saturating_sub(o.unfaulted_batch)),
        ms(o.unfaulted_total),
        ms(o.decode),
        ms(o.validate),
    );
    out
}

pub fn footprint(info: &RunInfo, o: &footprint::Outcome, smoke: bool) -> String {
    let mut out = head("4. Footprint — release binary", info);
    let mut starts = o.start_to_serving.clone();
    starts.sort();
    let median = starts[starts.len() / 2];
    let worst = *starts.last().expect("at least one start");
    let _ = writeln!(
        out,
        "Start: spawn of `ecr-facade serve --emulator --listen 127.0.0.1:0` to the first \
         grpc.health.v1 Check answering SERVING (polled every 1 ms), {} starts: **{} ms** median, \
         {} ms worst; target ≤ 100 ms: {}.\n\n\
         Memory from /proc in MB of 10^6 bytes: RSS (VmRSS, judged against the targets), the \
         anonymous part of it (RssAnon: heap and stacks; the rest is the binary's own pages, which \
         vary with the page cache) and the peak (VmHWM). Streams: BatchCheckLayerAvailability calls \
         of one digest each, held open by 8 s of emulator latency on their one upstream call, {} per \
         connection, RSS read once the facade's `ecr_facade_streams_in_flight` gauge showed all of \
         them; {} fresh processes per layout, medians shown (RSS range of the rounds in brackets).\n",
        starts.len(),
        ms(median),
        ms(worst),
        judged(smoke, median <= Duration::from_millis(100)),
        STREAMS_PER_CONNECTION,
        o.rounds,
    );
    let mut table = Table::new(&["state", "RSS", "anonymous", "peak", "target", "verdict"]);
    let mb = |kib: u64| format!("{} MB", mb(kib));
    let mut push = |state: String, rss: &Rss, range: Option<(u64, u64)>, target: Option<u64>| {
        let value = match range {
            Some((low, high)) if low != high => {
                format!("{} ({}–{})", mb(rss.total), mb(low), mb(high))
            }
            _ => mb(rss.total),
        };
        table.push(&[
            state,
            value,
            mb(rss.anon),
            mb(rss.peak),
            target.map_or_else(|| "–".to_owned(), |t| format!("≤ {t} MB")),
            target
                .map_or("–", |t| judged(smoke, rss.total * 1024 <= t * 1_000_000))
                .to_owned(),
        ]);
    };
    push(
        "idle, `serve --emulator` (facade + emulator)".into(),
        &o.idle_combined,
        None,
        Some(30),
    );
    push(
        "idle, facade alone (`serve --endpoint-url`)".into(),
        &o.separate.idle,
        None,
        Some(30),
    );
    let streams = thousands(o.streams as u64);
    push(
        format!("{streams} open streams, facade alone"),
        &o.separate.open,
        Some(o.separate.open_range_kib),
        Some(100),
    );
    push(
        format!("{streams} open streams, `serve --emulator`"),
        &o.combined.open,
        Some(o.combined.open_range_kib),
        Some(100),
    );
    push(
        "the separate emulator process, meanwhile".into(),
        &o.emulator,
        None,
        None,
    );
    push(
        "after the streams closed, facade alone".into(),
        &o.separate.after,
        None,
        None,
    );
    push(
        "after the streams closed, `serve --emulator`".into(),
        &o.combined.after,
        None,
        None,
    );
    out.push_str(&table.finish());
    out
}

pub fn profile(info: &RunInfo, o: &profile::Outcome) -> String {
    let mut out = head("5. Profile — the facade under scenario 2's load", info);
    for skipped in &o.skipped {
        let _ = writeln!(out, "- skipped: {skipped}");
    }
    if !o.skipped.is_empty() {
        out.push('\n');
    }
    if !o.instructions.is_empty() {
        out.push_str(
            "Instructions per call (callgrind, user space, whole process, after warm-up):\n\n",
        );
        let mut table = Table::new(&["server: call", "calls", "instructions per call", "raw file"]);
        for i in &o.instructions {
            table.push(&[
                i.label.to_owned(),
                thousands(i.calls),
                thousands(i.per_call),
                format!("`{}`", i.file.display()),
            ]);
        }
        out.push_str(&table.finish());
        for i in &o.instructions {
            if i.probes.is_empty() {
                continue;
            }
            let _ = writeln!(
                out,
                "\nWhere the instructions of one call go, {} (inclusive: a line counts what it \
                 calls; “…” lines are part of the line above):\n",
                i.label
            );
            let mut table = Table::new(&["instructions per call", "share", "in"]);
            for (label, per_call) in &i.probes {
                table.push(&[
                    thousands(*per_call),
                    format!("{:.1} %", *per_call as f64 / i.per_call as f64 * 100.0),
                    label.clone(),
                ]);
            }
            out.push_str(&table.finish());
        }
    }
    for s in &o.samples {
        let _ = writeln!(
            out,
            "\nCPU time by component (perf cpu-clock, {} samples), {}; raw `{}`:\n",
            thousands(s.samples),
            s.label,
            s.file.display()
        );
        let mut table = Table::new(&["share", "component"]);
        for (share, component) in s.components.iter().take(12) {
            table.push(&[format!("{share:.1} %"), component.clone()]);
        }
        out.push_str(&table.finish());
        let _ = writeln!(out, "\nHottest symbols (self time):\n");
        let mut table = Table::new(&["share", "where", "symbol"]);
        for (share, dso, symbol) in s.symbols.iter().take(10) {
            let short: String = symbol.chars().take(110).collect();
            table.push(&[
                format!("{share:.1} %"),
                dso.clone(),
                format!("`{}`", short.replace('|', "\\|")),
            ]);
        }
        out.push_str(&table.finish());
    }
    out
}

pub fn transfer(
    info: &RunInfo,
    o: &transfer::Outcome,
    params: &transfer::Params,
    smoke: bool,
) -> String {
    let mut out = head(
        "6. Layer transfer — PushLayer and PullLayer vs the direct path",
        info,
    );
    let layer_mib = params.layer_bytes / (1024 * 1024);
    let _ = writeln!(
        out,
        "One {layer_mib} MiB layer of random bytes, moved by the bench process; `ecr-facade \
         emulator` and `ecr-facade serve --endpoint-url` (default flags) in processes of their own. \
         Direct push: aws-sdk-ecr InitiateLayerUpload, UploadLayerPart in {} MiB parts one after \
         the other, CompleteLayerUpload (the facade's client settings). Facade push: PushLayer with \
         digest and size in the header, {} KiB chunks. Direct pull: GetDownloadUrlForLayer, then one \
         HTTP/1.1 GET of the URL (hyper). Facade pull: PullLayer (the facade fetches the URL, checks \
         the sha256 and streams 1 MiB messages). Clients {} the pulled bytes. {} rounds, each into \
         fresh repositories, the path that goes first alternating; median MB/s (10^6 bytes/s) with \
         the rounds in brackets. Target: facade ≥ 90 % of direct.\n",
        layer_io::PART_BYTES / (1024 * 1024),
        params.chunk_bytes / 1024,
        if params.check_pulled {
            "count and hash"
        } else {
            "count (without hashing)"
        },
        params.rounds,
    );
    let mut table = Table::new(&[
        "transfer",
        "direct MB/s",
        "facade MB/s",
        "**facade / direct**",
        "target ≥ 90 %",
    ]);
    let rounds = |rate: &transfer::Rate| {
        let each: Vec<String> = rate.rounds.iter().map(|r| format!("{r:.1}")).collect();
        format!("**{:.1}** ({})", rate.median(), each.join(", "))
    };
    for (name, direct, facade) in [
        ("push", &o.push_direct, &o.push_facade),
        ("pull", &o.pull_direct, &o.pull_facade),
    ] {
        let ratio = facade.median() / direct.median();
        table.push(&[
            name.to_owned(),
            rounds(direct),
            rounds(facade),
            format!("**{:.0} %**", ratio * 100.0),
            judged(smoke, ratio >= 0.9).to_owned(),
        ]);
    }
    out.push_str(&table.finish());
    let target = params.concurrent as u64 * layer_io::PART_BYTES as u64 + 50_000_000;
    let _ = writeln!(
        out,
        "\nFacade memory with {n} transfers of the layer at once (each on its own connection, \
         into or from its own repository), a fresh facade process per phase: RSS idle before, the \
         largest VmRSS and RssAnon sampled every 10 ms, VmHWM at the end (what the target \
         judges), in MB of 10^6 bytes. Target: ≤ {n} × part size + 50 MB = {} MB.\n",
        mb(target / 1024),
        n = params.concurrent,
    );
    let mut table = Table::new(&[
        "phase",
        "RSS idle",
        "**peak RSS** (sampled)",
        "peak anonymous",
        "VmHWM",
        "samples",
        "wall time",
        "aggregate MB/s",
        "target",
    ]);
    for (name, m) in [
        (
            format!("{} concurrent PushLayer", params.concurrent),
            &o.pushes,
        ),
        (
            format!("{} concurrent PullLayer", params.concurrent),
            &o.pulls,
        ),
    ] {
        table.push(&[
            name,
            format!("{} MB", mb(m.idle.total)),
            format!("**{} MB**", mb(m.peak.total)),
            format!("{} MB", mb(m.peak.anon)),
            format!("{} MB", mb(m.peak.peak)),
            thousands(m.samples as u64),
            format!("{:.1} s", m.wall.as_secs_f64()),
            format!("{:.1}", m.aggregate_mb_s),
            judged(smoke, m.peak.peak * 1024 <= target).to_owned(),
        ]);
    }
    out.push_str(&table.finish());
    out
}
