"""The REST port's HTTP/1.1 server: connections on one asyncio loop, parsed by h11, bounded in time and number.

Why not `http.server` or uvicorn: a thread per connection lets 1,000 idle clients hold
1,000 threads, and uvicorn has no deadline for receiving a request (its issue #157), so a
client that sends half a header holds its connection for ever. Here an open connection
costs a socket and a coroutine, never a thread, and every stage has a deadline:

    idle_timeout_s     a connection with no request started is closed (silently)
    request_timeout_s  from a request's first byte to its last (headers and body): else 408
    write_timeout_s    a client that does not read its answer is dropped
    max_connections    open connections; one more gets 503 (Retry-After: 1) and is closed
    worker_threads     requests are answered by `handle` in this many threads

`handle(Request) -> Response` is plain blocking code (the model, a file): it runs in the
worker pool, so the loop keeps accepting, timing out and refusing while it works.
Malformed HTTP (a garbage request line, bad headers, a body longer than its length) is
answered by h11's own 4xx with a JSON error body. A client that hangs up is one debug
line. `stop(grace_s)` stops accepting, lets requests in flight finish within the grace
period (their answers say `Connection: close`), then closes every connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from http import HTTPStatus
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import h11

log = logging.getLogger("serve")


@dataclass(frozen=True)
class HttpLimits:
    idle_timeout_s: float = 30.0
    request_timeout_s: float = 10.0
    write_timeout_s: float = 30.0
    max_connections: int = 2048
    worker_threads: int = 16
    max_header_bytes: int = 16 << 10
    max_body_bytes: int = 1 << 20


@dataclass
class Request:
    method: str
    target: str
    headers: dict[str, str]  # Lower-case names.
    body: bytes


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def json_body(value) -> bytes:
    """UTF-8 JSON; a lone surrogate echoed from a request stays a JSON escape instead of failing."""
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "backslashreplace")


def json_error(status: int, message: str, **headers: str) -> Response:
    """TF Serving's `{"error": ...}` answer."""
    return Response(status, json_body({"error": message}), headers=headers)


class _Refused(Exception):
    """A request answered before it reaches `handle` (too large, malformed, too slow)."""

    def __init__(self, response: Response):
        self.response = response


class HttpServer:
    """`handle` served on host:port in a background thread: `start()`, `port`, `stop(grace_s)`."""

    def __init__(self, handle, host: str, port: int, limits: HttpLimits = HttpLimits(), extra_headers=None):
        self.handle, self.host, self.requested_port, self.limits = handle, host, port, limits
        self.extra_headers = dict(extra_headers or {})  # On every answer (CORS), refusals included.
        self.port = None
        self.in_flight = 0
        self._draining = False
        self._open: dict[asyncio.Task, asyncio.StreamWriter] = {}  # One entry per open connection.
        self._pool = ThreadPoolExecutor(limits.worker_threads, thread_name_prefix="rest")
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._start_error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="rest-loop", daemon=True)

    # -- life cycle --------------------------------------------------------------
    def start(self) -> HttpServer:
        self._thread.start()
        self._ready.wait()
        if self._start_error:
            raise self._start_error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._connection, self.host, self.requested_port, backlog=1024))
            self.port = self._server.sockets[0].getsockname()[1]
        except OSError as error:
            self._start_error = error
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()

    def stop(self, grace_s: float = 10.0) -> bool:
        """Stop accepting, finish requests in flight (within `grace_s`), close the rest. True: all finished."""
        if self._start_error or not self._thread.is_alive():
            return True
        finished = asyncio.run_coroutine_threadsafe(self._drain(grace_s), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)
        return finished

    async def _drain(self, grace_s: float) -> bool:
        self._draining = True
        self._server.close()
        deadline = self._loop.time() + grace_s
        while self.in_flight and self._loop.time() < deadline:
            await asyncio.sleep(0.02)
        finished = self.in_flight == 0
        for writer in list(self._open.values()):
            writer.close()
        if self._open:  # Closed transports end their reads; a request past its grace is cancelled.
            _, stuck = await asyncio.wait(list(self._open), timeout=0.5)
            for task in stuck:
                task.cancel()
            await asyncio.wait(stuck, timeout=1) if stuck else None
        return finished

    # -- one connection -------------------------------------------------------------
    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._open) >= self.limits.max_connections or self._draining:
            await self._send_and_close(writer, json_error(
                503, f"this server holds its limit of {self.limits.max_connections} open connections; retry",
                **{"Retry-After": "1"}))
            return
        task = asyncio.current_task()
        self._open[task] = writer
        try:
            await self._serve(reader, writer)
        except (ConnectionError, TimeoutError, OSError) as error:
            log.debug("client %s left: %s", writer.get_extra_info("peername"), type(error).__name__)
        except Exception:  # A bug here must end one connection, not the loop.
            log.exception("connection from %s failed", writer.get_extra_info("peername"))
        except asyncio.CancelledError:  # `stop` past its grace period.
            log.debug("connection from %s cut off at shutdown", writer.get_extra_info("peername"))
        finally:
            del self._open[task]
            writer.close()

    async def _serve(self, reader, writer) -> None:
        connection = h11.Connection(h11.SERVER, max_incomplete_event_size=self.limits.max_header_bytes)
        while not self._draining:
            try:
                request = await self._read_request(connection, reader, writer)
            except _Refused as refused:
                await self._write(connection, writer, refused.response, close=True)
                await self._discard(reader)
                return
            if request is None:  # Closed by the client, or idle too long.
                return
            self.in_flight += 1
            try:
                response = await self._loop.run_in_executor(self._pool, self._answer, request)
                await self._write(connection, writer, response, close=self._draining, head=request.method == "HEAD")
            finally:
                self.in_flight -= 1
            if connection.our_state is not h11.DONE or connection.their_state is not h11.DONE:
                return
            connection.start_next_cycle()

    def _answer(self, request: Request) -> Response:
        try:
            return self.handle(request)
        except Exception as error:  # A bug must not end the connection without an answer.
            log.exception("internal error on %s %s", request.method, request.target)
            return json_error(500, f"internal error: {type(error).__name__}: {error}")

    async def _read_request(self, connection: h11.Connection, reader, writer) -> Request | None:
        """The next whole request; None if the client closed or stayed idle; `_Refused` for a bad one."""
        limits = self.limits
        first = b""
        if not connection.trailing_data[0]:  # Else a pipelined request is already here.
            try:
                async with asyncio.timeout(limits.idle_timeout_s):
                    first = await reader.read(65536)
            except TimeoutError:
                return None
            if not first:
                return None
        try:
            async with asyncio.timeout(limits.request_timeout_s):
                return await self._parse(connection, reader, writer, first)
        except TimeoutError:
            raise _Refused(json_error(408, f"the request did not arrive within {limits.request_timeout_s:g} s"))
        except h11.RemoteProtocolError as error:
            status = error.error_status_hint if 400 <= error.error_status_hint < 500 else 400
            raise _Refused(json_error(status, f"malformed HTTP request: {error}"))

    async def _parse(self, connection: h11.Connection, reader, writer, data: bytes) -> Request | None:
        if data:
            connection.receive_data(data)
        head, body = None, bytearray()
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                if not data and head is None:
                    return None  # Hung up half-way: nobody to answer.
                connection.receive_data(data)
            elif isinstance(event, h11.Request):
                head = event
                length = dict(event.headers).get(b"content-length", b"0")
                if length.isdigit() and int(length) > self.limits.max_body_bytes:
                    raise _Refused(json_error(400, f"request body of {int(length)} bytes exceeds this server's "
                                                   f"limit of {self.limits.max_body_bytes}"))
                if connection.client_is_waiting_for_100_continue:  # curl, for bodies over 1 KiB.
                    writer.write(connection.send(h11.InformationalResponse(status_code=100, headers=[])))
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > self.limits.max_body_bytes:
                    raise _Refused(json_error(400, f"request body exceeds this server's limit of "
                                                   f"{self.limits.max_body_bytes} bytes"))
            elif isinstance(event, h11.EndOfMessage):
                headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in head.headers}
                return Request(head.method.decode("ascii", "replace"), head.target.decode("latin-1"), headers,
                               bytes(body))
            elif isinstance(event, h11.ConnectionClosed):
                return None

    async def _discard(self, reader, limit: int = 64 << 20, seconds: float = 2.0) -> None:
        """Read what a refused client is still sending, so that it reads its answer instead of a reset."""
        try:
            async with asyncio.timeout(seconds):
                while limit > 0 and (chunk := await reader.read(65536)):
                    limit -= len(chunk)
        except (TimeoutError, ConnectionError, OSError):
            pass

    def _headers(self, response: Response, close: bool) -> dict[str, str]:
        headers = {**self.extra_headers, **response.headers}
        if response.status != 204:
            headers["Content-Length"] = str(len(response.body))
        if response.content_type:
            headers["Content-Type"] = response.content_type
        if close:
            headers["Connection"] = "close"
        return headers

    async def _write(self, connection: h11.Connection, writer, response: Response, close: bool,
                     head: bool = False) -> None:
        if response.status == 204 or head:  # No body, as h11 frames these.
            response = Response(response.status, b"", response.content_type, response.headers)
        if connection.their_state is h11.ERROR or connection.our_state is not h11.SEND_RESPONSE:
            await self._send_and_close(writer, response)  # h11 will not frame it: write it raw.
            return
        headers = self._headers(response, close)
        data = connection.send(h11.Response(status_code=response.status, headers=list(headers.items()),
                                            reason=_reason(response.status).encode("ascii")))
        data += connection.send(h11.Data(data=response.body)) + connection.send(h11.EndOfMessage())
        writer.write(data)
        async with asyncio.timeout(self.limits.write_timeout_s):
            await writer.drain()

    async def _send_and_close(self, writer, response: Response) -> None:
        headers = self._headers(response, close=True)
        head = f"HTTP/1.1 {response.status} {_reason(response.status)}\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in headers.items())
        try:
            writer.write(head.encode("latin-1") + b"\r\n" + response.body)
            async with asyncio.timeout(self.limits.write_timeout_s):
                await writer.drain()
        except (ConnectionError, TimeoutError, OSError) as error:
            log.debug("client left before its answer: %s", type(error).__name__)
        finally:
            writer.close()


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"
