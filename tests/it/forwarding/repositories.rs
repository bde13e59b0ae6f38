//! Repositories through the facade: created with their settings and once,
//! described and paged, deleted (with images only by force), their policy.

use super::*;

against_both!(
    a_repository_is_created_with_its_settings,
    a_repository_is_created_once,
    a_deleted_repository_is_gone,
    a_repository_with_images_is_not_deleted_without_force,
    force_deletes_a_repository_with_images,
    repository_policy_is_deleted_once,
);

/// A CreateRepository setting everything ECR lets a caller choose.
fn configured_repository(name: &str) -> pb::CreateRepositoryRequest {
    pb::CreateRepositoryRequest {
        repository_name: name.to_owned(),
        tags: vec![pb::Tag {
            key: "team".into(),
            value: "platform".into(),
        }],
        image_tag_mutability: pb::ImageTagMutability::Immutable as i32,
        image_scanning_configuration: Some(pb::ImageScanningConfiguration {
            scan_on_push: Some(true),
        }),
        encryption_configuration: Some(pb::EncryptionConfiguration {
            encryption_type: pb::EncryptionType::Aes256 as i32,
            kms_key: None,
        }),
        ..Default::default()
    }
}

async fn a_repository_is_created_with_its_settings(kind: Kind) {
    let (mut client, _ctx) = setup(kind).await;
    let name = unique_name("lifecycle");
    let created = client
        .create_repository(configured_repository(&name))
        .await
        .unwrap()
        .into_inner()
        .repository
        .unwrap();
    assert_eq!(created.repository_name.as_deref(), Some(name.as_str()));
    assert_eq!(created.registry_id.as_deref(), Some("123456789012"));
    assert!(
        created
            .repository_arn
            .as_deref()
            .unwrap()
            .ends_with(&format!("repository/{name}"))
    );
    assert!(created.repository_uri.as_deref().unwrap().ends_with(&name));
    assert!(created.created_at.is_some());
    assert_eq!(
        created.image_tag_mutability,
        pb::ImageTagMutability::Immutable as i32
    );
    assert_eq!(
        created.image_scanning_configuration.unwrap().scan_on_push,
        Some(true)
    );
    assert_eq!(
        created.encryption_configuration.unwrap().encryption_type,
        pb::EncryptionType::Aes256 as i32
    );

    let described = client
        .describe_repositories(described_by_name(&name))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.repositories.len(), 1);
    assert_eq!(
        described.repositories[0].repository_arn,
        created.repository_arn
    );
}

fn described_by_name(name: &str) -> pb::DescribeRepositoriesRequest {
    pb::DescribeRepositoriesRequest {
        repository_names: vec![name.to_owned()],
        ..Default::default()
    }
}

async fn a_repository_is_created_once(kind: Kind) {
    let (mut client, _ctx) = setup(kind).await;
    let name = unique_name("once");
    create(&mut client, &name).await;
    let again = client
        .create_repository(pb::CreateRepositoryRequest {
            repository_name: name,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(
        &again,
        Code::AlreadyExists,
        "RepositoryAlreadyExistsException",
    );
}

async fn a_deleted_repository_is_gone(kind: Kind) {
    let (mut client, _ctx) = setup(kind).await;
    let name = unique_name("deleted");
    create(&mut client, &name).await;
    let delete = || pb::DeleteRepositoryRequest {
        repository_name: name.clone(),
        ..Default::default()
    };
    let deleted = client
        .delete_repository(delete())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        deleted.repository.unwrap().repository_name.as_deref(),
        Some(name.as_str())
    );

    let gone = client.delete_repository(delete()).await.unwrap_err();
    assert_ecr_error(&gone, Code::NotFound, "RepositoryNotFoundException");
    let missing = client
        .describe_repositories(described_by_name(&name))
        .await
        .unwrap_err();
    assert_ecr_error(&missing, Code::NotFound, "RepositoryNotFoundException");
}

async fn a_repository_with_images_is_not_deleted_without_force(kind: Kind) {
    let (mut client, _ctx, image) = pushed(kind, "not-empty", "v1").await;
    let not_empty = client
        .delete_repository(pb::DeleteRepositoryRequest {
            repository_name: image.name,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(
        &not_empty,
        Code::FailedPrecondition,
        "RepositoryNotEmptyException",
    );
}

async fn force_deletes_a_repository_with_images(kind: Kind) {
    let (mut client, _ctx, image) = pushed(kind, "force", "latest").await;
    let deleted = client
        .delete_repository(pb::DeleteRepositoryRequest {
            repository_name: image.name.clone(),
            force: Some(true),
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        deleted.repository.unwrap().repository_name,
        Some(image.name)
    );
}

async fn repository_policy_is_deleted_once(kind: Kind) {
    let (mut client, ctx) = setup(kind).await;
    let name = unique_name("policy");
    create(&mut client, &name).await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"pull","Effect":"Allow","Principal":"*","Action":["ecr:BatchGetImage"]}]}"#;
    let sdk = ecr_client(&upstream_settings(&ctx.upstream.url));
    sdk.set_repository_policy()
        .repository_name(&name)
        .policy_text(policy)
        .send()
        .await
        .unwrap();
    let deleted = client
        .delete_repository_policy(pb::DeleteRepositoryPolicyRequest {
            repository_name: name.clone(),
            registry_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.repository_name.as_deref(), Some(name.as_str()));
    assert_eq!(deleted.registry_id.as_deref(), Some("123456789012"));
    let text: serde_json::Value =
        serde_json::from_str(deleted.policy_text.as_deref().unwrap()).unwrap();
    assert_eq!(text["Statement"][0]["Sid"], "pull");

    let again = client
        .delete_repository_policy(pb::DeleteRepositoryPolicyRequest {
            repository_name: name,
            registry_id: None,
        })
        .await
        .unwrap_err();
    assert_ecr_error(&again, Code::NotFound, "RepositoryPolicyNotFoundException");
}

#[tokio::test]
async fn pagination_pages_through_the_facade() {
    let (_emulator, facade) = emulator_facade(false).await;
    let mut client = facade.client().await;
    for i in 0..25 {
        create(&mut client, &format!("paged/repo-{i:02}")).await;
    }
    let mut names = Vec::new();
    let mut next_token = None;
    let mut pages = 0;
    loop {
        let page = client
            .describe_repositories(pb::DescribeRepositoriesRequest {
                max_results: Some(10),
                next_token: next_token.take(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        pages += 1;
        assert!(page.repositories.len() <= 10);
        names.extend(
            page.repositories
                .into_iter()
                .map(|r| r.repository_name.unwrap()),
        );
        match page.next_token {
            Some(token) => next_token = Some(token),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 25, "every repository exactly once");

    let bad_token = client
        .describe_repositories(pb::DescribeRepositoriesRequest {
            next_token: Some("not-a-token".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_ecr_error(
        &bad_token,
        Code::InvalidArgument,
        "InvalidParameterException",
    );
}
