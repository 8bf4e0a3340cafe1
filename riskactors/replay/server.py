"""An embedded server (uvicorn in a background thread) for ``riskactors replay`` / ``run``."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager

import httpx

from ..settings import Settings

__all__ = ["embedded_server"]


@contextmanager
def embedded_server(settings: Settings, ready_timeout: float = 180.0):
    """Start the front (and its Ray) on ``settings.host``/``settings.port`` (0: a free port);
    yield the base URL once ``/ready`` answers; stop it on exit (by its own handle).

    Raises
    ------
    api.auth.InsecureBindError
        No API key is configured and ``settings.host`` is not a loopback address (checked
        before anything starts).
    api.auth.ApiKeysError
        The API keys file is missing or malformed.
    """
    import uvicorn

    from api import create_app
    from api.auth import check_bind

    check_bind(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, settings.port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(settings), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="riskactors-uvicorn", daemon=True)
    thread.start()
    base_url = f"http://{settings.host}:{port}"
    deadline = time.monotonic() + ready_timeout
    try:
        while True:
            if not thread.is_alive():
                raise RuntimeError("the server stopped during start-up")
            try:
                if httpx.get(base_url + "/ready", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"server not ready after {ready_timeout:.0f} s")
            time.sleep(0.2)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=60)
        sock.close()
