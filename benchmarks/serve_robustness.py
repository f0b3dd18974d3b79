"""Abuse test of `serve.py`: idle and half-sent connections, SIGTERM under load, and a minute of concurrency 16.

    python -m benchmarks.serve_robustness --model_base_path saved_models/chatbot --questions-from runs/seed

Starts `serve.py` itself (default flags) and prints, for each of its parts:
1. with N idle connections open (nothing sent), then N half-sent ones (half a header):
   the latency of good requests on fresh connections and the server's thread count;
2. concurrency 16 for `--seconds` over REST and gRPC (`benchmarks/serve_load.py`'s
   clients): replies/s, p50/p99 and errors;
3. SIGTERM with 16 clients sending: every request sent before the signal must be
   answered 200; the exit status must be 0.
Client and server share this machine's CPU.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import signal
import socket
import sys
import threading
import time
from pathlib import Path

from benchmarks.serve_load import grpc_sender, rest_sender, run_level, start_server


def threads_of(pid: int) -> int:
    return int(re.search(r"Threads:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1))


def good_request_ms(url: str, model: str, question: str = "안녕하세요") -> float:
    started = time.perf_counter()
    assert rest_sender(url, model)(question)  # A fresh connection each time.
    return (time.perf_counter() - started) * 1000


def held_connections(url: str, count: int, half_sent: bool) -> list[socket.socket]:
    port = int(url.rsplit(":", 1)[1])
    held = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        if half_sent:
            sock.sendall(b"POST /v1/models/chatbot:predict HTTP/1.1\r\nHost: x\r\nContent-Le")
        held.append(sock)
    return held


def connection_flood(process, url: str, model: str, count: int) -> None:
    print(f"{'held connections':<28} {'good request ms (median / max of 20)':>38} {'server threads':>15}")
    print(f"{'none':<28} {median_max([good_request_ms(url, model) for _ in range(20)]):>38} {threads_of(process.pid):>15}")
    for half_sent in (False, True):
        held = held_connections(url, count, half_sent)
        try:
            time.sleep(0.5)
            latencies = [good_request_ms(url, model) for _ in range(20)]
            label = f"{count} {'half-sent' if half_sent else 'idle'}"
            print(f"{label:<28} {median_max(latencies):>38} {threads_of(process.pid):>15}", flush=True)
        finally:
            for sock in held:
                sock.close()


def median_max(values: list[float]) -> str:
    values = sorted(values)
    return f"{values[len(values) // 2]:.1f} / {values[-1]:.1f}"


def sigterm_under_load(process, url: str, model: str, questions: list[str], clients: int = 16) -> None:
    signalled_at, outcomes, lock, stop = [None], [], threading.Lock(), threading.Event()

    def client(offset: int):
        connection = http.client.HTTPConnection("127.0.0.1", int(url.rsplit(":", 1)[1]), timeout=60)
        for i in range(offset, 10**6, clients):
            if stop.is_set():
                return
            sent = time.perf_counter()
            body = json.dumps({"instances": [questions[i % len(questions)]]}, ensure_ascii=False).encode()
            try:
                connection.request("POST", f"/v1/models/{model}:predict", body, {"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                outcome = response.status
            except OSError as error:
                outcome = type(error).__name__
                connection.close()
            with lock:
                outcomes.append((sent, outcome))
            if outcome != 200 and signalled_at[0] is not None:
                return

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(3.0)
    signalled_at[0] = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    status = process.wait(timeout=60)
    stopped_after = time.perf_counter() - signalled_at[0]
    stop.set()
    for thread in threads:
        thread.join(60)
    before = [o for sent, o in outcomes if sent < signalled_at[0]]
    after = [o for sent, o in outcomes if sent >= signalled_at[0]]
    lost = [o for o in before if o != 200]
    print(f"SIGTERM under load ({clients} clients): exit status {status} after {stopped_after:.2f} s; "
          f"requests sent before it: {len(before)}, answered 200: {len(before) - len(lost)}, not answered: {len(lost)}"
          f"{' ' + str(sorted(set(map(str, lost)))) if lost else ''}; sent after it: {len(after)} "
          f"({sum(o == 200 for o in after)} answered, the rest refused)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_base_path", required=True)
    parser.add_argument("--questions-from", required=True, help="a run directory (its validation split)")
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0, help="for the concurrency-16 part")
    args = parser.parse_args(argv)
    from data_pipeline.examples import load_examples
    from run_directory import RunDirectory

    questions = [e.context for e in load_examples(RunDirectory(args.questions_from).validation_split)]
    model = "chatbot"  # serve.py's default model name.
    process, rest, grpc_target = start_server(args.model_base_path, [])
    try:
        connection_flood(process, rest, model, args.connections)
        print(f"\n{'protocol':<8} {'concurrency':>11} {'seconds':>8} {'replies/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'errors':>7}")
        for protocol, maker in (("REST", lambda: rest_sender(rest, model)), ("gRPC", lambda: grpc_sender(grpc_target, model))):
            r = run_level(maker, questions, 16, args.seconds, 3.0)
            print(f"{protocol:<8} {16:>11} {args.seconds:>8.0f} {r['rps']:>10.1f} {r['p50']:>8.1f} {r['p99']:>8.1f} "
                  f"{r['errors']:>7}", flush=True)
        print()
        sigterm_under_load(process, rest, model, questions)
    finally:
        if process.poll() is None:
            process.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
