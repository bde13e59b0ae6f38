#!/usr/bin/env python3
"""Differential test: one ECR scenario, run with boto3 against moto and the
ecr-facade emulator, answers compared field by field.

    .venv/bin/python tests/python/differential.py MOTO_URL EMULATOR_URL

Both sides get the same calls in the same order (parameter validation off in
boto3, so invalid input reaches the servers). Each answer is normalized
before comparing: ResponseMetadata, request ids, generated ids (uploadId),
timestamps, tokens and URLs are dropped; nextToken becomes "<token>"; image
digests become "<image:N>" in push order (each side's own digest, so one
digest difference does not cascade — it is checked once, in step
digest_is_manifest_sha256); lists are sorted by their identifying members;
errors become {"error": code, "status": HTTP status} plus any
lastValidByteReceived. Some steps compare a derived view instead (say
"has a nextToken"), named in the step.

Known differences (step, path; "[*]" stands for any list position). The
"ECR" column says which side matches Amazon ECR and why:

| step                       | path                            | ECR      | why |
|----------------------------|---------------------------------|----------|-----|
| create_too_short           | error, status, repository       | emulator | RepositoryName has length 2..256; moto checks only its pattern, so "a" is created |
| complete_wrong_digest      | error, status, layerDigest, registryId, repositoryName | emulator | ECR verifies the uploaded bytes against layerDigests (InvalidLayerException); moto stores them under their own digest |
| check_layers_before_image  | layers[*].mediaType             | emulator (inferred) | moto reports application/vnd.docker.image.rootfs.diff.tar.gzip for any layer; a layer's media type is known only from a manifest naming it (not checked against live ECR) |
| put_missing_layer          | error, status, image            | emulator | ECR refuses a manifest naming blobs not in the repository (LayersNotFoundException); moto does not check |
| digest_is_manifest_sha256  | matches                         | emulator | ECR's image digest is the sha256 of the manifest bytes; moto hashes the concatenated layer digests |
| describe_paged             | count, hasNextToken             | emulator | moto ignores maxResults/nextToken on DescribeRepositories |
| move_last_tag_list         | untagged                        | emulator | ECR keeps an image whose last tag moved away (untagged); moto deletes it |
| describe_images, describe_by_tag | imageDetails[*].imageSizeInBytes, imageDetails[*].artifactMediaType | emulator | ECR reports the sum of the layer sizes and the config media type; moto reports config.size and no artifactMediaType |
| get_missing_digest_and_tag | failures[*].failureCode, failures[*].failureReason, failures[*].imageId.imageTag | emulator | ECR's code for an id with neither member is MissingDigestAndTag; moto says ImageNotFound for tag "null" |
| get_unaccepted_media_type  | images[*].imageManifest, images[*].imageManifestMediaType | emulator | moto ignores acceptedMediaTypes; ECR's user guide documents translating a Docker v2 schema 2 image pulled by tag to OCI for a client accepting only OCI, as the emulator does (src/emulator/ops/convert.rs) |
| get_unaccepted_media_type  | images[*].imageId.imageDigest   | unclear  | the emulator answers the translated bytes' own sha256; ECR does not document which digest it answers |
| download_url               | error, status, layerDigest      | emulator | moto does not implement GetDownloadUrlForLayer (HTTP 500) |
| auth_token                 | [*].expiresInFuture             | emulator | ECR tokens last 12 hours; moto's expiresAt is 2015-01-01 |
| immutable_tag_move         | error                           | emulator | ECR names this ImageTagAlreadyExistsException; moto says ImageAlreadyExistsException |

Exit status: 0 when every difference is in the table and every table entry
still happens; 1 otherwise (a difference to explain, or a stale entry);
2 on a usage error.
"""

import base64
import hashlib
import json
import re
import secrets
import sys
import time

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

# (step, normalized path) -> which side matches ECR. Mirrors the docstring.
KNOWN = {
    ("create_too_short", "error"): "emulator",
    ("create_too_short", "status"): "emulator",
    ("create_too_short", "repository"): "emulator",
    ("complete_wrong_digest", "error"): "emulator",
    ("complete_wrong_digest", "status"): "emulator",
    ("complete_wrong_digest", "layerDigest"): "emulator",
    ("complete_wrong_digest", "registryId"): "emulator",
    ("complete_wrong_digest", "repositoryName"): "emulator",
    ("check_layers_before_image", "layers[*].mediaType"): "emulator",
    ("put_missing_layer", "error"): "emulator",
    ("put_missing_layer", "status"): "emulator",
    ("put_missing_layer", "image"): "emulator",
    ("digest_is_manifest_sha256", "matches"): "emulator",
    ("describe_paged", "count"): "emulator",
    ("describe_paged", "hasNextToken"): "emulator",
    ("move_last_tag_list", "untagged"): "emulator",
    ("describe_images", "imageDetails[*].imageSizeInBytes"): "emulator",
    ("describe_images", "imageDetails[*].artifactMediaType"): "emulator",
    ("describe_by_tag", "imageDetails[*].imageSizeInBytes"): "emulator",
    ("describe_by_tag", "imageDetails[*].artifactMediaType"): "emulator",
    ("get_missing_digest_and_tag", "failures[*].failureCode"): "emulator",
    ("get_missing_digest_and_tag", "failures[*].failureReason"): "emulator",
    ("get_missing_digest_and_tag", "failures[*].imageId.imageTag"): "emulator",
    ("get_unaccepted_media_type", "images[*].imageManifest"): "emulator",
    ("get_unaccepted_media_type", "images[*].imageManifestMediaType"): "emulator",
    ("get_unaccepted_media_type", "images[*].imageId.imageDigest"): "unclear",
    ("download_url", "error"): "emulator",
    ("download_url", "status"): "emulator",
    ("download_url", "layerDigest"): "emulator",
    ("auth_token", "[*].expiresInFuture"): "emulator",
    ("immutable_tag_move", "error"): "emulator",
}

DROPPED = {
    "ResponseMetadata",
    "uploadId",
    "createdAt",
    "imagePushedAt",
    "expiresAt",
    "authorizationToken",
    "downloadUrl",
    "kmsKey",
    "lastRecordedPullTime",
}
IDENTITY = ("repositoryName", "imageId", "imageDigest", "imageTag", "layerDigest", "failureCode")


class Side:
    def __init__(self, name, url):
        self.name = name
        config = Config(
            parameter_validation=False,
            retries={"total_max_attempts": 1},
            connect_timeout=5,
            read_timeout=30,
        )
        self.ecr = boto3.client(
            "ecr",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=config,
        )
        self.aliases = {}

    def call(self, op, **kwargs):
        """The answer, or {"error", "status"} for a service error."""
        try:
            return getattr(self.ecr, op)(**kwargs)
        except ClientError as err:
            answer = {
                "error": err.response.get("Error", {}).get("Code"),
                "status": err.response.get("ResponseMetadata", {}).get("HTTPStatusCode"),
            }
            if "lastValidByteReceived" in err.response:
                answer["lastValidByteReceived"] = err.response["lastValidByteReceived"]
            return answer



def normalize(value, side):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in DROPPED:
                continue
            if key == "nextToken":
                out[key] = "<token>"
            else:
                out[key] = normalize(item, side)
        return out
    if isinstance(value, list):
        items = [normalize(v, side) for v in value]
        return sorted(items, key=sort_key)
    if isinstance(value, str) and value in side.aliases:
        return side.aliases[value]
    return value


def sort_key(item):
    if isinstance(item, dict):
        identity = {k: item[k] for k in IDENTITY if k in item}
        return json.dumps(identity, sort_keys=True, default=str) + json.dumps(item, sort_keys=True, default=str)
    return json.dumps(item, sort_keys=True, default=str)


def differences(moto, emulator, path=""):
    """Yields (path, moto value, emulator value)."""
    if isinstance(moto, dict) and isinstance(emulator, dict):
        for key in sorted(set(moto) | set(emulator)):
            sub = f"{path}.{key}" if path else key
            if key not in moto or key not in emulator:
                yield sub, moto.get(key, "<absent>"), emulator.get(key, "<absent>")
            else:
                yield from differences(moto[key], emulator[key], sub)
    elif isinstance(moto, list) and isinstance(emulator, list):
        for i in range(max(len(moto), len(emulator))):
            sub = f"{path}[{i}]"
            if i >= len(moto) or i >= len(emulator):
                yield sub, moto[i] if i < len(moto) else "<absent>", emulator[i] if i < len(emulator) else "<absent>"
            else:
                yield from differences(moto[i], emulator[i], sub)
    elif moto != emulator:
        yield path, moto, emulator


class Run:
    def __init__(self, moto_url, emulator_url):
        self.moto = Side("moto", moto_url)
        self.emulator = Side("emulator", emulator_url)
        self.unexpected = []
        self.seen_known = set()
        self.pushes = 0

    def name_images(self, raw):
        """Names the digests of one push "<image:N>" on both sides alike (a
        side that refused the push just does not get the name)."""
        self.pushes += 1
        for answer, side in zip(raw, self.sides()):
            digest = answer.get("image", {}).get("imageId", {}).get("imageDigest")
            if digest:
                side.aliases.setdefault(digest, f"<image:{self.pushes}>")

    def both(self, step, op, view=None, **kwargs):
        """Calls op on both sides and compares; returns both raw answers."""
        raw = (self.moto.call(op, **kwargs), self.emulator.call(op, **kwargs))
        return self.compare(step, raw, view)

    def compare(self, step, raw, view=None):
        shown = [view(answer, side) if view else answer for answer, side in zip(raw, self.sides())]
        moto, emulator = (normalize(answer, side) for answer, side in zip(shown, self.sides()))
        found = list(differences(moto, emulator))
        for path, moto_value, emulator_value in found:
            general = re.sub(r"\[\d+\]", "[*]", path)
            if (step, general) in KNOWN:
                self.seen_known.add((step, general))
                mark = "known"
            else:
                self.unexpected.append((step, path, moto_value, emulator_value))
                mark = "UNEXPECTED"
            print(f"  {mark:10} {step}: {path}: moto={short(moto_value)} emulator={short(emulator_value)}")
        print(f"{'same' if not found else 'differs':8} {step}")
        return raw

    def sides(self):
        return (self.moto, self.emulator)


def short(value):
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest(config_digest, layers):
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 2,
                "digest": config_digest,
            },
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": len(data), "digest": sha256(data)}
                for data in layers
            ],
        }
    )


def upload(run, step, repo, data):
    """Uploads `data` in two parts on both sides, comparing each answer."""
    started = run.both(f"{step}_initiate", "initiate_layer_upload", repositoryName=repo)
    ids = [answer["uploadId"] for answer in started]
    half = len(data) // 2
    parts = [(0, data[:half]), (half, data[half:])]
    for n, (first, chunk) in enumerate(parts):
        raw = tuple(
            side.call(
                "upload_layer_part",
                repositoryName=repo,
                uploadId=upload_id,
                partFirstByte=first,
                partLastByte=first + len(chunk) - 1,
                layerPartBlob=chunk,
            )
            for side, upload_id in zip(run.sides(), ids)
        )
        run.compare(f"{step}_part{n}", raw)
    return ids


def complete(run, step, repo, ids, digest):
    raw = tuple(
        side.call("complete_layer_upload", repositoryName=repo, uploadId=upload_id, layerDigests=[digest])
        for side, upload_id in zip(run.sides(), ids)
    )
    return run.compare(step, raw)


def push(run, step, repo, text, tag=None):
    kwargs = {"repositoryName": repo, "imageManifest": text}
    if tag is not None:
        kwargs["imageTag"] = tag
    raw = tuple(side.call("put_image", **kwargs) for side in run.sides())
    run.name_images(raw)
    run.compare(step, raw)
    return raw


def scenario(run):
    suffix = secrets.token_hex(4)
    repo = f"diff-{suffix}/app"
    fixed = f"diff-{suffix}/fixed"
    loose = f"diff-{suffix}/loose"

    run.both("create_mutable", "create_repository", repositoryName=repo)
    run.both("create_immutable", "create_repository", repositoryName=fixed, imageTagMutability="IMMUTABLE")
    run.both("create_loose", "create_repository", repositoryName=loose)
    run.both("create_duplicate", "create_repository", repositoryName=repo)
    run.both("create_bad_pattern", "create_repository", repositoryName="Bad_Name")
    run.both("create_too_short", "create_repository", repositoryName="a")
    run.both("describe_named", "describe_repositories", repositoryNames=[repo, fixed])
    run.both("describe_missing", "describe_repositories", repositoryNames=[f"diff-{suffix}/none"])
    run.both(
        "describe_paged",
        "describe_repositories",
        view=lambda a, s: {"count": len(a.get("repositories", [])), "hasNextToken": "nextToken" in a},
        maxResults=1,
    )

    config = b"{}"
    layer_one = bytes(range(256)) * 8
    layer_two = b"second layer " * 100
    layer_three = b"third layer " * 50
    for name, data in (("config", config), ("layer_one", layer_one), ("layer_two", layer_two), ("layer_three", layer_three)):
        ids = upload(run, f"upload_{name}", repo, data)
        complete(run, f"complete_{name}", repo, ids, sha256(data))
    ids = upload(run, "upload_config_fixed", fixed, config)
    complete(run, "complete_config_fixed", fixed, ids, sha256(config))
    ids = upload(run, "upload_layer_fixed", fixed, layer_one)
    complete(run, "complete_layer_fixed", fixed, ids, sha256(layer_one))
    ids = upload(run, "upload_layer_two_fixed", fixed, layer_two)
    complete(run, "complete_layer_two_fixed", fixed, ids, sha256(layer_two))

    # A gap after the first part (lastValidByteReceived 9), then a wrong
    # digest (in the throw-away repository).
    started = run.both("gap_initiate", "initiate_layer_upload", repositoryName=loose)
    for step, first in (("gap_first_part", 0), ("gap_part", 20)):
        raw = tuple(
            side.call(
                "upload_layer_part",
                repositoryName=loose,
                uploadId=answer["uploadId"],
                partFirstByte=first,
                partLastByte=first + 9,
                layerPartBlob=b"0123456789",
            )
            for side, answer in zip(run.sides(), started)
        )
        run.compare(step, raw)
    if raw[1].get("lastValidByteReceived") != 9:
        run.unexpected.append(("gap_part", "lastValidByteReceived", raw[0], raw[1]))
    ids = upload(run, "wrong_digest", loose, b"some bytes")
    complete(run, "complete_wrong_digest", loose, ids, sha256(b"other bytes"))
    run.both(
        "check_layers_before_image",
        "batch_check_layer_availability",
        repositoryName=repo,
        layerDigests=[sha256(layer_one), sha256(config), sha256(b"never uploaded")],
    )
    push(run, "put_missing_layer", loose, manifest(sha256(config), [b"never uploaded"]), "v1")

    first = manifest(sha256(config), [layer_one])
    second = manifest(sha256(config), [layer_one, layer_two])
    third = manifest(sha256(config), [layer_three])
    pushed = push(run, "put_first", repo, first, "v1")
    raw = tuple({"matches": a.get("image", {}).get("imageId", {}).get("imageDigest") == sha256(first.encode())} for a in pushed)
    run.compare("digest_is_manifest_sha256", raw)
    push(run, "put_identical", repo, first, "v1")
    push(run, "put_second_tag", repo, first, "latest")
    push(run, "put_second_image", repo, second, "latest")
    run.both("list_after_tag_move", "list_images", repositoryName=repo)
    push(run, "put_third_image", repo, third, "v1")
    run.both(
        "move_last_tag_list",
        "list_images",
        view=lambda a, s: {"untagged": sum(1 for i in a.get("imageIds", []) if "imageTag" not in i)},
        repositoryName=repo,
    )
    run.both("describe_images", "describe_images", repositoryName=repo, filter={"tagStatus": "TAGGED"})
    run.both("describe_by_tag", "describe_images", repositoryName=repo, imageIds=[{"imageTag": "latest"}])
    run.both("describe_missing_image", "describe_images", repositoryName=repo, imageIds=[{"imageTag": "nope"}])
    run.both("list_tagged", "list_images", repositoryName=repo, filter={"tagStatus": "TAGGED"})
    run.both("get_by_tag", "batch_get_image", repositoryName=repo, imageIds=[{"imageTag": "latest"}, {"imageTag": "nope"}])
    run.both("get_missing_digest_and_tag", "batch_get_image", repositoryName=repo, imageIds=[{}])
    run.both(
        "get_unaccepted_media_type",
        "batch_get_image",
        repositoryName=repo,
        imageIds=[{"imageTag": "latest"}],
        acceptedMediaTypes=["application/vnd.oci.image.manifest.v1+json"],
    )
    run.both("check_layers", "batch_check_layer_availability", repositoryName=repo, layerDigests=[sha256(layer_two)])
    run.both("download_url", "get_download_url_for_layer", repositoryName=repo, layerDigest=sha256(layer_one))
    run.both(
        "auth_token",
        "get_authorization_token",
        view=lambda a, s: [
            {
                "proxyEndpoint": d["proxyEndpoint"],
                "decodesToAws": base64.b64decode(d["authorizationToken"]).startswith(b"AWS:"),
                "expiresInFuture": d["expiresAt"].timestamp() > time.time(),
            }
            for d in a.get("authorizationData", [])
        ],
    )

    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Sid": "pull", "Effect": "Allow", "Principal": "*", "Action": ["ecr:BatchGetImage"]}
            ],
        }
    )
    run.both("policy_absent", "get_repository_policy", repositoryName=repo)
    run.both("policy_set", "set_repository_policy", repositoryName=repo, policyText=policy)
    run.both("policy_get", "get_repository_policy", repositoryName=repo)
    run.both("policy_delete", "delete_repository_policy", repositoryName=repo)
    run.both("policy_deleted", "get_repository_policy", repositoryName=repo)

    push(run, "immutable_first", fixed, first, "v1")
    push(run, "immutable_tag_move", fixed, second, "v1")

    run.both("delete_by_tag", "batch_delete_image", repositoryName=repo, imageIds=[{"imageTag": "latest"}, {"imageTag": "nope"}])
    run.both("delete_not_empty", "delete_repository", repositoryName=repo)
    run.both("delete_forced", "delete_repository", repositoryName=repo, force=True)
    run.both("delete_gone", "delete_repository", repositoryName=repo)
    run.both("list_gone", "list_images", repositoryName=repo)
    for name in (fixed, loose):
        run.both(f"cleanup_{name.rsplit('/', 1)[1]}", "delete_repository", repositoryName=name, force=True)


def main():
    if len(sys.argv) != 3:
        print("usage: " + __doc__.splitlines()[3].strip(), file=sys.stderr)
        return 2
    run = Run(sys.argv[1], sys.argv[2])
    scenario(run)
    stale = sorted(set(KNOWN) - run.seen_known)
    for step, path in stale:
        print(f"STALE known difference did not happen: {step}: {path}")
    for step, path, moto_value, emulator_value in run.unexpected:
        print(f"UNEXPECTED {step}: {path}: moto={short(moto_value)} emulator={short(emulator_value)}")
    if stale or run.unexpected:
        print(f"FAIL: {len(run.unexpected)} unexpected difference(s), {len(stale)} stale table entr(y/ies)")
        return 1
    print(f"OK: only the {len(KNOWN)} known differences")
    return 0


if __name__ == "__main__":
    sys.exit(main())
