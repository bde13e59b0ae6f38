//! Fault injection and call counting, per operation.
//!
//! A [`FaultSpec`] adds latency and answers chosen calls with
//! `ThrottlingException` (400) or `ServerException` (500). Specs are keyed by
//! operation name, or `*` for every operation without its own spec. Each
//! call that names a known operation is counted (faulted calls included), so
//! tests can read the counts as "upstream calls".
//!
//! One more fault is about data rather than answers: `corrupt_downloads` on
//! `GetDownloadUrlForLayer` (or `*`) makes the download URLs serve bytes with
//! one byte altered (same length), as a damaged transfer would, so a client
//! that hashes what it downloads sees a sha256 mismatch.
//!
//! String form (CLI `--fault OP:SPEC`): comma-separated `latency=<humantime>`,
//! `throttle=<n>|all`, `fail=<n>|all`, `corrupt=all`, e.g.
//! `DescribeRepositories:latency=20ms,throttle=2` or
//! `GetDownloadUrlForLayer:corrupt=all`.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::operation::{OPERATION_COUNT, Operation};

/// What to do to one operation's calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultSpec {
    /// Added before every answer (faulted or not). JSON: `latency_ms`.
    #[serde(rename = "latency_ms", with = "millis")]
    pub latency: Duration,
    /// The next this-many calls get `ThrottlingException`.
    pub throttle_next: u32,
    /// Then the next this-many calls get `ServerException`.
    pub fail_next: u32,
    /// Every call gets `ThrottlingException`.
    pub throttle_all: bool,
    /// Every call (not throttled) gets `ServerException`.
    pub fail_all: bool,
    /// Download URLs serve their bytes with one byte altered (looked up for
    /// `GetDownloadUrlForLayer`, or `*`, when a URL is fetched).
    pub corrupt_downloads: bool,
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(value.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

/// The verdict for one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer normally.
    Pass,
    /// Answer `ThrottlingException`.
    Throttle,
    /// Answer `ServerException`.
    Fail,
}

impl FaultSpec {
    /// Parses the string form (`latency=20ms,throttle=2,fail=all`).
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let mut parsed = Self::default();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("fault item {item:?} is not key=value"))?;
            match key.trim() {
                "latency" => parsed.latency = humantime::parse_duration(value.trim())?,
                "throttle" => (parsed.throttle_next, parsed.throttle_all) = count(value)?,
                "fail" => (parsed.fail_next, parsed.fail_all) = count(value)?,
                "corrupt" => {
                    anyhow::ensure!(
                        value.trim() == "all",
                        "corrupt takes only \"all\", got {value:?}"
                    );
                    parsed.corrupt_downloads = true;
                }
                other => anyhow::bail!(
                    "unknown fault key {other:?} (expected latency, throttle, fail or corrupt)"
                ),
            }
        }
        Ok(parsed)
    }

    /// Decides one call, consuming a `*_next` budget.
    fn decide(&mut self) -> Verdict {
        if self.throttle_all {
            Verdict::Throttle
        } else if self.throttle_next > 0 {
            self.throttle_next -= 1;
            Verdict::Throttle
        } else if self.fail_all {
            Verdict::Fail
        } else if self.fail_next > 0 {
            self.fail_next -= 1;
            Verdict::Fail
        } else {
            Verdict::Pass
        }
    }
}

fn count(value: &str) -> anyhow::Result<(u32, bool)> {
    match value.trim() {
        "all" => Ok((0, true)),
        n => Ok((n.parse()?, false)),
    }
}

/// Parses a CLI `--fault` value: `OP:SPEC` with OP an ECR operation or `*`.
pub fn parse_fault_arg(arg: &str) -> anyhow::Result<(String, FaultSpec)> {
    let (op, spec) = arg
        .split_once(':')
        .ok_or_else(|| anyhow::anyhow!("expected OPERATION:SPEC, got {arg:?}"))?;
    let op = checked_key(op.trim())?;
    Ok((op, FaultSpec::parse(spec)?))
}

fn checked_key(op: &str) -> anyhow::Result<String> {
    anyhow::ensure!(
        op == WILDCARD || Operation::from_name(op).is_some(),
        "{op:?} is not an ECR operation (nor \"*\")"
    );
    Ok(op.to_owned())
}

/// The key of the spec that applies to operations without their own.
pub const WILDCARD: &str = "*";

/// The shared, mutable fault table and call counters. Cloning shares them.
#[derive(Debug, Clone, Default)]
pub struct FaultHandle {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    specs: Mutex<BTreeMap<String, FaultSpec>>,
    calls: [AtomicU64; OPERATION_COUNT],
}

impl FaultHandle {
    /// Sets (replaces) the spec of `op` (an operation name or `*`).
    pub fn set(&self, op: &str, spec: FaultSpec) -> anyhow::Result<()> {
        let key = checked_key(op)?;
        self.specs().insert(key, spec);
        Ok(())
    }

    /// Removes the spec of `op`.
    pub fn remove(&self, op: &str) {
        self.specs().remove(op);
    }

    /// Removes every spec.
    pub fn clear(&self) {
        self.specs().clear();
    }

    /// The specs in force (budgets as they stand).
    pub fn specs_snapshot(&self) -> BTreeMap<String, FaultSpec> {
        self.specs().clone()
    }

    /// Calls of `op` so far (0 for an unknown name).
    pub fn calls(&self, op: &str) -> u64 {
        Operation::from_name(op)
            .map(|op| self.inner.calls[op.index()].load(Ordering::Relaxed))
            .unwrap_or(0)
    }

    /// Calls of every operation so far.
    pub fn total_calls(&self) -> u64 {
        self.inner
            .calls
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Per-operation counts (operations never called are left out).
    pub fn calls_snapshot(&self) -> BTreeMap<&'static str, u64> {
        Operation::ALL
            .iter()
            .map(|op| {
                (
                    op.name(),
                    self.inner.calls[op.index()].load(Ordering::Relaxed),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    /// Sets every counter back to 0.
    pub fn reset_calls(&self) {
        for counter in &self.inner.calls {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// Counts one call of `op`.
    pub(crate) fn record(&self, op: Operation) {
        self.inner.calls[op.index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Decides one call of `op`: `(added latency, verdict)`.
    pub(crate) fn decide(&self, op: Operation) -> (Duration, Verdict) {
        let mut specs = self.specs();
        match spec_of(&mut specs, op) {
            Some(spec) => (spec.latency, spec.decide()),
            None => (Duration::ZERO, Verdict::Pass),
        }
    }

    /// Whether the spec that applies to `op` corrupts downloads (no budget
    /// is spent).
    pub(crate) fn corrupts_downloads(&self, op: Operation) -> bool {
        spec_of(&mut self.specs(), op).is_some_and(|spec| spec.corrupt_downloads)
    }

    fn specs(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, FaultSpec>> {
        // A panic while holding this lock leaves a consistent map behind.
        self.inner
            .specs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The spec of `op`, else the wildcard's.
fn spec_of(specs: &mut BTreeMap<String, FaultSpec>, op: Operation) -> Option<&mut FaultSpec> {
    match specs.contains_key(op.name()) {
        true => specs.get_mut(op.name()),
        false => specs.get_mut(WILDCARD),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_form_parses() {
        let spec = FaultSpec::parse("latency=20ms, throttle=2,fail=all").unwrap();
        assert_eq!(
            spec,
            FaultSpec {
                latency: Duration::from_millis(20),
                throttle_next: 2,
                fail_all: true,
                ..Default::default()
            }
        );
        assert_eq!(FaultSpec::parse("").unwrap(), FaultSpec::default());
        let corrupt = FaultSpec::parse("corrupt=all").unwrap();
        assert!(corrupt.corrupt_downloads);
        assert_eq!(corrupt.clone().decide(), Verdict::Pass);
        for bad in [
            "latency",
            "latency=soon",
            "throttle=-1",
            "explode=1",
            "fail=some",
            "corrupt=1",
            "corrupt=",
        ] {
            assert!(FaultSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_form_names_an_operation() {
        let (op, spec) = parse_fault_arg("DescribeRepositories:latency=1s,throttle=1").unwrap();
        assert_eq!(op, "DescribeRepositories");
        assert_eq!(spec.latency, Duration::from_secs(1));
        assert_eq!(parse_fault_arg("*:fail=1").unwrap().0, "*");
        assert!(parse_fault_arg("DescribeRepository:fail=1").is_err());
        assert!(parse_fault_arg("fail=1").is_err());
    }

    #[test]
    fn json_form_uses_milliseconds() {
        let spec: FaultSpec = serde_json::from_str(r#"{"latency_ms": 5, "fail_next": 1}"#).unwrap();
        assert_eq!(spec.latency, Duration::from_millis(5));
        assert_eq!(spec.fail_next, 1);
        assert!(serde_json::from_str::<FaultSpec>(r#"{"latency": 5}"#).is_err());
        let corrupt: FaultSpec = serde_json::from_str(r#"{"corrupt_downloads": true}"#).unwrap();
        assert!(corrupt.corrupt_downloads);
    }

    #[test]
    fn corruption_is_looked_up_like_other_faults() {
        let faults = FaultHandle::default();
        let op = Operation::GetDownloadUrlForLayer;
        assert!(!faults.corrupts_downloads(op));
        let corrupt = FaultSpec::parse("corrupt=all").unwrap();
        faults.set("*", corrupt.clone()).unwrap();
        assert!(faults.corrupts_downloads(op));
        faults.set(op.name(), FaultSpec::default()).unwrap();
        assert!(!faults.corrupts_downloads(op));
        faults.clear();
        faults.set(op.name(), corrupt).unwrap();
        assert!(faults.corrupts_downloads(op));
        // It never answers the operation itself with an error.
        assert_eq!(faults.decide(op).1, Verdict::Pass);
    }

    impl FaultHandle {
        fn on_call(&self, op: Operation) -> (Duration, Verdict) {
            self.record(op);
            self.decide(op)
        }
    }

    #[test]
    fn budgets_are_spent_in_order_then_calls_pass() {
        let faults = FaultHandle::default();
        let spec = FaultSpec {
            throttle_next: 2,
            fail_next: 1,
            ..Default::default()
        };
        faults.set("ListImages", spec).unwrap();
        let verdicts: Vec<_> = (0..4)
            .map(|_| faults.on_call(Operation::ListImages).1)
            .collect();
        assert_eq!(
            verdicts,
            [
                Verdict::Throttle,
                Verdict::Throttle,
                Verdict::Fail,
                Verdict::Pass
            ]
        );
        assert_eq!(faults.on_call(Operation::PutImage).1, Verdict::Pass);
        assert_eq!(faults.calls("ListImages"), 4);
        assert_eq!(faults.calls("PutImage"), 1);
        assert_eq!(faults.calls("Nope"), 0);
        assert_eq!(faults.total_calls(), 5);
        faults.reset_calls();
        assert_eq!(faults.total_calls(), 0);
    }

    #[test]
    fn wildcard_applies_where_no_own_spec() {
        let faults = FaultHandle::default();
        let all = FaultSpec {
            fail_all: true,
            ..Default::default()
        };
        faults.set("*", all).unwrap();
        faults.set("ListImages", FaultSpec::default()).unwrap();
        assert_eq!(faults.on_call(Operation::PutImage).1, Verdict::Fail);
        assert_eq!(faults.on_call(Operation::ListImages).1, Verdict::Pass);
        faults.clear();
        assert_eq!(faults.on_call(Operation::PutImage).1, Verdict::Pass);
        assert!(faults.set("Bogus", FaultSpec::default()).is_err());
    }
}
