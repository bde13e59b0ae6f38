#!/usr/bin/env python3
"""A Python (grpcio) client of ecr-facade.

Creates a repository, lists repositories page by page, checks a few thousand
layer digests over the server stream, gets a registry token and decodes the
google.rpc.BadRequest of a refused request. Exits non-zero on the first
unexpected answer.

    scripts/gen-clients python
    PYTHONPATH=build/clients/python .venv/bin/python examples/python/example.py 127.0.0.1:50051

Needs grpcio, grpcio-status and googleapis-common-protos (google.rpc types).
"""

import hashlib
import secrets
import sys

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ecr.v1 import service_pb2, service_pb2_grpc, types_pb2

DIGEST_COUNT = 2000
TIMEOUT_S = 60.0


def list_all_repositories(stub, want):
    """Pages through DescribeRepositories two at a time; every name in `want` must be listed."""
    names, pages, request = [], 0, service_pb2.DescribeRepositoriesRequest(max_results=2)
    while True:
        page = stub.DescribeRepositories(request, timeout=TIMEOUT_S)
        pages += 1
        names.extend(r.repository_name for r in page.repositories)
        if not page.HasField("next_token"):
            break
        request.next_token = page.next_token
    missing = set(want) - set(names)
    if missing:
        sys.exit(f"{sorted(missing)} not listed in {len(names)} repositories")
    print(f"listed {len(names)} repositories in {pages} pages")


def check_layers(stub, repository):
    """One call for DIGEST_COUNT digests; one message per upstream batch of <= 100."""
    digests = [
        "sha256:" + hashlib.sha256(f"layer {i}".encode()).hexdigest() for i in range(DIGEST_COUNT)
    ]
    request = service_pb2.BatchCheckLayerAvailabilityRequest(
        repository_name=repository, layer_digests=digests
    )
    messages = answers = 0
    for batch in stub.BatchCheckLayerAvailability(request, timeout=TIMEOUT_S):
        messages += 1
        answers += len(batch.layers) + len(batch.failures)
    if answers != DIGEST_COUNT:
        sys.exit(f"{answers} answers for {DIGEST_COUNT} digests")
    print(f"checked {DIGEST_COUNT} digests: {answers} answers in {messages} messages")


def show_bad_request(stub):
    """An invalid name is refused with a google.rpc.BadRequest naming the field."""
    try:
        stub.CreateRepository(
            service_pb2.CreateRepositoryRequest(repository_name="Bad_Name!"), timeout=TIMEOUT_S
        )
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.INVALID_ARGUMENT:
            raise
        status = rpc_status.from_call(error)
        violations = []
        for detail in status.details if status else []:
            bad_request = error_details_pb2.BadRequest()
            if detail.Unpack(bad_request):
                violations.extend(bad_request.field_violations)
        if not violations:
            sys.exit(f"no google.rpc.BadRequest in {error}")
        for violation in violations:
            print(f"refused: {violation.field}: {violation.description}")
        return
    sys.exit("bad name: the call succeeded")


def main():
    addr = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:50051"
    with grpc.insecure_channel(addr) as channel:
        stub = service_pb2_grpc.EcrServiceStub(channel)
        # Three repositories, so that listing two per page takes more than one page.
        prefix = f"example-py-{secrets.token_hex(4)}"
        names = [f"{prefix}/{suffix}" for suffix in "abc"]
        for name in names:
            created = stub.CreateRepository(
                service_pb2.CreateRepositoryRequest(
                    repository_name=name, tags=[types_pb2.Tag(key="team", value="examples")]
                ),
                timeout=TIMEOUT_S,
            )
            print(f"created {created.repository.repository_uri}")
        try:
            list_all_repositories(stub, names)
            check_layers(stub, names[0])
            token = stub.GetAuthorizationToken(
                service_pb2.GetAuthorizationTokenRequest(), timeout=TIMEOUT_S
            )
            auth = token.authorization_data[0]
            # The token is a password: print where and until when it works, never the token.
            expires = auth.expires_at.ToDatetime().isoformat()
            print(f"token for {auth.proxy_endpoint}, expires {expires}Z")
            show_bad_request(stub)
        finally:
            for name in names:
                stub.DeleteRepository(
                    service_pb2.DeleteRepositoryRequest(repository_name=name, force=True),
                    timeout=TIMEOUT_S,
                )
            print(f"deleted {prefix}/*")


if __name__ == "__main__":
    main()
