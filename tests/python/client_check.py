#!/usr/bin/env python3
"""Polyglot client check: drive a running ecr-facade with a Python grpcio client.

    .venv/bin/python tests/python/client_check.py <host:port> <proto_dir>

Generates Python stubs from <proto_dir>/ecr/v1/*.proto into a temporary
directory, then, over plaintext gRPC:
  (a) CreateRepository "py-client-<hex>"            -> name echoed back
  (b) DescribeRepositories [that name]              -> exactly one repository
  (c) CreateRepository "Bad_Name!"                  -> INVALID_ARGUMENT with a
      google.rpc.BadRequest detail naming field "repository_name"
  (d) BatchCheckLayerAvailability with 250 digests  -> every digest exactly once
      across layers[] + failures[], in >= 3 streamed messages (batches <= 100)
  (e) DeleteRepository of that name                 -> succeeds
Prints one line per check; exits 0 when all pass, 1 on the first failed check,
2 on a usage or stub-generation error.
"""

import glob
import os
import secrets
import sys
import tempfile
import traceback

RPC_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 20.0
DIGEST_COUNT = 250
MIN_STREAM_MESSAGES = 3


class CheckFailed(Exception):
    pass


def fail(msg):
    raise CheckFailed(msg)


def ok(label, detail=""):
    print(f"ok   {label}" + (f": {detail}" if detail else ""), flush=True)


def generate_stubs(proto_dir, out_dir):
    """Run grpc_tools.protoc on <proto_dir>/ecr/v1/*.proto; return (pb2, pb2_grpc) of service.proto."""
    import importlib

    import grpc_tools
    from grpc_tools import protoc

    files = sorted(glob.glob(os.path.join(proto_dir, "ecr", "v1", "*.proto")))
    if not files:
        raise RuntimeError(f"no .proto files in {os.path.join(proto_dir, 'ecr', 'v1')}")
    # protoc wants paths relative to an include dir so the module layout is ecr/v1/<name>_pb2.py.
    rel = [os.path.relpath(f, proto_dir) for f in files]
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *rel,
    ]
    rc = protoc.main(args)
    if rc != 0:
        raise RuntimeError(f"protoc failed (exit {rc}) on {', '.join(rel)}")
    # Make ecr/ and ecr/v1/ regular packages so no other "ecr" on sys.path can shadow them.
    for pkg in ("ecr", os.path.join("ecr", "v1")):
        open(os.path.join(out_dir, pkg, "__init__.py"), "a").close()
    sys.path.insert(0, out_dir)
    pb2 = importlib.import_module("ecr.v1.service_pb2")
    pb2_grpc = importlib.import_module("ecr.v1.service_pb2_grpc")
    return pb2, pb2_grpc


def make_stub(pb2, pb2_grpc, channel):
    services = list(pb2.DESCRIPTOR.services_by_name)
    if len(services) != 1:
        raise RuntimeError(f"expected one service in ecr/v1/service.proto, found {services}")
    return getattr(pb2_grpc, f"{services[0]}Stub")(channel)


def bad_request_fields(err):
    """Field paths of all google.rpc.BadRequest details in a failed call's status."""
    from google.rpc import error_details_pb2
    from grpc_status import rpc_status

    try:
        status = rpc_status.from_call(err)
    except ValueError as e:  # code/message in grpc-status-details-bin disagree with the call's
        fail(f"grpc-status-details-bin inconsistent with the call status: {e}")
    if status is None:
        fail(f"no grpc-status-details-bin in the error (details: {err.details()!r})")
    fields = []
    found = False
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            br = error_details_pb2.BadRequest()
            detail.Unpack(br)
            found = True
            fields.extend(v.field for v in br.field_violations)
    if not found:
        fail(f"status details carry no google.rpc.BadRequest (types: {[d.type_url for d in status.details]})")
    return fields


def run_checks(pb2, stub):
    import grpc

    name = f"py-client-{secrets.token_hex(6)}"
    created = False
    try:
        # (a)
        resp = stub.CreateRepository(pb2.CreateRepositoryRequest(repository_name=name), timeout=RPC_TIMEOUT_S)
        created = True
        got = resp.repository.repository_name
        if got != name:
            fail(f"(a) CreateRepository returned repository_name {got!r}, want {name!r}")
        ok("(a) CreateRepository", f"{name} -> {resp.repository.repository_uri or '(no uri)'}")

        # (b)
        resp = stub.DescribeRepositories(
            pb2.DescribeRepositoriesRequest(repository_names=[name]), timeout=RPC_TIMEOUT_S
        )
        names = [r.repository_name for r in resp.repositories]
        if names != [name]:
            fail(f"(b) DescribeRepositories([{name!r}]) returned {names!r}, want exactly [{name!r}]")
        ok("(b) DescribeRepositories", f"exactly one: {name}")

        # (c)
        bad = "Bad_Name!"
        try:
            stub.CreateRepository(pb2.CreateRepositoryRequest(repository_name=bad), timeout=RPC_TIMEOUT_S)
        except grpc.RpcError as err:
            if err.code() != grpc.StatusCode.INVALID_ARGUMENT:
                fail(f"(c) CreateRepository({bad!r}) failed with {err.code()} ({err.details()!r}), want INVALID_ARGUMENT")
            fields = bad_request_fields(err)
            if "repository_name" not in fields:
                fail(f"(c) BadRequest field_violations are {fields!r}, want one for 'repository_name'")
            ok("(c) CreateRepository invalid name", f"INVALID_ARGUMENT, BadRequest fields {fields}")
        else:
            fail(f"(c) CreateRepository({bad!r}) succeeded, want INVALID_ARGUMENT")

        # (d)
        digests = [f"sha256:{secrets.token_hex(32)}" for _ in range(DIGEST_COUNT)]
        req = pb2.BatchCheckLayerAvailabilityRequest(repository_name=name, layer_digests=digests)
        seen = {}
        messages = 0
        for msg in stub.BatchCheckLayerAvailability(req, timeout=RPC_TIMEOUT_S * 2):
            messages += 1
            batch = [l.layer_digest for l in msg.layers] + [f.layer_digest for f in msg.failures]
            if len(batch) > 100:
                fail(f"(d) stream message {messages} reports {len(batch)} digests, want <= 100")
            for d in batch:
                seen[d] = seen.get(d, 0) + 1
        want = set(digests)
        missing = [d for d in digests if d not in seen]
        dupes = {d: n for d, n in seen.items() if n > 1}
        extra = [d for d in seen if d not in want]
        if missing or dupes or extra:
            fail(
                f"(d) BatchCheckLayerAvailability: {len(missing)} digests missing, {len(dupes)} duplicated, "
                f"{len(extra)} unexpected (e.g. missing {missing[:2]}, dup {list(dupes.items())[:2]}, extra {extra[:2]})"
            )
        if messages < MIN_STREAM_MESSAGES:
            fail(f"(d) BatchCheckLayerAvailability streamed {messages} messages, want >= {MIN_STREAM_MESSAGES}")
        ok("(d) BatchCheckLayerAvailability", f"{DIGEST_COUNT} digests each reported once in {messages} messages")

        # (e)
        resp = stub.DeleteRepository(pb2.DeleteRepositoryRequest(repository_name=name), timeout=RPC_TIMEOUT_S)
        created = False
        if resp.repository.repository_name not in ("", name):
            fail(f"(e) DeleteRepository returned repository_name {resp.repository.repository_name!r}, want {name!r}")
        ok("(e) DeleteRepository", name)
    except grpc.RpcError as err:
        fail(f"unexpected RPC error {err.code()}: {err.details()!r}")
    finally:
        if created:  # best effort, so a failed run leaves nothing behind
            try:
                stub.DeleteRepository(
                    pb2.DeleteRepositoryRequest(repository_name=name, force=True), timeout=RPC_TIMEOUT_S
                )
            except Exception:
                pass


def main(argv):
    if len(argv) != 3:
        print(f"usage: {argv[0]} <host:port> <proto_dir>", file=sys.stderr)
        return 2
    target, proto_dir = argv[1], os.path.abspath(argv[2])

    import grpc

    with tempfile.TemporaryDirectory(prefix="ecr-pystubs-") as out_dir:
        try:
            pb2, pb2_grpc = generate_stubs(proto_dir, out_dir)
        except Exception as e:
            traceback.print_exc()
            print(f"FAIL stub generation from {proto_dir}: {e}", file=sys.stderr, flush=True)
            return 2
        ok("stubs", f"generated ecr.v1 Python stubs from {proto_dir}")

        with grpc.insecure_channel(target) as channel:
            try:
                grpc.channel_ready_future(channel).result(timeout=CONNECT_TIMEOUT_S)
            except grpc.FutureTimeoutError:
                print(f"FAIL could not connect to {target} within {CONNECT_TIMEOUT_S:.0f}s", file=sys.stderr, flush=True)
                return 1
            stub = make_stub(pb2, pb2_grpc, channel)
            try:
                run_checks(pb2, stub)
            except CheckFailed as e:
                print(f"FAIL {e}", file=sys.stderr, flush=True)
                return 1
    print("client_check: all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
