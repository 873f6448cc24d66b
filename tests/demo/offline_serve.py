"""Run the ``vganzoo`` command line with the network cut off: ``python offline_serve.py serve ...``.

Every name lookup or connection that is not loopback is refused (OSError, as on a machine with no
network) and written to the file named by VGANZOO_NET_LOG, so a test can show that the demo, and
Gradio under it, fetch nothing from outside.
"""

import os
import sys

LOOPBACK = {"127.0.0.1", "::1", "localhost", "0.0.0.0", "::"}
LOG = os.environ["VGANZOO_NET_LOG"]


def _host(event: str, args: tuple) -> str | None:
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect":
        address = args[1]
        if not isinstance(address, tuple):  # a Unix socket path
            return None
        host = address[0]
    else:
        return None
    if isinstance(host, bytes):
        host = host.decode()
    return None if host is None or str(host) in LOOPBACK else str(host)


def refuse_network(event: str, args: tuple) -> None:
    host = _host(event, args)
    if host is not None:
        with open(LOG, "a") as log:
            log.write(f"{event} {host}\n")
        raise OSError(f"network access refused by the test: {host}")


sys.addaudithook(refuse_network)

from vganzoo.cli import main  # noqa: E402  (after the hook, so imports are watched too)

sys.exit(main(sys.argv[1:]))
