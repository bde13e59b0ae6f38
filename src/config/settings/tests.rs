use std::time::Duration;

use crate::config::parse_serve as serve;
use crate::server::ServerSettings;
use crate::service::FacadeSettings;

#[test]
fn the_flags_defaults_are_the_settings_defaults() {
    let settings = serve(&[]).settings().unwrap();
    // The settings types' own defaults (what tests and library users get)
    // must not drift from the documented flag defaults.
    assert_eq!(
        format!("{:?}", settings.facade),
        format!("{:?}", FacadeSettings::default())
    );
    assert_eq!(
        format!("{:?}", settings.server),
        format!("{:?}", ServerSettings::default())
    );
    assert_eq!(
        format!("{:?}", settings.upstream),
        format!("{:?}", crate::config::UpstreamSettings::default())
    );
    assert!(settings.emulator.is_none());
    assert!(settings.security.tls.is_none());
}

#[test]
fn a_flag_feeding_two_settings_reaches_both() {
    let settings = serve(&[
        "--max-layer-digests",
        "7",
        "--rpc-timeout",
        "9s",
        "--http2-keepalive-interval",
        "11s",
        "--connect-timeout",
        "2s",
    ])
    .settings()
    .unwrap();
    assert_eq!(settings.facade.limits.max_layer_digests, 7);
    assert_eq!(settings.server.budget.max_layer_digests, 7);
    assert_eq!(settings.facade.rpc_timeout, Duration::from_secs(9));
    assert_eq!(settings.server.calls.rpc_timeout, Duration::from_secs(9));
    assert_eq!(
        settings.server.http2_keepalive_interval,
        Duration::from_secs(11)
    );
    assert_eq!(
        settings.server.connections.tcp_keepalive,
        Some(Duration::from_secs(11))
    );
    assert_eq!(settings.upstream.connect_timeout, Duration::from_secs(2));
    assert_eq!(
        settings.facade.transfer.connect_timeout,
        Duration::from_secs(2)
    );
}

#[test]
fn with_the_emulator_region_overrides_its_region_and_the_clients() {
    let settings = serve(&["--emulator", "--region", "eu-west-3"])
        .settings()
        .unwrap();
    let emulator = settings.emulator.unwrap();
    assert_eq!(emulator.region, "eu-west-3");
    assert_eq!(settings.upstream.region.as_deref(), Some("eu-west-3"));

    let settings = serve(&["--emulator", "--emulator-region", "ap-south-1"])
        .settings()
        .unwrap();
    assert_eq!(settings.emulator.unwrap().region, "ap-south-1");
    assert_eq!(settings.upstream.region.as_deref(), Some("ap-south-1"));

    // Without --emulator its flags are not used, nor checked.
    let settings = serve(&["--account-id", "123"]).settings().unwrap();
    assert!(settings.emulator.is_none());
}

#[test]
fn the_first_bad_flag_is_refused_ranges_first() {
    let error = serve(&[
        "--rpc-timeout",
        "500000000000years",
        "--tls-key",
        "k.pem",
        "--emulator",
        "--account-id",
        "123",
    ])
    .settings()
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "--rpc-timeout must be between 1ms and 1day"
    );
    let error = serve(&["--tls-key", "k.pem", "--emulator", "--account-id", "123"])
        .settings()
        .unwrap_err();
    assert_eq!(error.to_string(), "--tls-key is set without --tls-cert");
    let error = serve(&["--emulator", "--account-id", "123"])
        .settings()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "--account-id must be 12 digits, got \"123\""
    );
}
