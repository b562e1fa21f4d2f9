"""REST/JSON over a Unix socket, in front of a :class:`~clickos.vm.daemon.Daemon`.

Only the standard library: ``http.server``'s request handler on a threading
``socketserver.UnixStreamServer``.  HTTP/1.1 with keep-alive, so a client can
send many requests over one connection.  The socket is created with mode 0600
(only its owner may talk to the daemon).

Routes (see ``GET /openapi.json`` for the full description)::

    GET    /                                     daemon status
    GET    /openapi.json                         OpenAPI 3 description
    GET    /instances                            list
    POST   /instances                            create {name, config, limits, restart, wait, ...}
    GET    /instances/NAME                       show
    DELETE /instances/NAME                       destroy
    GET    /instances/NAME/config                configuration text
    PUT    /instances/NAME/config                install (hot-swap) {config}
    POST   /instances/NAME/start                 start
    POST   /instances/NAME/stop                  stop
    GET    /instances/NAME/handlers/HANDLER      read handler (?param=...)
    PUT    /instances/NAME/handlers/HANDLER      write handler {value}
    GET    /instances/NAME/logs                  log (?tail=LINES)

Errors are JSON objects ``{"error": {"status", "message", "details"?}}``:
400 bad request or configuration (``details`` holds Click's ``FILE:LINE:
message`` lines), 404 unknown instance or route, 405 wrong method, 409 name
taken or wrong state, 413 body too large, 422 handler error, 504 the instance
did not answer.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socketserver
import sys
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from clickos.vm import openapi
from clickos.vm.daemon import ApiError, Daemon

MAX_BODY = 16 << 20

_ROUTES: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(r"^/$"), {"GET": "info"}),
    (re.compile(r"^/openapi\.json$"), {"GET": "openapi"}),
    (re.compile(r"^/instances/?$"), {"GET": "list", "POST": "create"}),
    (re.compile(r"^/instances/(?P<name>[^/]+)/?$"), {"GET": "show", "DELETE": "destroy"}),
    (re.compile(r"^/instances/(?P<name>[^/]+)/config$"), {"GET": "get_config", "PUT": "install",
                                                          "POST": "install"}),
    (re.compile(r"^/instances/(?P<name>[^/]+)/start$"), {"POST": "start"}),
    (re.compile(r"^/instances/(?P<name>[^/]+)/stop$"), {"POST": "stop"}),
    (re.compile(r"^/instances/(?P<name>[^/]+)/handlers/(?P<handler>.+)$"), {"GET": "read", "PUT": "write",
                                                                             "POST": "write"}),
    (re.compile(r"^/instances/(?P<name>[^/]+)/logs$"), {"GET": "logs"}),
]


_REASONS = {s.value: s.phrase for s in HTTPStatus}


class _Headers(dict):
    """Request headers by lower-cased name."""

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(name.lower(), default)


class UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A threading HTTP server on a Unix-domain socket (mode 0600)."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, path: str, daemon: Daemon, verbose: bool = False) -> None:
        self.daemon = daemon
        self.verbose = verbose
        self.path = path
        with contextlib.suppress(FileNotFoundError):
            if os.path.exists(path) and not os.path.isdir(path):
                os.unlink(path)
        old = os.umask(0o177)
        try:
            super().__init__(path, ApiHandler)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)

    def server_close(self) -> None:
        super().server_close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)


class ApiHandler(BaseHTTPRequestHandler):
    """One connection: parses requests, routes them to the daemon, answers JSON."""

    protocol_version = "HTTP/1.1"
    server_version = "clickos"
    server: UnixHTTPServer

    def address_string(self) -> str:
        return "unix"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if self.server.verbose:
            sys.stderr.write(f"clickos api: {format % args}\n")

    # -- plumbing ----------------------------------------------------------------------
    def parse_request(self) -> bool:
        """The request line and headers, parsed directly (the base class runs
        the ``email`` package's parser, which costs more than a handler call)."""
        line = self.raw_requestline.decode("iso-8859-1").rstrip("\r\n")
        self.requestline = line
        self.request_version = "HTTP/1.0"
        self.close_connection = True
        parts = line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self.send_error(400, f"Bad request line {line!r}")
            return False
        self.command, self.path, self.request_version = parts
        headers = _Headers()
        while True:
            raw = self.rfile.readline(65537)
            if len(raw) > 65536 or len(headers) > 100:
                self.send_error(431, "Request header fields too large")
                return False
            if raw in (b"\r\n", b"\n", b""):
                break
            name, sep, value = raw.decode("iso-8859-1").partition(":")
            if not sep:
                self.send_error(400, "Bad header line")
                return False
            headers[name.strip().lower()] = value.strip()
        self.headers = headers  # type: ignore[assignment]
        conn = headers.get("connection", "").lower()
        self.close_connection = conn == "close" or (self.request_version == "HTTP/1.0" and conn != "keep-alive")
        if headers.get("expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
        if status == 204:
            body = b""
        elif isinstance(payload, bytes | str) and content_type != "application/json":
            body = payload.encode() if isinstance(payload, str) else payload
        else:
            body = json.dumps(payload, separators=(",", ":")).encode() + b"\n"
        reason = _REASONS.get(status, "")
        head = f"HTTP/1.1 {status} {reason}\r\nServer: clickos\r\nContent-Length: {len(body)}\r\n"
        if status != 204:
            head += f"Content-Type: {content_type}\r\n"
        if self.close_connection:
            head += "Connection: close\r\n"
        # one write: headers and body in the same segment
        self.wfile.write(head.encode("latin-1") + b"\r\n" + body)
        if self.server.verbose:
            self.log_request(status, len(body))

    def _body(self) -> Any:
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            # the body is not read: the connection cannot be reused
            self.close_connection = True
            raise ApiError(413, f"request body larger than {MAX_BODY} bytes")
        raw = self.rfile.read(n) if n else b""
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, f"request body is not valid JSON: {e}") from None

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else {}
            for pattern, methods in _ROUTES:
                m = pattern.match(url.path)
                if m is None:
                    continue
                action = methods.get(method)
                if action is None:
                    raise ApiError(405, f"method {method} not allowed on {url.path}",
                                   allowed=sorted(methods))
                params = {k: unquote(v) for k, v in m.groupdict().items()}
                status, payload = getattr(self, "do_" + action)(params, query, body)
                self._send(status, payload)
                return
            raise ApiError(404, f"no route {url.path}")
        except ApiError as e:
            self._send(e.status, e.to_json())
        except BrokenPipeError:
            self.close_connection = True
        except Exception as e:  # noqa: BLE001 - answer, do not drop the connection
            traceback.print_exc()
            self._send(500, ApiError(500, f"internal error: {type(e).__name__}: {e}").to_json())

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch("PATCH")

    # -- actions -----------------------------------------------------------------------
    @property
    def d(self) -> Daemon:
        return self.server.daemon

    def do_info(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        return 200, self.d.info()

    def do_openapi(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        return 200, openapi.spec()

    def do_list(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        return 200, self.d.list(memory=q.get("memory", "1").lower() not in ("0", "false", "no"))

    def do_create(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        return 201, self.d.create(b)

    def do_show(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        return 200, self.d.show(p["name"])

    def do_destroy(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        self.d.destroy(p["name"])
        return 204, None

    def do_get_config(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        return 200, self.d.get_config(p["name"])

    def do_install(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        if not isinstance(b, dict):
            raise ApiError(400, "request body must be a JSON object")
        return 200, self.d.install(p["name"], b.get("config"), str(b.get("filename") or "config"))

    def do_start(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        wait = (b.get("wait") if isinstance(b, dict) else None) or q.get("wait") or "ready"
        return 200, self.d.start_instance(p["name"], wait)

    def do_stop(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        return 200, self.d.stop_instance(p["name"])

    def do_read(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        return 200, self.d.read_handler(p["name"], p["handler"], q.get("param", ""))

    def do_write(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        value = b.get("value", "") if isinstance(b, dict) else b
        if not isinstance(value, str):
            raise ApiError(400, "value must be a string")
        return 200, self.d.write_handler(p["name"], p["handler"], value)

    def do_logs(self, p: dict, q: dict, b: Any) -> tuple[int, Any]:
        tail = None
        if q.get("tail"):
            try:
                tail = int(q["tail"])
            except ValueError:
                raise ApiError(400, "tail must be an integer") from None
        return 200, {"name": p["name"], "log": self.d.logs(p["name"], tail)}


def serve(daemon: Daemon, path: str, verbose: bool = False) -> tuple[UnixHTTPServer, threading.Thread]:
    """Start answering on ``path`` in a background thread; returns the server and thread."""
    server = UnixHTTPServer(path, daemon, verbose)
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                         name="clickos-api", daemon=True)
    t.start()
    return server, t
