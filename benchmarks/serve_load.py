"""Load test of `serve.py`: replies per second and p50/p99 latency at several concurrencies, REST and gRPC.

    python -m benchmarks.serve_load --model_base_path saved_models/chatbot --questions-from runs/seed-ChatbotData
    python -m benchmarks.serve_load --rest http://HOST:8501 --grpc HOST:8500 ...   # a server already running

With `--model_base_path` it starts `serve.py` itself (on free ports) and stops it at
the end. Each client thread keeps one connection and sends one question per request
(`serving_default`, greedy) for `--seconds` after a warm-up; questions come from the
run's validation split. Client and server share this machine's CPU.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(base_path: str, extra: list[str]) -> tuple[subprocess.Popen, str, str]:
    grpc_port, rest_port = free_port(), free_port()
    command = [sys.executable, str(ROOT / "serve.py"), "--model_base_path", base_path,
               "--port", str(grpc_port), "--rest_api_port", str(rest_port), "--log_level", "WARNING", *extra]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if "(ready)" in line:
            return process, f"http://127.0.0.1:{rest_port}", f"127.0.0.1:{grpc_port}"
    raise RuntimeError(f"serve.py exited with {process.wait()} before it was ready")


def rest_sender(url: str, model: str):
    parsed = urlparse(url)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    path = f"/v1/models/{model}:predict"

    def send(question: str) -> bool:
        body = json.dumps({"instances": [question]}, ensure_ascii=False).encode("utf-8")
        connection.request("POST", path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        return response.status == 200 and len(json.loads(data)["predictions"]) == 1

    return send


def grpc_sender(target: str, model: str):
    from serving.client import GrpcClient

    client = GrpcClient(target, model)

    def send(question: str) -> bool:
        return len(client.reply([question])) == 1

    return send


def run_level(make_sender, questions: list[str], concurrency: int, seconds: float, warmup: float) -> dict:
    latencies, errors, lock = [], [0], threading.Lock()
    start_at = time.perf_counter() + warmup
    stop_at = start_at + seconds

    def worker(offset: int):
        send = make_sender()
        i = offset
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            question = questions[i % len(questions)]
            i += concurrency
            try:
                ok = send(question)
            except Exception:
                ok = False
            done = time.perf_counter()
            if now >= start_at:
                with lock:
                    if ok:
                        latencies.append(done - now)
                    else:
                        errors[0] += 1

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")  # noqa: E731
    return {"rps": len(latencies) / seconds, "p50": pick(0.50), "p99": pick(0.99), "errors": errors[0], "n": len(latencies)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_base_path", help="start serve.py on this base path")
    parser.add_argument("--rest", help="REST URL of a running server")
    parser.add_argument("--grpc", help="gRPC host:port of a running server")
    parser.add_argument("--model_name", default="chatbot")
    parser.add_argument("--questions-from", required=True, help="a run directory (its validation split)")
    parser.add_argument("--concurrency", default="1,8,16,32")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--serve-args", default="", help="extra serve.py flags, space-separated")
    args = parser.parse_args(argv)

    from data_pipeline.examples import load_examples
    from run_directory import RunDirectory

    questions = [e.context for e in load_examples(RunDirectory(args.questions_from).validation_split)]
    process = None
    if args.model_base_path:
        process, args.rest, args.grpc = start_server(args.model_base_path, args.serve_args.split())
    try:
        print(f"{len(questions)} validation questions, one per request, serving_default (greedy); "
              f"{args.seconds:.0f} s per level after {args.warmup:.0f} s warm-up")
        header = f"{'protocol':<8} {'concurrency':>11} {'replies/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        print(header)
        print("-" * len(header))
        for protocol, target in (("REST", args.rest), ("gRPC", args.grpc)):
            if not target:
                continue
            maker = (lambda: rest_sender(target, args.model_name)) if protocol == "REST" else (lambda: grpc_sender(target, args.model_name))
            for concurrency in [int(c) for c in args.concurrency.split(",")]:
                r = run_level(maker, questions, concurrency, args.seconds, args.warmup)
                print(f"{protocol:<8} {concurrency:>11} {r['rps']:>10.1f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['errors']:>7}",
                      flush=True)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
