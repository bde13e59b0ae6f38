//! Markdown output: one block per scenario, printed and (with `--write`)
//! replaced in BENCHMARKS.md between its markers, so a partial run
//! (`--only`) updates only the scenarios it ran.

use std::path::Path;
use std::process::Command;

use anyhow::Context as _;

/// A markdown table under construction.
pub struct Table {
    text: String,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        let mut text = row(header.iter().copied());
        text.push_str(&row(header.iter().map(|_| "---")));
        Self { text }
    }

    pub fn push<S: AsRef<str>>(&mut self, cells: &[S]) {
        self.text.push_str(&row(cells.iter().map(AsRef::as_ref)));
    }

    pub fn finish(self) -> String {
        self.text
    }
}

fn row<'a>(cells: impl Iterator<Item = &'a str>) -> String {
    let mut line = String::from("|");
    for cell in cells {
        line.push(' ');
        line.push_str(cell);
        line.push_str(" |");
    }
    line.push('\n');
    line
}

/// Facts about this run, printed at the head of every block.
pub struct RunInfo {
    pub line: String,
}

impl RunInfo {
    pub fn collect(command: &str) -> Self {
        let nproc = std::thread::available_parallelism().map_or(0, usize::from);
        let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
        let dirty = git(&["status", "--porcelain", "--untracked-files=no", "--", "src"])
            .is_some_and(|s| !s.is_empty());
        let load = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
            .unwrap_or_default();
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|c| {
                c.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown cpu".into());
        let date = Command::new("date")
            .args(["-u", "+%Y-%m-%d %H:%M UTC"])
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default();
        let profile = if cfg!(debug_assertions) {
            "debug build"
        } else {
            "release build"
        };
        Self {
            line: format!(
                "Measured {date} on {nproc} cores ({cpu}), load average {load} at the start; \
                 commit `{commit}`{}; {profile}; command `{command}`.",
                if dirty {
                    " with uncommitted changes in src/"
                } else {
                    ""
                },
            ),
        }
    }
}

fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn markers(id: &str) -> (String, String) {
    (
        format!("<!-- bench:{id}:begin (written by scripts/bench) -->"),
        format!("<!-- bench:{id}:end -->"),
    )
}

/// Replaces the block `id` of the file at `path` with `body` (appending the
/// block when the file has none).
pub fn write_block(path: &Path, id: &str, body: &str) -> anyhow::Result<()> {
    let (begin, end) = markers(id);
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{begin}\n{}\n{end}", body.trim_end());
    let updated = match (text.find(&begin), text.find(&end)) {
        (Some(b), Some(e)) if e > b => {
            format!("{}{block}{}", &text[..b], &text[e + end.len()..])
        }
        _ => {
            let mut t = text;
            if !t.is_empty() && !t.ends_with("\n\n") {
                t.push_str(if t.ends_with('\n') { "\n" } else { "\n\n" });
            }
            t.push_str(&block);
            t.push('\n');
            t
        }
    };
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}
