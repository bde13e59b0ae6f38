use super::*;

fn repo(mutability: &str, filters: &[&str]) -> Repository {
    Repository {
        registry_id: "123456789012".into(),
        name: "team/app".into(),
        created_at: 0.0,
        mutability: mutability.into(),
        exclusion_filters: filters.iter().map(|f| f.to_string()).collect(),
        scan_on_push: false,
        encryption_type: "AES256".into(),
        kms_key: None,
        policy: None,
        images: Vec::new(),
        layers: BTreeMap::new(),
    }
}

#[test]
fn wildcards_match_like_globs() {
    assert!(wildcard("release-*", "release-1.2"));
    assert!(wildcard("*", ""));
    assert!(wildcard("a*b*c", "aXXbYYc"));
    assert!(wildcard("latest", "latest"));
    assert!(!wildcard("latest", "latest2"));
    assert!(!wildcard("a*b*c", "aXXcYYb"));
    assert!(!wildcard("ab*ba", "aba"));
    assert!(!wildcard("release-*", "dev-1"));
}

#[test]
fn tag_mutability_follows_the_mode_and_filters() {
    assert!(!repo("MUTABLE", &[]).is_tag_immutable("latest"));
    assert!(repo("IMMUTABLE", &[]).is_tag_immutable("latest"));
    let immutable_but = repo("IMMUTABLE_WITH_EXCLUSION", &["dev-*"]);
    assert!(!immutable_but.is_tag_immutable("dev-1"));
    assert!(immutable_but.is_tag_immutable("v1"));
    let mutable_but = repo("MUTABLE_WITH_EXCLUSION", &["v*"]);
    assert!(mutable_but.is_tag_immutable("v1"));
    assert!(!mutable_but.is_tag_immutable("latest"));
}

#[test]
fn space_refuses_what_does_not_fit() {
    let mut space = Space { used: 0, max: 10 };
    space.reserve(6).unwrap();
    let err = space.reserve(5).unwrap_err();
    assert_eq!(err.code(), "LimitExceededException");
    space.reserve(4).unwrap();
    assert_eq!(space.used(), 10);
    space.release(10);
    assert!(space.reserve(u64::MAX).is_err());
    assert_eq!(space.used(), 0);
}

#[test]
fn blobs_are_freed_with_their_last_holder() {
    let mut blobs = Blobs::default();
    assert!(!blobs.add_ref("sha256:a"));
    blobs.insert("sha256:a".into(), Bytes::from_static(b"abc"));
    assert!(blobs.add_ref("sha256:a"));
    assert_eq!(blobs.release("sha256:a"), 0);
    assert_eq!(blobs.get("sha256:a").as_deref(), Some(&b"abc"[..]));
    assert_eq!(blobs.release("sha256:a"), 3);
    assert_eq!(blobs.get("sha256:a"), None);
    assert_eq!(blobs.release("sha256:a"), 0);
}

#[test]
fn uploads_belong_to_their_repository() {
    let mut uploads = Uploads::default();
    uploads.start("u1".into(), "123456789012", "a/b", 1);
    assert!(uploads.get_mut("u1", "123456789012", "a/b").is_ok());
    let err = uploads.get_mut("u1", "123456789012", "a/c").unwrap_err();
    assert_eq!(err.code(), "UploadNotFoundException");
    assert!(uploads.take("u1", "210987654321", "a/b").is_err());
    assert_eq!(
        uploads.take("u1", "123456789012", "a/b").unwrap().received,
        0
    );
    assert_eq!(uploads.in_flight(), 0);
}

#[test]
fn the_oldest_upload_is_abandoned_beyond_the_cap() {
    let mut uploads = Uploads::default();
    for i in 0..MAX_UPLOADS as u64 {
        uploads.start(format!("u{i}"), "r", "n", i);
    }
    uploads.get_mut("u0", "r", "n").unwrap().received = 7;
    let freed = uploads.start("new".into(), "r", "n", MAX_UPLOADS as u64);
    assert_eq!(freed, 7);
    assert_eq!(uploads.in_flight(), MAX_UPLOADS);
    assert!(uploads.get_mut("u0", "r", "n").is_err());
    assert!(uploads.get_mut("new", "r", "n").is_ok());
}

#[test]
fn removing_a_repository_releases_its_bytes() {
    let mut store = Store::new(1000);
    let mut repository = repo("MUTABLE", &[]);
    store.space.reserve(3 + 5 + 4).unwrap();
    store
        .blobs
        .insert("sha256:a".into(), Bytes::from_static(b"abc"));
    repository.layers.insert(
        "sha256:a".into(),
        LayerInfo {
            size: 3,
            media_type: None,
        },
    );
    repository.images.push(Image {
        seq: 1,
        digest: "sha256:m".into(),
        manifest: "12345".into(),
        media_type: "x".into(),
        artifact_media_type: None,
        tags: vec!["latest".into()],
        pushed_at: 0.0,
        size: 3,
        references: vec!["sha256:a".into()],
    });
    store
        .uploads
        .start("u".into(), "123456789012", "team/app", 2);
    store
        .uploads
        .get_mut("u", "123456789012", "team/app")
        .unwrap()
        .received = 4;
    store
        .registries
        .entry("123456789012".into())
        .or_default()
        .insert("team/app".into(), repository);
    assert_eq!(store.repository_count(), 1);
    assert!(
        store
            .repo("123456789012", "team/app")
            .unwrap()
            .is_referenced("sha256:a")
    );

    store.remove_repo("123456789012", "team/app").unwrap();
    assert_eq!(store.space.used(), 0);
    assert_eq!(store.uploads.in_flight(), 0);
    assert_eq!(store.blobs.get("sha256:a"), None);
    let err = store.repo("123456789012", "team/app").unwrap_err();
    assert_eq!(err.code(), "RepositoryNotFoundException");
}
