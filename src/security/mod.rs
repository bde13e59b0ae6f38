//! Transport security and per-caller authorization.
//!
//! - **TLS / mTLS** ([`tls`]): `--tls-cert` + `--tls-key` serve TLS (rustls);
//!   `--client-ca` also requires and verifies client certificates. Without
//!   them the server stays plaintext, for meshes whose sidecars terminate TLS.
//! - **Authentication** ([`AuthLayer`]): the caller is the verified client
//!   certificate's first URI SAN (e.g. a SPIFFE ID), else its first DNS SAN;
//!   without a usable certificate, the bearer token of `authorization: Bearer
//!   <token>` whose SHA-256 the policy lists. Health and reflection stay open.
//! - **Authorization** ([`Authorizer`]): `--read-only` refuses the mutating
//!   actions; then the policy of `--auth-policy` must grant the action on
//!   every repository the request names. Without a policy every caller may
//!   call every action (and [`Authorizer::startup_message`] says so).
//! - **Reload** ([`PolicyStore`], [`watch_sighup`]): SIGHUP re-reads the
//!   policy file; connections stay up, and an invalid file is refused
//!   (logged) while the previous policy stays in force.
//!
//! # Policy file
//!
//! TOML: it is strict (no implicit typing, unlike YAML's `no` → `false`),
//! allows comments, and its parser is actively maintained (`serde_yaml` is
//! not). Unknown keys are errors, so typos fail loudly. Each `[[caller]]`
//! entry is one grant — its `actions` on its `repositories` — for either a
//! client certificate (`certificate`: the URI or DNS SAN) or a bearer token
//! (`name`, used in logs and errors, and `token_sha256`: the lowercase or
//! uppercase hex SHA-256 of the token, `printf %s "$TOKEN" | sha256sum`; the
//! token itself is never stored). Several entries for the same caller add up;
//! two hashes under one name let a token be rotated.
//!
//! `actions` are RPC names of `ecr.v1.EcrService` or `"*"`. `repositories`
//! are patterns where `*` matches any run of characters, `/` included:
//! `"team-a/*"` covers `team-a/app` and `team-a/x/y`, not `team-a`. A request
//! naming several repositories (DescribeRepositories) needs every one; one
//! naming none needs the pattern `"*"`; so does GetAuthorizationToken,
//! whose token is a `docker login` password valid on every repository the
//! facade's role reaches (and `--read-only` refuses it).
//!
//! `registries` names the registries (AWS account ids) an entry covers:
//! 12-digit ids, `"own"` or `"*"`; without it, `["own"]`. A request without
//! `registry_id` addresses the own registry; so does one naming the
//! top-level `own_registry_id` when the file sets it (the facade does not
//! look its account up). Every registry a request names (each of
//! GetAuthorizationToken's `registry_ids`) must be covered by a grant that
//! also covers the action and repositories.
//!
//! ```toml
//! own_registry_id = "123456789012"
//!
//! # CI builds push into team-a's repositories and may create them.
//! [[caller]]
//! certificate = "spiffe://cluster.local/ns/ci/sa/builder"
//! actions = ["BatchCheckLayerAvailability", "CompleteLayerUpload",
//!            "CreateRepository", "DescribeRepositories"]
//! repositories = ["team-a/*"]
//!
//! # Any workload of the cluster may pull anything.
//! [[caller]]
//! certificate = "puller.cluster.local"
//! actions = ["BatchGetImage", "GetDownloadUrlForLayer", "DescribeImages",
//!            "GetAuthorizationToken"]
//! repositories = ["*"]
//!
//! # The release bot, by bearer token.
//! [[caller]]
//! name = "release-bot"
//! token_sha256 = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
//! actions = ["*"]
//! repositories = ["*"]
//! registries = ["own", "210987654321"]
//! ```

mod authorize;
mod identity;
mod layer;
mod policy;
mod scope;
mod store;
pub mod tls;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use tonic::transport::ServerTlsConfig;

pub use authorize::Authorizer;
pub use identity::{Identity, bearer_token, token_sha256_hex};
pub use layer::{AuthLayer, Authenticate};
pub use policy::{OWN_REGISTRY, Policy, PolicyError, glob_match};
pub use scope::{Registries, RepositoryScoped, Scope};
#[cfg(unix)]
pub use store::watch_sighup;
pub use store::{PolicyStore, reload_and_log};
pub use tls::TlsFiles;

/// Why the security settings were refused. Messages name the file or flag
/// and never quote key material or tokens.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// A file could not be read.
    #[error("cannot read {what} {}: {source}", path.display())]
    Read {
        /// What the file is, e.g. `tls key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file was read but its content is unusable.
    #[error("invalid {what} {}: {reason}", path.display())]
    Invalid {
        /// What the file is, e.g. `policy file`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// `--tls-key` without `--tls-cert`.
    #[error("--tls-key is set without --tls-cert")]
    KeyWithoutCert,
    /// `--tls-cert` without `--tls-key`.
    #[error("--tls-cert is set without --tls-key")]
    CertWithoutKey,
    /// `--client-ca` without a server certificate and key.
    #[error("--client-ca needs tls: set --tls-cert and --tls-key too")]
    ClientCaWithoutTls,
}

/// Security flags of `ecr-facade serve` (flattened into its arguments).
#[derive(Debug, Clone, Default, PartialEq, Eq, Args)]
pub struct SecurityArgs {
    /// PEM certificate chain the server presents. With --tls-key, the server
    /// speaks TLS instead of plaintext.
    #[arg(long, env = "ECR_FACADE_TLS_CERT", value_name = "PEM_FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "ECR_FACADE_TLS_KEY", value_name = "PEM_FILE")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificate(s) client certificates must chain to: every client
    /// must then present one (mTLS). Needs --tls-cert and --tls-key.
    #[arg(long, env = "ECR_FACADE_CLIENT_CA", value_name = "PEM_FILE")]
    pub client_ca: Option<PathBuf>,

    /// TOML file granting callers actions on repositories (reloaded on
    /// SIGHUP). Without it, every caller may call every action.
    #[arg(long, env = "ECR_FACADE_AUTH_POLICY", value_name = "TOML_FILE")]
    pub auth_policy: Option<PathBuf>,

    /// Refuse every mutating action (BatchDeleteImage, CompleteLayerUpload,
    /// CreateRepository, DeleteRepository, DeleteRepositoryPolicy).
    #[arg(long, env = "ECR_FACADE_READ_ONLY",
          value_parser = clap::builder::BoolishValueParser::new())]
    pub read_only: bool,
}

/// Everything the server needs, checked at start.
#[derive(Debug, Clone)]
pub struct Security {
    /// For `Server::builder().tls_config(..)`; `None` serves plaintext.
    pub tls: Option<ServerTlsConfig>,
    /// Authorization decisions; its [`layer`](Authorizer::layer) goes on the
    /// server builder, a clone of it into the facade's handlers.
    pub authorizer: Authorizer,
    transport: &'static str,
}

impl Default for Security {
    /// Plaintext, no policy, read-write: what the flags' defaults give.
    fn default() -> Self {
        Self {
            tls: None,
            authorizer: Authorizer::allow_all(),
            transport: "plaintext",
        }
    }
}

impl Security {
    /// Reads and checks the TLS `files` and the `policy` file; `read_only`
    /// refuses the mutating actions. (The flags become these arguments in
    /// [`SecurityArgs::security`], in `src/config/settings.rs`.)
    pub fn load(
        files: &TlsFiles,
        policy: Option<&Path>,
        read_only: bool,
    ) -> Result<Self, SetupError> {
        let tls = files.server_tls_config()?;
        let store = PolicyStore::from_path(policy)?;
        let transport = match (&tls, &files.client_ca) {
            (None, _) => "plaintext",
            (Some(_), None) => "tls",
            (Some(_), Some(_)) => "mtls (client certificates required)",
        };
        Ok(Self {
            tls,
            authorizer: Authorizer::new(Arc::new(store), read_only),
            transport,
        })
    }

    /// One line for the startup log: transport and authorization mode.
    pub fn startup_message(&self) -> String {
        format!(
            "transport: {}; {}",
            self.transport,
            self.authorizer.startup_message()
        )
    }
}

#[cfg(test)]
mod tests;
