//! Transfers that break: a push cut mid-way and resumed, a pull resumed
//! from an offset, pushes past their cap, corrupted downloads (DATA_LOSS).

use super::*;

/// A client on a connection of its own that the test can cut, as a network
/// failure or a killed caller would.
async fn breakable_client(facade: &TestFacade) -> (EcrServiceClient<Channel>, impl FnOnce()) {
    let addr = facade.addr;
    let socket = Arc::new(Mutex::new(None::<std::net::TcpStream>));
    let kept = Arc::clone(&socket);
    let channel = tonic::transport::Endpoint::from_shared(facade.url())
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: http::Uri| {
            let kept = Arc::clone(&kept);
            async move {
                let stream = tokio::net::TcpStream::connect(addr).await?.into_std()?;
                *kept.lock().unwrap() = Some(stream.try_clone()?);
                let stream = tokio::net::TcpStream::from_std(stream)?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
        .unwrap();
    let cut = move || {
        let socket = socket.lock().unwrap().take().expect("connected");
        socket.shutdown(std::net::Shutdown::Both).unwrap();
    };
    (EcrServiceClient::new(channel), cut)
}

/// Sends `bytes` as chunks of 1 MiB, until the push ends.
async fn send_chunks(tx: &tokio::sync::mpsc::Sender<pb::PushLayerRequest>, bytes: &[u8]) {
    for part in bytes.chunks(MIB) {
        let chunk = pb::PushLayerRequest {
            message: Some(Send::Chunk(Bytes::copy_from_slice(part))),
        };
        if tx.send(chunk).await.is_err() {
            return;
        }
    }
}

/// Pushes `layer` into `name` on a connection of its own and cuts that
/// connection once ECR has committed `committed` bytes: the upload's id.
async fn push_broken_at(facade: &TestFacade, name: &str, layer: &[u8], committed: i64) -> String {
    let (mut breakable, cut) = breakable_client(facade).await;
    let (tx, mut answers) = open_push(&mut breakable, header(name)).await;
    let layer = layer.to_vec();
    let sender = tokio::spawn(async move {
        send_chunks(&tx, &layer).await;
        // Never half-closes: the stream breaks instead.
        std::future::pending::<()>().await;
    });
    let mut upload_id = String::new();
    while let Some(answer) = answers.message().await.unwrap() {
        let Some(Received::Progress(progress)) = answer.message else {
            panic!("a progress message");
        };
        upload_id = progress.upload_id;
        if progress.committed_size == committed {
            break;
        }
    }
    cut();
    assert!(
        answers.message().await.is_err(),
        "the cut connection fails the call"
    );
    sender.abort();
    upload_id
}

/// Opens a push resuming upload `upload_id` of `layer` on `client`: the
/// sender, the answers, and the progress the resumed push reported first.
/// While the broken stream still holds the upload (the facade has not seen
/// it break yet), the facade answers ABORTED with a RetryInfo: retried here
/// as a caller would.
async fn open_resume(
    client: &mut EcrServiceClient<Channel>,
    name: &str,
    layer: &[u8],
    upload_id: &str,
) -> (
    tokio::sync::mpsc::Sender<pb::PushLayerRequest>,
    tonic::Streaming<pb::PushLayerResponse>,
    pb::PushLayerProgress,
) {
    let resumed_header = pb::PushLayerHeader {
        upload_id: Some(upload_id.to_owned()),
        expected_digest: Some(sha256_digest(layer)),
        total_size: Some(layer.len() as i64),
        ..header(name)
    };
    for _ in 0..50 {
        let (tx, mut answers) = open_push(client, resumed_header.clone()).await;
        match answers.message().await {
            Ok(Some(pb::PushLayerResponse {
                message: Some(Received::Progress(first)),
            })) => {
                assert_eq!(first.upload_id, upload_id);
                return (tx, answers, first);
            }
            Err(status) if status.code() == Code::Aborted => {
                assert!(status.get_details_retry_info().is_some(), "{status:?}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            other => panic!("the resumed push reports its progress first: {other:?}"),
        }
    }
    panic!("upload {upload_id} stayed in use for 5 s");
}

/// Resumes upload `upload_id` of `layer`: the committed size the resumed
/// push reported first, and its result.
async fn resume_push(
    client: &mut EcrServiceClient<Channel>,
    name: &str,
    layer: &[u8],
    upload_id: &str,
) -> (i64, pb::PushLayerResult) {
    // The first answer says where to go on from; send the rest from there.
    let (tx, mut answers, first) = open_resume(client, name, layer, upload_id).await;
    let rest = layer[first.committed_size as usize..].to_vec();
    tokio::spawn(async move { send_chunks(&tx, &rest).await });
    let mut result = None;
    while let Some(answer) = answers.message().await.unwrap() {
        if let Some(Received::Result(r)) = answer.message {
            result = Some(r);
        }
    }
    (first.committed_size, result.expect("result"))
}

/// A resumed push that breaks again before its next part keeps its
/// checkpoint: it can be resumed once more, and still checks every byte.
#[tokio::test]
async fn a_resume_broken_before_its_next_part_can_be_resumed_again() {
    let (_emulator, facade) = facade_on_emulator(|_| {}).await;
    let mut client = facade.client().await;
    let name = unique_name("resume-twice");
    create(&mut client, &name).await;
    let layer = layer_bytes(25 * MIB, 21);
    let upload_id = push_broken_at(&facade, &name, &layer, 10 * MIB as i64).await;
    let (mut breakable, cut) = breakable_client(&facade).await;
    let (tx, mut answers, first) = open_resume(&mut breakable, &name, &layer, &upload_id).await;
    assert_eq!(first.committed_size, 10 * MIB as i64);
    cut();
    assert!(
        answers.message().await.is_err(),
        "the cut connection fails the call"
    );
    drop(tx);
    let (committed, result) = resume_push(&mut client, &name, &layer, &upload_id).await;
    assert_eq!(committed, 10 * MIB as i64);
    assert_eq!(result.layer_digest, sha256_digest(&layer));
}

/// A push whose stream breaks after two parts resumes from ECR's committed
/// byte, and the facade's digest still covers every byte.
#[tokio::test]
async fn a_broken_push_resumes_from_the_committed_byte() {
    let (_emulator, facade) = facade_on_emulator(|_| {}).await;
    let mut client = facade.client().await;
    let name = unique_name("resume");
    create(&mut client, &name).await;
    let layer = layer_bytes(25 * MIB, 20);
    let upload_id = push_broken_at(&facade, &name, &layer, 20 * MIB as i64).await;
    let (committed, result) = resume_push(&mut client, &name, &layer, &upload_id).await;
    assert_eq!(committed, 20 * MIB as i64);
    assert_eq!(result.layer_digest, sha256_digest(&layer));
    publish(&mut client, &name, &[&layer]).await;
    let (_, pulled) = pull(&mut client, &name, &result.layer_digest, None)
        .await
        .unwrap();
    assert!(pulled == layer);
    // Resuming a finished (or unknown) upload is refused.
    let again = push_messages(
        &mut client,
        messages(
            pb::PushLayerHeader {
                upload_id: Some(upload_id),
                ..header(&name)
            },
            &[],
            1,
        ),
    )
    .await
    .unwrap_err();
    assert_eq!(again.code(), Code::FailedPrecondition, "{again:?}");
}

/// A resumed pull from an offset gets exactly the rest; an offset past the
/// end is INVALID_ARGUMENT naming `offset`.
#[tokio::test]
async fn pulls_resume_from_an_offset() {
    let (_emulator, facade) = facade_on_emulator(|_| {}).await;
    let mut client = facade.client().await;
    let name = unique_name("offset");
    create(&mut client, &name).await;
    let layer = layer_bytes(3 * MIB + 17, 30);
    let digest = push(&mut client, &name, &layer, MIB).await.layer_digest;
    publish(&mut client, &name, &[&layer]).await;
    let (total, rest) = pull(&mut client, &name, &digest, Some(MIB as i64 + 5))
        .await
        .unwrap();
    assert_eq!(total, layer.len() as i64);
    assert!(rest == layer[MIB + 5..]);
    let past = pull(&mut client, &name, &digest, Some(layer.len() as i64))
        .await
        .unwrap_err();
    assert_eq!(past.code(), Code::InvalidArgument, "{past:?}");
    assert_eq!(violated_fields(&past), ["offset"]);
}

/// Pushes beyond --max-concurrent-pushes are refused with RetryInfo, and a
/// push whose caller cancels gives its slot back.
#[tokio::test]
async fn pushes_are_capped_and_cancelled_pushes_free_their_slot() {
    let (_emulator, facade) =
        facade_on_emulator(|b| b.settings.transfer.max_concurrent_pushes = 1).await;
    let mut client = facade.client().await;
    let name = unique_name("cap");
    create(&mut client, &name).await;
    let (mut breakable, cut) = breakable_client(&facade).await;
    let (tx, mut first) = open_push(&mut breakable, header(&name)).await;
    // The push is under way once its first bytes started the upload.
    tx.send(pb::PushLayerRequest {
        message: Some(Send::Chunk(Bytes::from_static(b"first bytes"))),
    })
    .await
    .unwrap();
    assert!(matches!(
        first.message().await.unwrap().unwrap().message,
        Some(Received::Progress(_))
    ));
    assert_eq!(facade.facade.transfer().free_push_slots(), 0);
    let refused = push_messages(&mut client, messages(header(&name), b"x", 1))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.get_details_retry_info().is_some());
    // The caller goes away mid-stream (its connection is cut): the slot
    // comes back; tx stays alive, so this is no clean half-close.
    cut();
    assert!(first.message().await.is_err());
    for _ in 0..200 {
        if facade.facade.transfer().free_push_slots() == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(facade.facade.transfer().free_push_slots(), 1);
    push(&mut client, &name, b"after", 1).await;
    drop(tx);
}

/// Bytes that do not hash to the layer's digest (the emulator corrupts one
/// byte of the download) end the pull with DATA_LOSS, never OK; a resumed
/// pull of a corrupted download cannot be checked by the facade and is the
/// caller's to verify.
#[tokio::test]
async fn corrupted_downloads_end_with_data_loss() {
    let (emulator, facade) = facade_on_emulator(|_| {}).await;
    let mut client = facade.client().await;
    let name = unique_name("corrupt");
    create(&mut client, &name).await;
    let layer = layer_bytes(2 * MIB + 3, 40);
    let digest = push(&mut client, &name, &layer, MIB).await.layer_digest;
    publish(&mut client, &name, &[&layer]).await;
    emulator
        .set_fault(
            "GetDownloadUrlForLayer",
            ecr_facade::emulator::FaultSpec {
                corrupt_downloads: true,
                ..Default::default()
            },
        )
        .unwrap();
    let status = pull(&mut client, &name, &digest, None).await.unwrap_err();
    assert_eq!(status.code(), Code::DataLoss, "{status:?}");
    assert_eq!(
        status.get_details_error_info().expect("ErrorInfo").reason,
        "LAYER_CORRUPT"
    );
    emulator
        .set_fault("GetDownloadUrlForLayer", Default::default())
        .unwrap();
    let (_, pulled) = pull(&mut client, &name, &digest, None).await.unwrap();
    assert!(pulled == layer, "without the fault the same pull is whole");
}
