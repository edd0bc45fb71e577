"""A scripted HTTP server on loopback, for answers no honest server gives (stripe-python's way).

Each origin (:class:`ScriptedOrigin`) is a ``ThreadingHTTPServer`` speaking HTTP/1.1 with
keep-alive on its own port. Tests give it scripted answers (:class:`Answer`) matched by method
and path prefix (the longest prefix wins; a route with a ``when`` test before one without; the
newest route first), played in order, the last one repeating. An answer can announce a
``Content-Length`` other than the body's length, drop the connection after some bytes of the
body, or stall before answering. Every request is recorded (:class:`Seen`: origin, method,
path with query, headers, body) in one log shared by the origins of a :class:`ScriptedServers`,
so a test can count requests exactly and check that no ``Authorization`` header reached any
origin but the API's.

    with ScriptedServers() as servers:
        servers.api.script("GET", "/api/user/profile", json_answer({"credits": 5}))
        servers.storage.script("GET", "/exports/", Answer(body=b"a,b\\n", drop_after=2))
        ...
        assert servers.api.count("GET", "/api/user/profile") == 1
        assert servers.authorization_leaks() == []

Closing shuts every kept-alive connection down and joins its thread, so nothing is left
open (the test suite turns ``ResourceWarning`` into an error).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

__all__ = [
    "Answer",
    "ScriptedOrigin",
    "ScriptedServers",
    "Seen",
    "json_answer",
    "text_answer",
]


@dataclass(frozen=True)
class Answer:
    """One scripted answer.

    Attributes
    ----------
    status
        HTTP status code.
    headers
        Headers to send (``Content-Length`` is added from the body unless announced below).
    body
        The body bytes.
    content_length
        Announce this ``Content-Length`` instead of ``len(body)`` (the whole body is sent
        anyway, then the connection is closed: a body longer or shorter than announced).
    drop_after
        Send only this many bytes of the body (after announcing all of it), then close.
    announce_length
        ``False``: no ``Content-Length`` at all; the body ends when the connection closes
        (the client cannot tell a cut body from a whole one by its length).
    stall
        Seconds to wait before answering (cut short when the server closes).
    close
        Close the connection after this answer (``Connection: close``).
    stream
        Makes the body piece by piece instead of ``body`` (it may never end): each piece is
        sent as it is made, with no ``Content-Length`` unless ``content_length`` announces
        one; the answer ends when the pieces do, the client goes away or the server closes.
        The bytes sent are counted in :attr:`ScriptedOrigin.streamed`.
    trickle
        Seconds to wait between the pieces of ``stream``.
    """

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_length: int | None = None
    drop_after: int | None = None
    announce_length: bool = True
    stall: float = 0.0
    close: bool = False
    stream: Callable[[], Iterator[bytes]] | None = None
    trickle: float = 0.0


def json_answer(data: Any, status: int = 200, **options: Any) -> Answer:
    """Return an :class:`Answer` with a JSON body (``options``: the other fields)."""
    headers = {"Content-Type": "application/json", **options.pop("headers", {})}
    return Answer(status=status, headers=headers, body=json.dumps(data).encode(), **options)


def text_answer(
    text: str | bytes,
    status: int = 200,
    content_type: str = "text/html; charset=utf-8",
    **options: Any,
) -> Answer:
    """Return an :class:`Answer` with a text body (HTML by default)."""
    body = text.encode() if isinstance(text, str) else text
    headers = {"Content-Type": content_type, **options.pop("headers", {})}
    return Answer(status=status, headers=headers, body=body, **options)


@dataclass(frozen=True)
class Seen:
    """One request an origin received."""

    origin: str
    method: str
    target: str  # path with query string, as sent
    headers: Mapping[str, str]
    body: bytes = b""

    @property
    def path(self) -> str:
        """The path without the query string."""
        return urlsplit(self.target).path

    @property
    def query(self) -> list[tuple[str, str]]:
        """The query string's pairs, in order."""
        return parse_qsl(urlsplit(self.target).query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        """Return a header's value (any case), or ``None``."""
        lowered = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == lowered), None)


Responder = Answer | Callable[[Seen], Answer]

#: What an origin answers to a request nothing was scripted for.
NOT_SCRIPTED = json_answer({"detail": "Not found (nothing scripted for this request)."}, 404)


@dataclass
class _Route:
    method: str | None
    prefix: str
    answers: tuple[Responder, ...]
    when: Callable[[Seen], bool] | None
    order: int
    served: int = 0

    def matches(self, seen: Seen) -> bool:
        if self.method is not None and self.method != seen.method:
            return False
        if not seen.target.startswith(self.prefix):
            return False
        return self.when is None or bool(self.when(seen))

    def rank(self) -> tuple[int, int, int]:
        return (len(self.prefix), self.when is not None, self.order)


class _Server(http.server.ThreadingHTTPServer):
    """Tracks its connections and threads, so :meth:`close_all` leaves nothing behind."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[Any]) -> None:
        super().__init__(address, handler)
        self._guard = threading.Lock()
        self._live: set[socket.socket] = set()
        self._workers: list[threading.Thread] = []
        self.stopping = threading.Event()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._guard:
            self._live.add(request)
            self._workers = [t for t in self._workers if t.is_alive()]
            self._workers.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._guard:
            self._live.discard(request)
        super().shutdown_request(request)

    def close_all(self) -> None:
        self.stopping.set()
        self.shutdown()
        with self._guard:
            live, threads = list(self._live), list(self._workers)
        for sock in live:  # wake handlers waiting on a kept-alive connection
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=10)
        self.server_close()


class ScriptedOrigin:
    """One scripted origin (its own port).

    Parameters
    ----------
    name
        Its name in the shared log (``"api"``, ``"storage"``, ...).
    log
        The shared request log (appended to under ``lock``).
    lock
        Guards ``log`` and the routes.
    host
        Address to listen on (loopback by default).
    """

    def __init__(
        self, name: str, log: list[Seen], lock: threading.Lock, host: str = "127.0.0.1"
    ) -> None:
        self.name = name
        self._log = log
        self._lock = lock
        self._routes: list[_Route] = []
        #: Bytes sent by streamed answers (``Answer.stream``), over all of them.
        self.streamed = 0
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                origin._handle(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any  # noqa: N815

            def log_message(self, *args: Any) -> None:
                return

        self._httpd = _Server((host, 0), Handler)
        self.host = host
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def __repr__(self) -> str:
        return f"ScriptedOrigin({self.name!r}, {self.url})"

    def url_for(self, path: str, host: str | None = None) -> str:
        """Return the URL of ``path`` on this origin (optionally under another host name)."""
        return f"http://{host or self.host}:{self.port}{path}"

    # -- script -----------------------------------------------------------------------------

    def script(
        self,
        method: str | None,
        prefix: str,
        *answers: Responder,
        when: Callable[[Seen], bool] | None = None,
    ) -> None:
        """Answer requests of ``method`` (``None``: any) whose path starts with ``prefix``.

        The answers are played in order, the last one repeating. A newer route with the same
        prefix (and ``when``) takes precedence over an older one.
        """
        if not answers:
            raise ValueError("script() needs at least one answer")
        with self._lock:
            self._routes.append(_Route(method, prefix, tuple(answers), when, len(self._routes)))

    def _next(self, seen: Seen) -> Answer:
        with self._lock:
            routes = [r for r in self._routes if r.matches(seen)]
            if not routes:
                return NOT_SCRIPTED
            route = max(routes, key=_Route.rank)
            responder = route.answers[min(route.served, len(route.answers) - 1)]
            route.served += 1
        return responder(seen) if callable(responder) else responder

    # -- what it received -------------------------------------------------------------------

    @property
    def requests(self) -> list[Seen]:
        """The requests this origin received, in order."""
        with self._lock:
            return [s for s in self._log if s.origin == self.name]

    def count(self, method: str | None = None, prefix: str = "") -> int:
        """Count the requests of ``method`` (``None``: any) whose path starts with ``prefix``."""
        return sum(
            1
            for s in self.requests
            if (method is None or s.method == method) and s.target.startswith(prefix)
        )

    # -- serving ----------------------------------------------------------------------------

    def _handle(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length > 0 else b""
        seen = Seen(self.name, handler.command, handler.path, dict(handler.headers.items()), body)
        with self._lock:
            self._log.append(seen)
        answer = self._next(seen)
        if answer.stall > 0 and self._httpd.stopping.wait(answer.stall):
            handler.close_connection = True
            return
        if answer.stream is not None:
            self._stream(handler, answer)
            return
        payload = answer.body
        announced = len(payload) if answer.content_length is None else answer.content_length
        sent = payload if answer.drop_after is None else payload[: answer.drop_after]
        asked_close = (seen.header("Connection") or "").lower() == "close"
        closing = (
            answer.close
            or answer.drop_after is not None
            or not answer.announce_length
            or announced != len(payload)
            or asked_close
        )
        handler.send_response(answer.status)
        names = {k.lower() for k in answer.headers}
        for key, value in answer.headers.items():
            handler.send_header(key, value)
        if (
            "content-length" not in names
            and answer.status not in (204, 304)
            and answer.announce_length
        ):
            handler.send_header("Content-Length", str(announced))
        if closing:
            handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            if handler.command != "HEAD" and answer.status not in (204, 304):
                handler.wfile.write(sent)
            handler.wfile.flush()
        except OSError:
            pass  # the client went away first
        if closing:
            handler.close_connection = True

    def _stream(self, handler: http.server.BaseHTTPRequestHandler, answer: Answer) -> None:
        assert answer.stream is not None
        handler.send_response(answer.status)
        for key, value in answer.headers.items():
            handler.send_header(key, value)
        if answer.content_length is not None:
            handler.send_header("Content-Length", str(answer.content_length))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        try:
            handler.wfile.flush()
            for piece in answer.stream():
                if answer.trickle > 0 and self._httpd.stopping.wait(answer.trickle):
                    return
                if self._httpd.stopping.is_set():
                    return
                handler.wfile.write(piece)
                handler.wfile.flush()
                with self._lock:
                    self.streamed += len(piece)
        except OSError:
            return  # the client went away: the point of most streamed answers

    def close(self) -> None:
        """Stop serving; close every connection and join every thread."""
        self._httpd.close_all()
        self._thread.join(timeout=10)


class ScriptedServers:
    """Several scripted origins sharing one request log: ``api`` and ``storage`` to start with.

    Parameters
    ----------
    storage_host
        The address the storage origin listens on (loopback by default).
    """

    def __init__(self, *, storage_host: str = "127.0.0.1") -> None:
        self.log: list[Seen] = []
        self._lock = threading.Lock()
        self.origins: dict[str, ScriptedOrigin] = {}
        try:
            self.api = self.add("api")
            self.storage = self.add("storage", host=storage_host)
        except BaseException:
            self.close()
            raise

    def add(self, name: str, host: str = "127.0.0.1") -> ScriptedOrigin:
        """Start one more origin (on its own port)."""
        if name in self.origins:
            raise ValueError(f"an origin named {name!r} exists already")
        origin = ScriptedOrigin(name, self.log, self._lock, host)
        self.origins[name] = origin
        return origin

    def __iter__(self) -> Iterator[ScriptedOrigin]:
        return iter(list(self.origins.values()))

    @property
    def requests(self) -> list[Seen]:
        """Every request any origin received, in order."""
        with self._lock:
            return list(self.log)

    def authorization_leaks(self, api: str = "api") -> list[Seen]:
        """Requests to any origin but ``api`` that carried an ``Authorization`` header."""
        return [
            s
            for s in self.requests
            if s.origin != api
            and (
                s.header("Authorization") is not None or s.header("Proxy-Authorization") is not None
            )
        ]

    def close(self) -> None:
        """Stop every origin (idempotent)."""
        origins, self.origins = list(self.origins.values()), {}
        for origin in origins:
            origin.close()

    def __enter__(self) -> ScriptedServers:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
