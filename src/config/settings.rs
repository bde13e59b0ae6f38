//! Flags → settings, the one way: every settings type the binary runs with
//! is built here, by a method on the flag struct it comes from, and
//! [`ServeArgs::settings`] builds them all at once after checking the
//! flags' ranges. The settings types stay in the modules they configure;
//! only the mapping from flags to them lives here, so a new flag is one
//! field in its flag struct and one line below.

use crate::budget::BudgetSettings;
use crate::call_bounds::{CallLimits, ConnectionLimits, LimitArgs};
use crate::emulator::{EmulatorArgs, EmulatorConfig};
use crate::security::{self, Security, SecurityArgs, TlsFiles};
use crate::server::ServerSettings;
use crate::service::FacadeSettings;
use crate::transfer::TransferSettings;
use crate::validate::Limits;

use super::{ServeArgs, UpstreamSettings};

/// Everything `ecr-facade serve` runs with, built from its flags.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The SDK client's endpoint, region, retries and timeouts.
    pub upstream: UpstreamSettings,
    /// The handlers' limits, token cache and transfers.
    pub facade: FacadeSettings,
    /// The gRPC server's limits, shares, budget and drain.
    pub server: ServerSettings,
    /// TLS and the authorization policy, their files read and checked.
    pub security: Security,
    /// The embedded emulator with `--emulator`, else `None`.
    pub emulator: Option<EmulatorConfig>,
}

impl ServeArgs {
    /// Checks the flags and builds every setting from them, refusing the
    /// first bad one in this order: a duration out of its range, a message
    /// limit the request budget could never hold, the security files, the
    /// emulator's flags.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        // Before anything is used: an out-of-range duration would panic later.
        self.check_ranges()?;
        let server = self.server();
        // Before anything listens (`server::serve` checks again, for callers
        // of the library).
        server.budget.check()?;
        let security = self.security.security()?;
        let emulator = self.emulator.then(|| self.emulator()).transpose()?;
        let mut upstream = self.upstream();
        if let Some(emulator) = &emulator {
            // The client signs for the region the emulator answers in; its
            // endpoint (an ephemeral port) is known once it listens.
            upstream.region = Some(emulator.region.clone());
        }
        Ok(Settings {
            upstream,
            facade: self.facade(),
            server,
            security,
            emulator,
        })
    }

    /// `--endpoint-url`, `--region`, `--max-attempts`, `--connect-timeout`,
    /// `--attempt-timeout`, `--operation-timeout`.
    fn upstream(&self) -> UpstreamSettings {
        UpstreamSettings {
            endpoint_url: self.endpoint_url.clone(),
            region: self.region.clone(),
            max_attempts: self.max_attempts,
            connect_timeout: self.connect_timeout,
            attempt_timeout: self.attempt_timeout,
            operation_timeout: self.operation_timeout,
        }
    }

    /// `--max-layer-digests`, `--upstream-concurrency`, `--token-min-ttl`,
    /// `--rpc-timeout`, and for transfers `--max-concurrent-pushes`,
    /// `--transfer-idle-timeout`, `--max-transfer-timeout`,
    /// `--connect-timeout`.
    fn facade(&self) -> FacadeSettings {
        FacadeSettings {
            limits: Limits {
                max_layer_digests: self.max_layer_digests as usize,
            },
            upstream_concurrency: self.upstream_concurrency as usize,
            token_min_ttl: self.token_min_ttl,
            rpc_timeout: self.rpc_timeout,
            transfer: TransferSettings {
                max_concurrent_pushes: self.max_concurrent_pushes as usize,
                idle_timeout: self.transfer_idle_timeout,
                timeout: self.limits.max_transfer_timeout,
                connect_timeout: self.connect_timeout,
            },
        }
    }

    /// `--drain-timeout`, `--max-concurrent-rpcs`,
    /// `--max-concurrent-streams`, `--http2-keepalive-interval` (also the
    /// TCP keepalive), `--http2-keepalive-timeout`, `--max-connection-age`,
    /// `--max-request-bytes-in-flight`, `--max-layer-digests` (the layer
    /// check's message limit), `--rpc-timeout` and the [`LimitArgs`].
    fn server(&self) -> ServerSettings {
        ServerSettings {
            drain_timeout: self.drain_timeout,
            max_concurrent_rpcs: self.max_concurrent_rpcs as usize,
            max_concurrent_streams: self.max_concurrent_streams,
            http2_keepalive_interval: self.http2_keepalive_interval,
            http2_keepalive_timeout: self.http2_keepalive_timeout,
            max_connection_age: self.max_connection_age,
            budget: BudgetSettings {
                max_request_bytes_in_flight: self.max_request_bytes_in_flight,
                max_layer_digests: self.max_layer_digests as usize,
            },
            calls: self.limits.calls(self.rpc_timeout),
            connections: self.limits.connections(self.http2_keepalive_interval),
        }
    }

    /// The [`EmulatorArgs`], with `--region` (when set) as the region the
    /// emulator answers in, so that the client and the emulator agree.
    fn emulator(&self) -> anyhow::Result<EmulatorConfig> {
        let mut config = self.emulator_args.emulator_config()?;
        if let Some(region) = &self.region {
            config.region = region.clone();
        }
        Ok(config)
    }
}

impl SecurityArgs {
    /// `--tls-cert`, `--tls-key`, `--client-ca`, `--auth-policy`,
    /// `--read-only`: every file read and checked.
    pub fn security(&self) -> Result<Security, security::SetupError> {
        let files = TlsFiles {
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            client_ca: self.client_ca.clone(),
        };
        Security::load(&files, self.auth_policy.as_deref(), self.read_only)
    }
}

impl LimitArgs {
    /// `--max-transfer-timeout`, `--max-concurrent-rpcs-per-connection`,
    /// `--max-concurrent-rpcs-per-caller`, `--send-timeout`; `rpc_timeout`
    /// is `--rpc-timeout`.
    pub fn calls(&self, rpc_timeout: std::time::Duration) -> CallLimits {
        CallLimits {
            rpc_timeout,
            max_transfer_timeout: self.max_transfer_timeout,
            per_connection: self.max_concurrent_rpcs_per_connection as usize,
            per_caller: self.max_concurrent_rpcs_per_caller.map(|n| n as usize),
            send_timeout: self.send_timeout,
        }
    }

    /// `--max-connections`, `--handshake-timeout`; TCP keepalive probes
    /// every `keepalive` (`--http2-keepalive-interval`).
    pub fn connections(&self, keepalive: std::time::Duration) -> ConnectionLimits {
        ConnectionLimits {
            max_connections: self.max_connections as usize,
            handshake_timeout: self.handshake_timeout,
            tcp_keepalive: Some(keepalive),
        }
    }
}

impl EmulatorArgs {
    /// `--account-id`, `--emulator-region`, `--max-blob-bytes`,
    /// `--download-url-ttl`, `--fault`, `--seed-demo`, `--admin-token`,
    /// checked by [`EmulatorConfig::check`].
    pub fn emulator_config(&self) -> anyhow::Result<EmulatorConfig> {
        let config = EmulatorConfig {
            account_id: self.account_id.clone(),
            region: self.emulator_region.clone(),
            max_blob_bytes: self.max_blob_bytes,
            download_url_ttl: self.download_url_ttl,
            faults: self.faults.clone(),
            seed_demo: self.seed_demo,
            admin_token: self.admin_token.clone(),
        };
        config.check()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests;
