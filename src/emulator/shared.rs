//! The state every request shares: the configuration, faults, signing and
//! pagination keys, the admin token and the store behind its lock. The HTTP
//! server, the operations, the admin endpoints and the seed all use it; it
//! uses none of them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use super::config::EmulatorConfig;
use super::download_url::UrlSigner;
use super::faults::FaultHandle;
use super::pagination::Tokens;
use super::secret::{AdminToken, random_bytes};
use super::state::Store;

/// State shared by every request.
#[derive(Debug)]
pub struct Shared {
    pub config: EmulatorConfig,
    /// Where the emulator is reachable when a request carries no `Host`.
    pub base_url: String,
    pub faults: FaultHandle,
    pub signer: UrlSigner,
    pub tokens: Tokens,
    /// What the admin endpoints require (given, or random).
    pub admin_token: AdminToken,
    store: Mutex<Store>,
}

impl Shared {
    /// Builds the state, with the faults of the config (the caller seeds the
    /// demo data, which goes through the operations).
    pub fn new(config: EmulatorConfig, local_addr: SocketAddr) -> anyhow::Result<Arc<Self>> {
        let faults = FaultHandle::default();
        for (op, spec) in &config.faults {
            faults.set(op, spec.clone())?;
        }
        let shared = Arc::new(Self {
            base_url: base_url(local_addr),
            faults,
            signer: UrlSigner::new(random_bytes(), config.download_url_ttl),
            tokens: Tokens::new(random_bytes()),
            admin_token: config
                .admin_token
                .clone()
                .unwrap_or_else(AdminToken::random),
            store: Mutex::new(Store::new(config.max_blob_bytes)),
            config,
        });
        Ok(shared)
    }

    /// The store, locked. Never hold the guard across an `.await`.
    pub fn store(&self) -> MutexGuard<'_, Store> {
        // Operations validate before they mutate, so a panic mid-way leaves
        // a usable store; keep serving rather than poisoning every call.
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `http://<addr>`, with an unspecified bind address shown as loopback.
pub fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".parse().expect("literal"),
        ip if ip.is_unspecified() => "::1".parse().expect("literal"),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_reachable_addresses() {
        assert_eq!(
            base_url("0.0.0.0:8080".parse().unwrap()),
            "http://127.0.0.1:8080"
        );
        assert_eq!(base_url("[::]:80".parse().unwrap()), "http://[::1]:80");
        assert_eq!(
            base_url("10.1.2.3:5000".parse().unwrap()),
            "http://10.1.2.3:5000"
        );
    }
}
