#!/usr/bin/env python3
"""Memory under a flood of maximal BatchCheckLayerAvailability requests.

    .venv/bin/python scripts/attack-layer-check.py [--binary PATH] [--callers N]
        [--digests D] [--char C] [--rounds R] [-- <extra serve flags>]

Starts `ecr-facade serve --emulator` on a loopback port, then R rounds of N
concurrent BatchCheckLayerAvailability calls, each carrying D digests of
1,000 characters C (default U+1F600, 4 UTF-8 bytes: the largest digest the
facade accepts). Prints the answers by status code and the process's peak
RSS (VmHWM, Linux) before and after. Loopback only; the process is stopped
at the end.

Example (issue 11's attack against the default budget, release build):
    cargo build --release
    .venv/bin/python scripts/attack-layer-check.py --binary target/release/ecr-facade
"""

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile
import threading


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM"):
                return int(line.split()[1])
    return -1


def stubs(proto_dir):
    from grpc_tools import protoc
    import grpc_tools

    out = tempfile.mkdtemp()
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    files = glob.glob(f"{proto_dir}/ecr/v1/*.proto")
    args = ["protoc", f"-I{proto_dir}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}"]
    if protoc.main(args + files) != 0:
        sys.exit("stub generation failed")
    sys.path.insert(0, out)


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(root, "target/debug/ecr-facade"))
    parser.add_argument("--callers", type=int, default=40)
    parser.add_argument("--digests", type=int, default=2000)
    parser.add_argument("--char", default="\U0001F600")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("serve_flags", nargs="*")
    opts = parser.parse_args()

    stubs(os.path.join(root, "proto"))
    import grpc
    from ecr.v1 import service_pb2, service_pb2_grpc

    env = {**os.environ, "RUST_LOG": "warn,ecr_facade=info", "NO_COLOR": "1"}
    proc = subprocess.Popen(
        [opts.binary, "serve", "--emulator", "--listen", "127.0.0.1:0", *opts.serve_flags],
        stdout=subprocess.PIPE, text=True, env=env)
    try:
        addr = None
        for line in proc.stdout:
            match = re.search(r"listen=(\S+)", line)
            if match:
                addr = match.group(1)
                break
        if addr is None:
            sys.exit("the facade did not start")
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        print(f"peak rss at start: {peak_rss_kib(proc.pid) // 1024} MiB")

        channel = grpc.insecure_channel(addr, options=[("grpc.max_send_message_length", 1 << 30)])
        stub = service_pb2_grpc.EcrServiceStub(channel)
        stub.CreateRepository(service_pb2.CreateRepositoryRequest(repository_name="attack"))
        digest = (opts.char * 1000)[:999]
        request = service_pb2.BatchCheckLayerAvailabilityRequest(
            repository_name="attack",
            layer_digests=[digest + str(i % 10) for i in range(opts.digests)])
        codes = {}
        lock = threading.Lock()

        def call():
            try:
                for _ in stub.BatchCheckLayerAvailability(request, timeout=120):
                    pass
                code = "OK"
            except grpc.RpcError as error:
                code = error.code().name
            with lock:
                codes[code] = codes.get(code, 0) + 1

        for _ in range(opts.rounds):
            callers = [threading.Thread(target=call) for _ in range(opts.callers)]
            for caller in callers:
                caller.start()
            for caller in callers:
                caller.join()
        print(f"answers: {codes}")
        print(f"peak rss: {peak_rss_kib(proc.pid) // 1024} MiB")
    finally:
        proc.terminate()
        proc.wait()


if __name__ == "__main__":
    main()
