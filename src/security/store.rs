//! The live policy: swapped atomically on reload (SIGHUP), so calls in
//! flight and open connections keep going; a refused file keeps the old one.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwapOption;
use tokio::sync::watch;

use super::SetupError;
use super::policy::Policy;

/// The policy in force, and the file it comes from.
#[derive(Debug)]
pub struct PolicyStore {
    path: Option<PathBuf>,
    current: ArcSwapOption<Policy>,
    /// Counts reload attempts (successful or not), for whoever waits on one.
    attempts: watch::Sender<u64>,
}

impl PolicyStore {
    /// No policy: every caller may call every action.
    pub fn open() -> Self {
        Self {
            path: None,
            current: ArcSwapOption::empty(),
            attempts: watch::Sender::new(0),
        }
    }

    /// The policy of `path`, which must be valid now.
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, SetupError> {
        let path = path.into();
        let policy = Policy::load(&path)?;
        Ok(Self {
            path: Some(path),
            current: ArcSwapOption::from_pointee(policy),
            attempts: watch::Sender::new(0),
        })
    }

    /// The policy for `path` if given, else none.
    pub fn from_path(path: Option<&Path>) -> Result<Self, SetupError> {
        path.map_or_else(|| Ok(Self::open()), Self::load)
    }

    /// The policy file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The policy in force; `None` when none is configured.
    pub fn current(&self) -> Option<Arc<Policy>> {
        self.current.load_full()
    }

    /// Re-reads the policy file. A file that cannot be read or is invalid
    /// is refused and the policy in force stays. Without a policy file this
    /// does nothing.
    pub fn reload(&self) -> Result<(), SetupError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        // The file is small: reading it inline is cheaper than a thread hop.
        let result = Policy::load(path).map(|policy| {
            self.current.store(Some(Arc::new(policy)));
        });
        self.attempts.send_modify(|n| *n += 1);
        result
    }

    /// Reload attempts so far; `changed()` wakes after each one.
    pub fn reloads(&self) -> watch::Receiver<u64> {
        self.attempts.subscribe()
    }
}

/// Installs the SIGHUP handler now and returns the task that reloads
/// `store` on every SIGHUP, logging the outcome; spawn it.
///
/// Installing happens before this returns, so a SIGHUP sent after it can no
/// longer terminate the process (SIGHUP's default action).
#[cfg(unix)]
pub fn watch_sighup(
    store: Arc<PolicyStore>,
) -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};

    let mut hangups = signal(SignalKind::hangup())?;
    Ok(async move {
        while hangups.recv().await.is_some() {
            reload_and_log(&store);
        }
    })
}

/// Reloads `store` and logs the outcome (the signal handler's body).
pub fn reload_and_log(store: &PolicyStore) {
    let Some(path) = store.path() else {
        tracing::info!("reload requested, but no policy file is configured");
        return;
    };
    match store.reload() {
        Ok(()) => {
            let callers = store.current().map_or(0, |p| p.callers());
            tracing::info!(path = %path.display(), callers, "authorization policy reloaded");
        }
        Err(error) => tracing::error!(
            %error,
            "authorization policy reload refused; the previous policy stays in force"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::Identity;
    use crate::security::tests::pki::TempDir;

    const ALLOW_A: &str = r#"
        [[caller]]
        certificate = "a.example"
        actions = ["*"]
        repositories = ["*"]
    "#;

    fn caller(name: &str) -> Identity {
        Identity::Certificate(name.to_owned())
    }

    #[test]
    fn reload_swaps_a_valid_policy_and_keeps_the_old_one_otherwise() {
        let dir = TempDir::new("store");
        let path = dir.write("policy.toml", ALLOW_A);
        let store = PolicyStore::load(&path).unwrap();
        let mut reloads = store.reloads();
        assert!(
            store
                .current()
                .unwrap()
                .allows(&caller("a.example"), "DescribeImages", None)
        );

        std::fs::write(&path, ALLOW_A.replace("a.example", "b.example")).unwrap();
        store.reload().unwrap();
        let policy = store.current().unwrap();
        assert!(!policy.allows(&caller("a.example"), "DescribeImages", None));
        assert!(policy.allows(&caller("b.example"), "DescribeImages", None));

        std::fs::write(&path, "[[caller]]\nactions = 3").unwrap();
        let error = store.reload().unwrap_err().to_string();
        assert!(error.contains("policy.toml"), "{error}");
        assert!(
            store
                .current()
                .unwrap()
                .allows(&caller("b.example"), "DescribeImages", None)
        );

        std::fs::remove_file(&path).unwrap();
        assert!(
            store
                .reload()
                .unwrap_err()
                .to_string()
                .starts_with("cannot read policy file")
        );
        assert!(store.current().is_some());
        assert_eq!(*reloads.borrow_and_update(), 3);
    }

    #[test]
    fn without_a_file_there_is_no_policy_and_nothing_to_reload() {
        let store = PolicyStore::from_path(None).unwrap();
        assert!(store.current().is_none());
        store.reload().unwrap();
        assert_eq!(*store.reloads().borrow(), 0);
    }
}
