//! How an emulator behaves: [`EmulatorConfig`], its defaults and its
//! check. (Its flags become one in `src/config/settings.rs`.)

use std::time::Duration;

use super::faults::FaultSpec;
use super::secret::AdminToken;
use super::validate;

/// Default account (registry) id, as moto's.
pub const DEFAULT_ACCOUNT_ID: &str = "123456789012";
/// Default region.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default storage budget: 512 MiB.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 512 * 1024 * 1024;
/// Default lifetime of a download URL: 1 hour.
pub const DEFAULT_DOWNLOAD_URL_TTL: Duration = Duration::from_secs(3600);

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct EmulatorConfig {
    /// The default registry id (requests without `registryId`).
    pub account_id: String,
    /// The region shown in ARNs, URIs and proxy endpoints.
    pub region: String,
    /// Bytes of layers, upload parts and manifests the emulator may hold.
    pub max_blob_bytes: u64,
    /// How long a GetDownloadUrlForLayer URL stays valid.
    pub download_url_ttl: Duration,
    /// Fault specs in force from the start: `(operation or "*", spec)`.
    pub faults: Vec<(String, FaultSpec)>,
    /// Create `demo/hello` with one image tagged `latest` at start.
    pub seed_demo: bool,
    /// The admin endpoints' bearer token; `None`: a random one.
    pub admin_token: Option<AdminToken>,
}

impl EmulatorConfig {
    /// Refuses a configuration the emulator cannot run with, naming the
    /// flag that sets the bad value (and never quoting the admin token).
    pub fn check(&self) -> anyhow::Result<()> {
        validate::registry_id("--account-id", &Some(self.account_id.clone())).map_err(|_| {
            anyhow::anyhow!("--account-id must be 12 digits, got {:?}", self.account_id)
        })?;
        let region_ok = !self.region.is_empty()
            && self
                .region
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        anyhow::ensure!(
            region_ok,
            "--emulator-region must look like us-east-1, got {:?}",
            self.region
        );
        anyhow::ensure!(self.max_blob_bytes > 0, "--max-blob-bytes must be positive");
        anyhow::ensure!(
            self.download_url_ttl >= Duration::from_secs(1),
            "--download-url-ttl must be at least 1s"
        );
        if let Some(token) = &self.admin_token {
            AdminToken::parse(token.expose())?;
        }
        Ok(())
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            account_id: DEFAULT_ACCOUNT_ID.to_owned(),
            region: DEFAULT_REGION.to_owned(),
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
            download_url_ttl: DEFAULT_DOWNLOAD_URL_TTL,
            faults: Vec::new(),
            seed_demo: false,
            admin_token: None,
        }
    }
}
