//! GetAuthorizationToken and the token cache: tokens returned and cached
//! while valid (against moto and the emulator), concurrent callers sharing
//! one upstream call, a failed refresh serving the still-valid token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::proxy::{Proxy, Reply};
use crate::common::upstream::{Kind, against_both, setup};
use crate::common::{FacadeBuilder, TestFacade};
use ecr_facade::pb;
use serde_json::{Value, json};

against_both!(authorization_tokens_are_returned_and_cached_when_valid);

fn token_reply(body: &Value, serial: usize) -> Reply {
    token_reply_valid_for(body, serial, 12 * 3600)
}

fn token_reply_valid_for(body: &Value, serial: usize, seconds: u64) -> Reply {
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + seconds;
    let registries: Vec<String> = match body["registryIds"].as_array() {
        Some(ids) => ids.iter().map(|i| i.as_str().unwrap().to_owned()).collect(),
        None => vec!["123456789012".to_owned()],
    };
    let data: Vec<Value> = registries
        .iter()
        .map(|id| {
            json!({
                "authorizationToken": format!("QVdTOnNlY3JldC0{serial}"),
                "expiresAt": expires,
                "proxyEndpoint": format!("https://{id}.dkr.ecr.us-east-1.amazonaws.com"),
            })
        })
        .collect();
    Reply::ok(json!({ "authorizationData": data }))
}

#[tokio::test]
async fn concurrent_token_requests_make_one_upstream_call() {
    let proxy = Proxy::start(None).await;
    proxy.set_delay("GetAuthorizationToken", Duration::from_millis(200));
    proxy.set_hook(|action, body, nth| {
        (action == "GetAuthorizationToken").then(|| token_reply(body, nth))
    });
    let facade = TestFacade::start(&proxy.url).await;
    let channel = facade.channel().await;
    let calls = (0..40).map(|_| {
        let mut client = pb::ecr_service_client::EcrServiceClient::new(channel.clone());
        tokio::spawn(async move {
            client
                .get_authorization_token(pb::GetAuthorizationTokenRequest::default())
                .await
                .unwrap()
                .into_inner()
        })
    });
    for answer in futures::future::join_all(calls).await {
        let data = answer.unwrap().authorization_data;
        assert_eq!(
            data[0].authorization_token.as_deref(),
            Some("QVdTOnNlY3JldC01")
        );
    }
    assert_eq!(proxy.count("GetAuthorizationToken"), 1);

    // Explicit registries have keys of their own: asking [a, b] then [b, c]
    // fetches a+b in one call, then only c.
    let mut client = facade.client().await;
    let ask = |ids: &[&str]| pb::GetAuthorizationTokenRequest {
        registry_ids: ids.iter().map(|s| s.to_string()).collect(),
    };
    client
        .get_authorization_token(ask(&["111111111111", "222222222222"]))
        .await
        .unwrap();
    let answer = client
        .get_authorization_token(ask(&["222222222222", "333333333333"]))
        .await
        .unwrap()
        .into_inner()
        .authorization_data;
    assert_eq!(answer.len(), 2);
    assert!(
        answer[1]
            .proxy_endpoint
            .as_deref()
            .unwrap()
            .contains("333333333333")
    );
    let asked: Vec<Value> = proxy
        .calls()
        .iter()
        .filter(|c| c.action == "GetAuthorizationToken")
        .map(|c| c.body["registryIds"].clone())
        .collect();
    assert_eq!(asked[1], json!(["111111111111", "222222222222"]));
    assert_eq!(asked[2], json!(["333333333333"]));
    assert_eq!(facade.facade.tokens().stats().fetches, 3);
}

#[tokio::test]
async fn a_failed_token_refresh_serves_the_still_valid_cached_token() {
    let proxy = Proxy::start(None).await;
    proxy.set_hook(|action, body, nth| {
        (action == "GetAuthorizationToken").then(|| match nth {
            1 => token_reply_valid_for(body, nth, 13 * 3600),
            _ => Reply::error(500, "ServerException", "token service down"),
        })
    });
    let mut builder = FacadeBuilder::new(&proxy.url);
    // The token is cached on arrival, then needs a refresh within seconds.
    builder.settings.token_min_ttl = Duration::from_secs(13 * 3600 - 2);
    let facade = builder.start().await;
    let mut client = facade.client().await;
    let first = client
        .get_authorization_token(pb::GetAuthorizationTokenRequest::default())
        .await
        .unwrap()
        .into_inner();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let second = client
        .get_authorization_token(pb::GetAuthorizationTokenRequest::default())
        .await
        .expect("the cached token is served while the refresh fails")
        .into_inner();
    assert_eq!(
        second.authorization_data[0].authorization_token,
        first.authorization_data[0].authorization_token
    );
    assert_eq!(
        proxy.count("GetAuthorizationToken"),
        4,
        "one fetch, then a refresh tried 3 times"
    );
    let stats = facade.facade.tokens().stats();
    assert_eq!((stats.stale_served, stats.fetch_failures), (1, 1));
}

async fn authorization_tokens_are_returned_and_cached_when_valid(kind: Kind) {
    let (mut client, ctx) = setup(kind).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut tokens = Vec::new();
    for _ in 0..2 {
        let data = client
            .get_authorization_token(pb::GetAuthorizationTokenRequest::default())
            .await
            .unwrap()
            .into_inner()
            .authorization_data;
        assert_eq!(data.len(), 1);
        let token = data[0].authorization_token.clone().unwrap();
        assert!(!token.is_empty());
        tokens.push(token);
        assert!(
            data[0]
                .proxy_endpoint
                .as_deref()
                .unwrap()
                .contains("123456789012")
        );
        let expires = data[0].expires_at.as_ref().unwrap().seconds;
        match kind {
            // moto's tokens expired in 2015: returned, never cached.
            Kind::Moto => assert!(expires < 1_500_000_000),
            // ECR's (and the emulator's) last 12 hours: cached.
            Kind::Emulator => assert!((expires - now - 12 * 3600).abs() < 60, "{expires}"),
        }
    }
    match kind {
        Kind::Moto => assert_eq!(ctx.proxy.count("GetAuthorizationToken"), 2),
        Kind::Emulator => {
            assert_eq!(ctx.proxy.count("GetAuthorizationToken"), 1);
            assert_eq!(tokens[0], tokens[1], "the cached token is served");
        }
    }

    let both = client
        .get_authorization_token(pb::GetAuthorizationTokenRequest {
            registry_ids: vec!["111111111111".into(), "222222222222".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .authorization_data;
    assert_eq!(both.len(), 2);
    assert!(
        both[0]
            .proxy_endpoint
            .as_deref()
            .unwrap()
            .contains("111111111111")
    );
    assert!(
        both[1]
            .proxy_endpoint
            .as_deref()
            .unwrap()
            .contains("222222222222")
    );
}
