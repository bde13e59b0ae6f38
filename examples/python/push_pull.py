#!/usr/bin/env python3
"""Push, tag and pull an image through ecr-facade alone, from Python grpcio.

    PYTHONPATH=build/clients/python .venv/bin/python examples/python/push_pull.py 127.0.0.1:50051

Builds a real image (a tar layer and its config), pushes both with PushLayer,
puts a Docker v2 manifest tagged v1, promotes it to "release" by putting the
manifest exactly as BatchGetImage returned it, lists the tags, then pulls the
layer back with PullLayer and checks the bytes. Exits non-zero on any failure.
"""

import hashlib
import io
import json
import secrets
import sys
import tarfile

import grpc

from ecr.v1 import service_pb2 as ecr, service_pb2_grpc

CHUNK = 1024 * 1024


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_layer() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        body = b"hello from ecr-facade\n" * 1000
        info = tarfile.TarInfo("hello.txt")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return buffer.getvalue()


def push(stub, repository: str, data: bytes) -> str:
    """Streams `data` with PushLayer; returns the digest the facade computed."""

    def messages():
        yield ecr.PushLayerRequest(
            header=ecr.PushLayerHeader(
                repository_name=repository, expected_digest=digest(data), total_size=len(data)
            )
        )
        for start in range(0, len(data), CHUNK):
            yield ecr.PushLayerRequest(chunk=data[start : start + CHUNK])

    result = None
    for answer in stub.PushLayer(messages(), timeout=60):
        if answer.HasField("progress"):
            print(f"  {answer.progress.committed_size} bytes committed (upload {answer.progress.upload_id})")
        else:
            result = answer.result
    assert result is not None and result.layer_digest == digest(data), result
    return result.layer_digest


def pull(stub, repository: str, layer_digest: str) -> bytes:
    data = bytearray()
    for message in stub.PullLayer(
        ecr.PullLayerRequest(repository_name=repository, layer_digest=layer_digest), timeout=60
    ):
        data += message.chunk
    return bytes(data)


def main(target: str) -> None:
    stub = service_pb2_grpc.EcrServiceStub(grpc.insecure_channel(target))
    repository = f"examples/promote-{secrets.token_hex(4)}"
    stub.CreateRepository(ecr.CreateRepositoryRequest(repository_name=repository), timeout=30)

    layer = tar_layer()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux",
         "rootfs": {"type": "layers", "diff_ids": [digest(layer)]}}
    ).encode()
    layer_digest = push(stub, repository, layer)
    push(stub, repository, config)
    print(f"ok   pushed layer {layer_digest} and config {digest(config)}")

    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "size": len(config), "digest": digest(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar",
                    "size": len(layer), "digest": layer_digest}],
    })
    image = stub.PutImage(
        ecr.PutImageRequest(repository_name=repository, image_manifest=manifest, image_tag="v1"),
        timeout=30,
    ).image
    print(f"ok   put image {image.image_id.image_digest} as v1")

    # Promotion: the manifest exactly as BatchGetImage returns it, a new tag.
    got = stub.BatchGetImage(
        ecr.BatchGetImageRequest(repository_name=repository, image_ids=[{"image_tag": "v1"}]),
        timeout=30,
    )
    stub.PutImage(
        ecr.PutImageRequest(
            repository_name=repository,
            image_manifest=got.images[0].image_manifest,
            image_tag="release",
        ),
        timeout=30,
    )
    listed = stub.ListImages(ecr.ListImagesRequest(repository_name=repository), timeout=30)
    tags = sorted(i.image_tag for i in listed.image_ids if i.image_tag)
    assert tags == ["release", "v1"], tags
    print(f"ok   tags {tags} on one image")

    pulled = pull(stub, repository, layer_digest)
    assert pulled == layer, "pulled bytes differ"
    print(f"ok   pulled {len(pulled)} bytes back, identical")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        main(sys.argv[1])
    except grpc.RpcError as err:
        sys.exit(f"FAILED: {err.code().name}: {err.details()}")
