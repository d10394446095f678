"""A stray process holding a TCP port: ``python -m gameday.injectors.port_holder PORT``.

It binds and listens on the port, prints ``ready`` once it holds it, and then
accepts every connection and closes it at once, as a crashed-but-listening
leftover server would. Runs until SIGTERM.
"""

from __future__ import annotations

import signal
import socket
import struct
import sys
import time


def main(argv: list[str]) -> int:
    port = int(argv[0])
    host = argv[1] if len(argv) > 1 else "127.0.0.1"
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # SO_REUSEADDR only skips TIME_WAIT leftovers of the server we replaced; without
    # SO_REUSEPORT a second listener on this port still fails with EADDRINUSE.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    deadline = time.monotonic() + 10
    while True:
        try:
            sock.bind((host, port))
            break
        except OSError as error:
            if time.monotonic() > deadline:
                print(f"cannot hold port {port}: {error}", file=sys.stderr, flush=True)
                return 1
            time.sleep(0.05)  # the server we replaced may still be closing its socket
    sock.listen(128)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    while True:
        connection, _ = sock.accept()
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()  # linger 0: the client sees a reset, not a hang


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
