"""Run localstripe (a fake Stripe API) on 127.0.0.1 only, for the card-payment tests.

localstripe's own ``start()`` listens on every interface and keeps its state in
``/tmp/localstripe.pickle``, shared by every copy on the machine. This wrapper binds loopback on
the port given (0: any free one), keeps the state in memory only (tests reset it with
``DELETE /_config/data``) and prints ``PORT <n>`` once it listens, so that the test run that
started it knows where to find it:

    python -m tests.stripe_server --port 0
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys

HOST = "127.0.0.1"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)

    from aiohttp import web
    from localstripe import resources, server

    # In memory only: no pickle in /tmp shared with (and overwritten by) other copies.
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, args.port))
    port = sock.getsockname()[1]
    logging.basicConfig(level=logging.WARNING)
    print(f"PORT {port}", flush=True)
    web.run_app(server.app, sock=sock, print=None, access_log=None, handle_signals=True)


if __name__ == "__main__":
    main(sys.argv[1:])
