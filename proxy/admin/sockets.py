"""The admin server's listening socket, bound before anything heavy is imported.

``hearthgate run`` binds it first, so a port already in use stops the start at once with a
clear message, and hands it to uvicorn once the admin app is loaded (after the proxy listens).
"""

from __future__ import annotations

import socket


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket for the admin server; OSError (in use, no such address) at once."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock
