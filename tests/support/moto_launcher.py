#!/usr/bin/env python3
"""Start moto's server on 127.0.0.1 with an OS-chosen port, for tests.

Protocol (for the process that starts us):
  * stdout: exactly one line ``PORT=<n>`` once the socket is bound and listening.
    After that line fd 1 is redirected to stderr, so a parent that reads only the
    first line can never block us by not draining stdout (it sees EOF instead).
  * stdin: keep it open for as long as the server should live. When stdin hits
    EOF (the parent closed the pipe or died) the process exits immediately.
    Pass ``--ignore-stdin`` to run it by hand with stdin at /dev/null.
  * stderr: moto/werkzeug warnings and errors only (per-request logs are off).

This serves the same WSGI app as the ``moto_server`` command:
``DomainDispatcherApplication(create_backend_app)`` with ``MotoRequestHandler``,
threaded.
"""

import argparse
import logging
import os
import signal
import sys
import threading


def _exit_on_stdin_eof() -> None:
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    os._exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--ignore-stdin",
        action="store_true",
        help="do not exit on stdin EOF (for manual runs; stop with Ctrl-C / SIGTERM)",
    )
    args = parser.parse_args()

    # Quiet per-request logging before werkzeug/moto are imported and configure anything.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    # Start watching stdin first so we die with the parent even if startup hangs.
    if not args.ignore_stdin:
        threading.Thread(target=_exit_on_stdin_eof, name="stdin-eof-watch", daemon=True).start()

    from werkzeug.serving import make_server

    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )

    app = DomainDispatcherApplication(create_backend_app)
    app.debug = True  # as moto.server.main does

    # Port 0: the kernel picks a free port at bind time; no pick-close-rebind race.
    server = make_server(
        args.host,
        0,
        app,
        threaded=True,
        request_handler=MotoRequestHandler,
    )
    port = server.server_address[1]
    # moto_server exports this too; moto uses it when it builds URLs to itself.
    os.environ["MOTO_PORT"] = str(port)

    sys.stdout.write(f"PORT={port}\n")
    sys.stdout.flush()
    # From here on nothing more goes to the parent's stdout pipe.
    os.dup2(2, 1)

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    os._exit(0)


if __name__ == "__main__":
    main()
