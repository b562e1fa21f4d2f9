"""A small client for the daemon's REST API over its Unix socket.

::

    c = Client("/run/clickos/clickos.sock")
    c.create("fw", "FromDevice(...) -> ...", limits={"memory": "64M"}, restart="on-failure")
    c.read("fw", "c.count")          # -> "42"
    c.install("fw", new_config)      # hot-swap
    c.destroy("fw")

Errors come back as :class:`ApiError` carrying the HTTP status, the message
and any detail lines (for a bad configuration, Click's ``FILE:LINE: message``
lines).  One keep-alive connection is reused across calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from typing import Any
from urllib.parse import quote, urlencode

DEFAULT_SOCKET = "/run/clickos/clickos.sock"


def default_socket() -> str:
    return os.environ.get("CLICKOS_SOCKET") or DEFAULT_SOCKET


class ApiError(Exception):
    """An error answer from the daemon."""

    def __init__(self, status: int, message: str, details: list[str] | None = None,
                 body: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.details = details or []
        self.body = body or {}


class Client:
    """Calls the daemon; every method returns the decoded JSON answer.

    The transport is a few lines of HTTP/1.1 over one kept-alive Unix socket
    connection (the daemon always answers with a Content-Length).
    """

    def __init__(self, socket_path: str | None = None, timeout: float | None = 60.0) -> None:
        self.socket_path = socket_path or default_socket()
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._rfile: Any = None

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._rfile.close()
                self._sock.close()
            self._sock = None
            self._rfile = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------
    def _connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(self.socket_path)
        except OSError:
            s.close()
            raise
        self._sock = s
        self._rfile = s.makefile("rb")

    def _exchange(self, request: bytes) -> tuple[int, dict[str, str], bytes]:
        assert self._sock is not None
        self._sock.sendall(request)
        status_line = self._rfile.readline(65537)
        if not status_line:
            raise ConnectionResetError("the daemon closed the connection")
        parts = status_line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/"):
            raise ConnectionError(f"bad status line {status_line!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        while True:
            line = self._rfile.readline(65537)
            if line in (b"\r\n", b"\n", b""):
                break
            k, _, v = line.decode("latin-1").partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        body = self._rfile.read(n) if n else b""
        if len(body) != n:
            raise ConnectionResetError("short answer from the daemon")
        return status, headers, body

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request; return the decoded answer or raise ApiError."""
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: clickos\r\nContent-Length: {len(data)}\r\n"
        if data:
            head += "Content-Type: application/json\r\n"
        request = head.encode("latin-1") + b"\r\n" + data
        for attempt in (0, 1):
            fresh = self._sock is None
            if fresh:
                self._connect()
            try:
                status, headers, raw = self._exchange(request)
                break
            except (ConnectionError, BrokenPipeError):
                # a kept-alive connection the daemon closed: reconnect once
                self.close()
                if attempt or fresh:
                    raise
            except BaseException:
                self.close()
                raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        payload: Any = None
        if raw:
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = raw.decode("utf-8", "replace")
        if status >= 400:
            err = payload.get("error", {}) if isinstance(payload, dict) else {}
            raise ApiError(status, err.get("message") or str(payload), err.get("details"),
                           payload if isinstance(payload, dict) else None)
        return payload

    # -- the API -------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        return self.request("GET", "/")

    def openapi(self) -> dict[str, Any]:
        return self.request("GET", "/openapi.json")

    def list(self) -> list[dict[str, Any]]:
        return self.request("GET", "/instances")

    def create(self, name: str, config: str, *, limits: dict[str, Any] | None = None,
               restart: str | dict[str, Any] | None = None, wait: str = "ready", start: bool = True,
               stats: bool = False, filename: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name, "config": config, "wait": wait, "start": start, "stats": stats}
        if limits:
            body["limits"] = limits
        if restart is not None:
            body["restart"] = restart
        if filename:
            body["filename"] = filename
        return self.request("POST", "/instances", body)

    def show(self, name: str) -> dict[str, Any]:
        return self.request("GET", f"/instances/{quote(name, safe='')}")

    def config(self, name: str) -> str:
        return self.request("GET", f"/instances/{quote(name, safe='')}/config")["config"]

    def install(self, name: str, config: str, filename: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"config": config}
        if filename:
            body["filename"] = filename
        return self.request("PUT", f"/instances/{quote(name, safe='')}/config", body)

    def start(self, name: str, wait: str = "ready") -> dict[str, Any]:
        return self.request("POST", f"/instances/{quote(name, safe='')}/start", {"wait": wait})

    def stop(self, name: str) -> dict[str, Any]:
        return self.request("POST", f"/instances/{quote(name, safe='')}/stop", {})

    def destroy(self, name: str) -> None:
        self.request("DELETE", f"/instances/{quote(name, safe='')}")

    def read(self, name: str, handler: str, param: str = "") -> str:
        return self.read_full(name, handler, param).get("value", "")

    def read_full(self, name: str, handler: str, param: str = "") -> dict[str, Any]:
        path = f"/instances/{quote(name, safe='')}/handlers/{quote(handler, safe='')}"
        if param:
            path += "?" + urlencode({"param": param})
        return self.request("GET", path)

    def write(self, name: str, handler: str, value: str = "") -> dict[str, Any]:
        return self.request("PUT", f"/instances/{quote(name, safe='')}/handlers/{quote(handler, safe='')}",
                            {"value": value})

    def logs(self, name: str, tail: int | None = None) -> str:
        path = f"/instances/{quote(name, safe='')}/logs"
        if tail is not None:
            path += f"?tail={int(tail)}"
        return self.request("GET", path)["log"]
