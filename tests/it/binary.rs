//! The `ecr-facade` binary as an operator runs it: flags and env vars, JSON
//! logs with one line per RPC, SIGTERM → drain → exit 0; and in its
//! submodules: hostile callers (`attacks`, measured by `reliability`), no
//! password in trace logs (`logs`), flags refused at startup (`startup`).

mod attacks;
mod harness;
mod logs;
mod reliability;
mod startup;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use crate::common::binary::{BIN, listen_address, registry_token, terminate};
use crate::common::{http_get, moto};
use ecr_facade::pb;
use ecr_facade::pb::ecr_service_client::EcrServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::Value;
use tokio::sync::mpsc::UnboundedReceiver;
use tonic::transport::Channel;

#[test]
fn help_documents_every_flag_with_its_default() {
    let output = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--listen",
        "--endpoint-url",
        "--region",
        "--log-format",
        "--max-attempts",
        "--token-min-ttl",
        "--max-layer-digests",
        "--max-request-bytes-in-flight",
        "--upstream-concurrency",
        "--drain-timeout",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    for default in [
        "127.0.0.1:50051",
        "6h",
        "[default: 2000]",
        "[default: 32MiB]",
        "[default: 8]",
        "ECR_FACADE_LISTEN",
    ] {
        assert!(help.contains(default), "{default} missing from:\n{help}");
    }
}

/// `ecr-facade serve` in front of moto with JSON logs on stdout, AWS keys
/// in its environment (which must never be logged).
fn serve_on_moto_logging_json() -> Child {
    Command::new(BIN)
        .arg("serve")
        .env("ECR_FACADE_LISTEN", "127.0.0.1:0")
        .env("ECR_FACADE_METRICS_LISTEN", "127.0.0.1:0")
        .env("ECR_FACADE_LOG_FORMAT", "json")
        .env("ECR_FACADE_ENDPOINT_URL", &moto().url)
        .env("ECR_FACADE_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// One DescribeRepositories served and one CreateRepository refused as
/// invalid, through the facade at `addr`.
async fn one_served_one_refused(addr: &str) {
    let mut client = pb::ecr_service_client::EcrServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    client
        .describe_repositories(pb::DescribeRepositoriesRequest::default())
        .await
        .unwrap();
    let refused = client
        .create_repository(pb::CreateRepositoryRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
}

/// The log lines of the `rpc` span that name `method`.
fn rpc_lines<'a>(lines: &'a [Value], method: &str) -> impl Iterator<Item = &'a Value> {
    let method = format!("/ecr.v1.EcrService/{method}");
    lines
        .iter()
        .filter(move |v| v["span"]["name"] == "rpc" && v["span"]["method"] == *method)
}

/// Asserts the JSON log `rest` has one line per RPC with its method, code,
/// latency and request id.
fn assert_one_line_per_rpc(rest: &[String]) {
    let lines: Vec<Value> = rest
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .collect();
    assert!(
        rpc_lines(&lines, "DescribeRepositories").next().is_some(),
        "{rest:#?}"
    );
    let refused_line = rpc_lines(&lines, "CreateRepository")
        .next()
        .expect("a line for the refused call");
    assert_eq!(
        refused_line["span"]["code"], "InvalidArgument",
        "{refused_line}"
    );
    assert!(
        refused_line["span"]["latency_ms"].is_number(),
        "{refused_line}"
    );
    let described = rpc_lines(&lines, "DescribeRepositories").next().unwrap();
    assert_eq!(described["span"]["code"], "Ok", "{described}");
    assert_eq!(
        described["span"]["request_id"].as_str().map(str::len),
        Some(36),
        "{described}"
    );
}

// Multi-threaded: the blocking `wait` below must not stall the client's
// connection task, which answers the server's GOAWAY during the drain.
#[tokio::test(flavor = "multi_thread")]
async fn serve_logs_json_answers_and_exits_zero_on_sigterm() {
    let mut child = serve_on_moto_logging_json();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (addr, metrics_url) = listen_address(&mut lines);
    let metrics_url = metrics_url.expect("metrics address logged before the listen line");
    let token = registry_token(&addr).await;
    one_served_one_refused(&addr).await;

    let (status, exposition) = http_get(&metrics_url).await;
    let exposition = String::from_utf8(exposition).unwrap();
    assert_eq!(status, 200, "{exposition}");
    assert!(
        exposition.contains(r#"ecr_facade_rpc_requests_total{method="/ecr.v1.EcrService/CreateRepository",code="InvalidArgument"} 1"#),
        "{exposition}"
    );

    assert_eq!(terminate(&mut child), Some(0), "graceful exit");

    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert_one_line_per_rpc(&rest);
    let everything = rest.join("\n");
    assert!(everything.contains("shutting down"), "{everything}");
    for secret in [token.as_str(), "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI"] {
        assert!(!everything.contains(secret), "a secret reached the logs");
    }
}

/// An OTLP collector that hands every export to the test.
struct Collector(tokio::sync::mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(Default::default()))
    }
}

/// An OTLP collector on a loopback port: its address, and every export it
/// receives.
async fn start_collector() -> (SocketAddr, UnboundedReceiver<ExportTraceServiceRequest>) {
    let (spans_tx, spans_rx) = tokio::sync::mpsc::unbounded_channel();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(Collector(spans_tx)))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (collector, spans_rx)
}

/// `ecr-facade serve --emulator` exporting its spans to `collector`: the
/// child and its listen address.
fn serve_emulator_exporting_to(collector: SocketAddr) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--emulator",
            "--listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ])
        .env("ECR_FACADE_OTLP_ENDPOINT", format!("http://{collector}"))
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (addr, _) = listen_address(&mut lines);
    (child, addr)
}

/// DescribeRepositories with the trace-context header `name: value`.
async fn describe_in_trace(
    client: &mut EcrServiceClient<Channel>,
    name: &'static str,
    value: &str,
) {
    let mut request = tonic::Request::new(pb::DescribeRepositoriesRequest::default());
    request.metadata_mut().insert(name, value.parse().unwrap());
    client.describe_repositories(request).await.unwrap();
}

/// Every span the collector received so far.
fn collected(exports: &mut UnboundedReceiver<ExportTraceServiceRequest>) -> Vec<Span> {
    let mut spans = Vec::new();
    while let Ok(export) = exports.try_recv() {
        for resource in export.resource_spans {
            for scope in resource.scope_spans {
                spans.extend(scope.spans);
            }
        }
    }
    spans
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `rpc` span of trace `trace` among `spans`.
fn rpc_in<'a>(spans: &'a [Span], trace: &str) -> &'a Span {
    spans
        .iter()
        .find(|s| s.name == "rpc" && hex(&s.trace_id) == trace)
        .unwrap_or_else(|| {
            panic!(
                "no rpc span in trace {trace} among {:?}",
                spans
                    .iter()
                    .map(|s| (&s.name, hex(&s.trace_id)))
                    .collect::<Vec<_>>()
            )
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn rpc_spans_are_exported_over_otlp_under_the_callers_trace() {
    let (collector, mut exports) = start_collector().await;
    let (mut child, addr) = serve_emulator_exporting_to(collector);
    let mut client = EcrServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap();
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    describe_in_trace(&mut client, "traceparent", traceparent).await;
    // A caller that sends B3 only (no traceparent).
    let b3 = "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1";
    describe_in_trace(&mut client, "b3", b3).await;
    drop(client);
    assert_eq!(terminate(&mut child), Some(0));

    // Spans are flushed on shutdown.
    let spans = collected(&mut exports);
    let rpc = rpc_in(&spans, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&rpc.parent_span_id), "00f067aa0ba902b7");
    let b3 = rpc_in(&spans, "80f198ee56343ba864fe8b2a57d3eff7");
    assert_eq!(hex(&b3.parent_span_id), "e457b5a2e4d86bd1");
    let method = rpc
        .attributes
        .iter()
        .find(|a| a.key == "method")
        .and_then(|a| a.value.as_ref())
        .map(|v| format!("{v:?}"));
    assert!(
        method.is_some_and(|m| m.contains("DescribeRepositories")),
        "{rpc:?}"
    );
}
