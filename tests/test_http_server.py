"""serving/http_server.py: deadlines, the connection cap, malformed HTTP and the drain, with a handler that sleeps.

No model here: `HttpServer` is tested through real sockets with short limits, so each
guard (idle, half-sent, cap, bad framing, stop) is seen to act within its bound.
"""

import json
import socket
import threading
import time
import urllib.request

import pytest

from serving.http_server import HttpLimits, HttpServer, Response

LIMITS = HttpLimits(idle_timeout_s=0.5, request_timeout_s=0.5, write_timeout_s=2, max_connections=40,
                    worker_threads=4, max_body_bytes=1000)


def slow_echo(request):
    if request.target.startswith("/sleep"):
        time.sleep(float(request.target.split("=")[1]))
    return Response(200, json.dumps({"method": request.method, "body": request.body.decode()}).encode())


@pytest.fixture
def served():
    server = HttpServer(slow_echo, "127.0.0.1", 0, LIMITS, extra_headers={"Access-Control-Allow-Origin": "*"}).start()
    yield server
    server.stop(1)


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=5)


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def get(server, path="/x", timeout=5) -> tuple[int, dict]:
    with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=timeout) as response:
        return response.status, json.loads(response.read())


def test_answers_and_keeps_the_connection_alive(served):
    sock = connect(served)
    request = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi"
    sock.sendall(request + request)  # Two pipelined requests on one connection.
    time.sleep(0.3)
    data = sock.recv(65536)
    assert data.count(b"HTTP/1.1 200 OK") == 2 and b'"body": "hi"' in data and b"Access-Control-Allow-Origin: *" in data


def test_idle_connections_are_closed_quietly(served):
    sock = connect(served)
    started = time.monotonic()
    assert read_all(sock) == b""  # Closed, no answer: nothing was asked.
    assert 0.4 < time.monotonic() - started < 2


def test_a_half_sent_request_gets_408_within_its_deadline(served):
    sock = connect(served)
    sock.sendall(b"GET /x HTTP/1.1\r\nHost: x\r\n")  # Headers never finish.
    started = time.monotonic()
    answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408") and b'"error"' in answer
    assert time.monotonic() - started < 2


def test_a_trickled_body_is_cut_at_the_deadline(served):
    sock = connect(served)
    sock.sendall(b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
    for _ in range(20):  # One byte every 0.1 s would take 10 s.
        try:
            sock.sendall(b"a")
        except OSError:
            break
        time.sleep(0.1)
    assert read_all(sock).startswith(b"HTTP/1.1 408")


@pytest.mark.parametrize("raw, status", [
    (b"GARBAGE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\n\r\n", 400),  # No Host header.
    (b"GET /x HTTP/1.1\r\nHost: x\r\nbad header line\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\n\r\n", 400),  # Over max_body_bytes.
    (b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
    (b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + b"3e8\r\n" + b"a" * 1000 + b"\r\n" * 2
     + b"3e8\r\n" + b"a" * 1000 + b"\r\n0\r\n\r\n", 400),  # Chunks over max_body_bytes.
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400),  # A TLS hello on the plain port.
])
def test_malformed_http_gets_a_json_4xx_and_the_server_keeps_serving(served, raw, status):
    sock = connect(served)
    sock.sendall(raw)
    answer = read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status}".encode()), answer[:200]
    assert "error" in json.loads(body)
    assert get(served)[0] == 200


def test_beyond_the_cap_a_connection_gets_503_at_once_and_is_closed(served):
    held = [connect(served) for _ in range(LIMITS.max_connections)]
    time.sleep(0.1)
    started = time.monotonic()
    extra = connect(served)
    answer = read_all(extra)
    assert answer.startswith(b"HTTP/1.1 503") and b"Retry-After: 1" in answer and time.monotonic() - started < 1
    for sock in held:
        sock.close()
    time.sleep(0.2)
    assert get(served)[0] == 200


def test_open_connections_hold_no_threads(served):
    before = threading.active_count()
    held = [connect(served) for _ in range(30)]
    for sock in held[:15]:
        sock.sendall(b"GET /x HTTP/1.1\r\n")  # Half-sent.
    time.sleep(0.1)
    started = time.monotonic()
    assert get(served)[0] == 200 and time.monotonic() - started < 1
    assert threading.active_count() <= before + LIMITS.worker_threads
    for sock in held:
        sock.close()


def test_stop_finishes_requests_in_flight_then_closes(served):
    results = []
    thread = threading.Thread(target=lambda: results.append(get(served, "/sleep=0.6")))
    thread.start()
    time.sleep(0.2)  # The request is in the handler now.
    idle = connect(served)
    time.sleep(0.1)  # Accepted.
    started = time.monotonic()
    assert served.stop(grace_s=5) is True
    thread.join()
    assert results == [(200, {"method": "GET", "body": ""})]
    assert 0.3 < time.monotonic() - started < 3
    assert read_all(idle) == b""  # The idle connection was closed.
    with pytest.raises(OSError):
        connect(served)


def test_stop_gives_up_after_the_grace_period(served):
    thread = threading.Thread(target=lambda: pytest.raises(OSError, get, served, "/sleep=3"), daemon=True)
    thread.start()
    time.sleep(0.2)
    started = time.monotonic()
    assert served.stop(grace_s=0.3) is False
    assert time.monotonic() - started < 2
