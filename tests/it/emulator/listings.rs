//! The listings page as the SDK's paginators expect, and bad paging
//! parameters are refused.
use aws_sdk_ecr::types::{ImageIdentifier, ImageTagMutability, TagStatus};

use super::{code, create, emulator_and_client, manifest, upload};

#[tokio::test]
async fn repositories_page_with_the_sdk_paginator() {
    let (_emulator, ecr) = emulator_and_client().await;
    for i in 0..7 {
        create(&ecr, &format!("page/repo-{i}"), ImageTagMutability::Mutable).await;
    }
    let pages: Vec<_> = ecr
        .describe_repositories()
        .max_results(3)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(pages.len(), 3);
    let names: Vec<_> = pages
        .iter()
        .flat_map(|p| p.repositories())
        .map(|r| r.repository_name().unwrap().to_owned())
        .collect();
    let expected: Vec<_> = (0..7).map(|i| format!("page/repo-{i}")).collect();
    assert_eq!(names, expected);
}

const PAGED: &str = "page/images";

/// [`PAGED`] with five images, the even ones tagged `t0`, `t2`, `t4`.
async fn five_images(ecr: &aws_sdk_ecr::Client) {
    create(ecr, PAGED, ImageTagMutability::Mutable).await;
    let config = upload(ecr, PAGED, b"{}").await;
    for i in 0..5 {
        let layer = upload(ecr, PAGED, format!("layer {i}").as_bytes()).await;
        let text = manifest(&config, &[(&layer, 7)]);
        let put = ecr.put_image().repository_name(PAGED).image_manifest(text);
        let put = if i % 2 == 0 {
            put.image_tag(format!("t{i}"))
        } else {
            put
        };
        put.send().await.unwrap();
    }
}

#[tokio::test]
async fn images_page_with_the_sdk_paginators() {
    let (_emulator, ecr) = emulator_and_client().await;
    five_images(&ecr).await;
    let ids: Vec<_> = ecr
        .list_images()
        .repository_name(PAGED)
        .max_results(2)
        .filter(
            aws_sdk_ecr::types::ListImagesFilter::builder()
                .tag_status(TagStatus::Tagged)
                .build(),
        )
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    let tags: Vec<_> = ids.iter().map(|i| i.image_tag().unwrap()).collect();
    assert_eq!(tags, ["t0", "t2", "t4"]);
    let details: Vec<_> = ecr
        .describe_images()
        .repository_name(PAGED)
        .max_results(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(details.len(), 5);
}

#[tokio::test]
async fn bad_page_parameters_are_refused() {
    let (_emulator, ecr) = emulator_and_client().await;
    five_images(&ecr).await;
    let err = ecr
        .list_images()
        .repository_name(PAGED)
        .next_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterException");
    let err = ecr
        .describe_images()
        .repository_name(PAGED)
        .image_ids(ImageIdentifier::builder().image_tag("t0").build())
        .max_results(5)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidParameterException");
}
