//! Download URLs as S3 serves them: byte ranges, expiry, and corrupted
//! downloads on request.
use std::time::Duration;

use aws_sdk_ecr::types::ImageIdentifier;
use ecr_facade::emulator::{Emulator, EmulatorConfig, FaultSpec};

use super::{client, get, get_with};
use crate::common::sha256_digest;
use crate::common::upstream::start_emulator;

#[tokio::test]
async fn download_urls_expire() {
    let config = EmulatorConfig {
        download_url_ttl: Duration::from_secs(1),
        seed_demo: true,
        ..Default::default()
    };
    let emulator = start_emulator(config).await;
    let ecr = client(&emulator, 1);
    let (layer, url) = demo_layer_url(&ecr).await;
    let (status, bytes) = get(&emulator, &url).await;
    assert_eq!(status, 200);
    assert_eq!(sha256_digest(&bytes), layer);
    // Past `expires` (whole seconds, so up to 2 s away), the URL is refused.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(get(&emulator, &url).await.0, 403);
}

/// The seeded `demo/hello:latest`'s first layer: its digest and a download
/// URL for it.
async fn demo_layer_url(ecr: &aws_sdk_ecr::Client) -> (String, String) {
    let image = ecr
        .batch_get_image()
        .repository_name("demo/hello")
        .image_ids(ImageIdentifier::builder().image_tag("latest").build())
        .send()
        .await
        .unwrap();
    let manifest: serde_json::Value =
        serde_json::from_str(image.images()[0].image_manifest().unwrap()).unwrap();
    let layer = manifest["layers"][0]["digest"].as_str().unwrap().to_owned();
    let url = ecr
        .get_download_url_for_layer()
        .repository_name("demo/hello")
        .layer_digest(&layer)
        .send()
        .await
        .unwrap()
        .download_url
        .unwrap();
    (layer, url)
}

/// An emulator seeded with the demo images, an SDK client, and the demo
/// layer's digest, download URL and bytes.
async fn demo_download() -> (Emulator, aws_sdk_ecr::Client, String, String, Vec<u8>) {
    let config = EmulatorConfig {
        seed_demo: true,
        ..Default::default()
    };
    let emulator = start_emulator(config).await;
    let ecr = client(&emulator, 1);
    let (layer, url) = demo_layer_url(&ecr).await;
    let (_, _, whole) = get_with(&emulator, &url, "").await;
    (emulator, ecr, layer, url, whole)
}

fn header_of<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

#[tokio::test]
async fn download_urls_serve_ranges() {
    let (emulator, _ecr, layer, url, _) = demo_download().await;
    // No Range: every byte, with its length, and ranges advertised.
    let (status, head, whole) = get_with(&emulator, &url, "").await;
    assert_eq!(status, 200);
    assert_eq!(sha256_digest(&whole), layer);
    let total = whole.len();
    assert!(total > 100, "the demo layer is a tar archive");
    assert_eq!(
        header_of(&head, "content-length"),
        Some(&*total.to_string())
    );
    assert_eq!(header_of(&head, "accept-ranges"), Some("bytes"));

    // Ranges as S3 answers them.
    let (status, head, body) = get_with(&emulator, &url, "Range: bytes=10-19\r\n").await;
    assert_eq!((status, body.as_slice()), (206, &whole[10..20]));
    let shown = format!("bytes 10-19/{total}");
    assert_eq!(header_of(&head, "content-range"), Some(shown.as_str()));
    assert_eq!(header_of(&head, "content-length"), Some("10"));
    let tail = format!("Range: bytes={}-\r\n", total - 7);
    let (status, head, body) = get_with(&emulator, &url, &tail).await;
    assert_eq!((status, body.as_slice()), (206, &whole[total - 7..]));
    let shown = format!("bytes {}-{}/{total}", total - 7, total - 1);
    assert_eq!(header_of(&head, "content-range"), Some(shown.as_str()));
    let past_end = format!("Range: bytes={}-{}\r\n", total - 1, total + 50);
    let (status, _, body) = get_with(&emulator, &url, &past_end).await;
    assert_eq!((status, body.as_slice()), (206, &whole[total - 1..]));
    let at_end = format!("Range: bytes={total}-\r\n");
    let (status, head, _) = get_with(&emulator, &url, &at_end).await;
    assert_eq!(status, 416);
    let shown = format!("bytes */{total}");
    assert_eq!(header_of(&head, "content-range"), Some(shown.as_str()));
    let (status, head, body) = get_with(&emulator, &url, "Range: bytes=9-3\r\n").await;
    assert_eq!((status, body.len()), (200, total));
    assert_eq!(header_of(&head, "content-range"), None);
}

/// Corrupted downloads: same length, exactly one byte differs.
#[tokio::test]
async fn corrupted_downloads_differ_in_one_byte() {
    let (emulator, ecr, layer, url, whole) = demo_download().await;
    let total = whole.len();
    let corrupt = FaultSpec::parse("corrupt=all").unwrap();
    emulator
        .set_fault("GetDownloadUrlForLayer", corrupt)
        .unwrap();
    let differing = |a: &[u8], b: &[u8]| a.iter().zip(b).filter(|(x, y)| x != y).count();
    let (status, head, bad) = get_with(&emulator, &url, "").await;
    assert_eq!((status, bad.len()), (200, total));
    assert_eq!(
        header_of(&head, "content-length"),
        Some(&*total.to_string())
    );
    assert_ne!(sha256_digest(&bad), layer);
    assert_eq!(differing(&bad, &whole), 1);
    let (status, _, bad) = get_with(&emulator, &url, "Range: bytes=10-19\r\n").await;
    assert_eq!((status, bad.len()), (206, 10));
    assert_eq!(differing(&bad, &whole[10..20]), 1);
    // The operation itself still answers normally.
    ecr.get_download_url_for_layer()
        .repository_name("demo/hello")
        .layer_digest(&layer)
        .send()
        .await
        .unwrap();
    emulator.clear_faults();
    let (_, _, good) = get_with(&emulator, &url, "").await;
    assert_eq!(sha256_digest(&good), layer);
}
