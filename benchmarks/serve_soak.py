"""Soak test of `serve.py`: an hour of mixed REST and gRPC traffic, reported window by window.

    python -m benchmarks.serve_soak --model_base_path saved_models/chatbot --questions-from runs/seed-ChatbotData+haru
    python -m benchmarks.serve_soak ... --minutes 2 --window-minutes 0.5      # a short run

It starts `serve.py` on the export (free ports), then `--concurrency` client threads (half
REST, half gRPC, each keeping one connection) send one validation question per request (the
split shuffled once, so that every window sees the same mix)
(`serving_default`) for `--minutes`. Every `--window-minutes` it prints the window's requests,
errors, p50/p99 latency, and the server's resident memory and open file descriptors (read
from /proc). At the end it checks the targets: no errors, resident memory at most 5% above
the first window's, and the last window's p99 at most 1.25x the first's. Exit status 1 when a
target is missed. Client and server share this machine's CPU.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.serve_load import grpc_sender, rest_sender, start_server


@dataclass
class Window:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


def client(make_sender, questions: list[str], offset: int, step: int, windows: list[Window], lock: threading.Lock,
           started: float, window_seconds: float, stop: threading.Event) -> None:
    send, i = make_sender(), offset
    while not stop.is_set():
        begun = time.perf_counter()
        try:
            ok = send(questions[i % len(questions)])
        except Exception:
            ok = False
            send = make_sender()  # A fresh connection after a failure, as a real client reconnects.
        ended = time.perf_counter()
        i += step
        index = int((begun - started) // window_seconds)
        with lock:
            if index < len(windows):
                if ok:
                    windows[index].latencies.append(ended - begun)
                else:
                    windows[index].errors += 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_base_path", required=True, help="start serve.py on this base path")
    parser.add_argument("--questions-from", required=True, help="a run directory (its validation split)")
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--window-minutes", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16, help="client threads, half REST and half gRPC")
    parser.add_argument("--serve-args", default="", help="extra serve.py flags, space-separated")
    args = parser.parse_args(argv)
    if args.minutes <= 0 or not 0 < args.window_minutes <= args.minutes or args.concurrency < 2:
        parser.error("need --minutes > 0, 0 < --window-minutes <= --minutes and --concurrency >= 2")

    from data_pipeline.examples import load_examples
    from run_directory import RunDirectory

    questions = [e.context for e in load_examples(RunDirectory(args.questions_from).validation_split)]
    # Shuffled once: the split lists short single questions before long multi-turn contexts, and every
    # window must see the same mix for its latency to compare with the first's.
    random.Random(0).shuffle(questions)
    process, rest, grpc = start_server(args.model_base_path, args.serve_args.split())
    window_seconds = args.window_minutes * 60
    windows = [Window() for _ in range(max(1, round(args.minutes / args.window_minutes)))]
    lock, stop = threading.Lock(), threading.Event()
    makers = [lambda: rest_sender(rest, "chatbot"), lambda: grpc_sender(grpc, "chatbot")]
    started = time.perf_counter()
    threads = [threading.Thread(target=client, daemon=True,
                                args=(makers[k % 2], questions, k, args.concurrency, windows, lock, started,
                                      window_seconds, stop)) for k in range(args.concurrency)]
    print(f"serve.py pid {process.pid}; {args.concurrency} clients (half REST, half gRPC), serving_default, "
          f"{len(windows)} windows of {args.window_minutes:g} min")
    header = f"{'window':>6} {'minutes':>9} {'requests':>9} {'errors':>7} {'p50 ms':>8} {'p99 ms':>8} {'RSS MiB':>8} {'fds':>5}"
    print(header + "\n" + "-" * len(header), flush=True)
    rows = []
    try:
        for thread in threads:
            thread.start()
        for index, window in enumerate(windows):
            time.sleep(max(0.0, started + (index + 1) * window_seconds - time.perf_counter()))
            with lock:
                latencies, errors = list(window.latencies), window.errors
            row = (len(latencies) + errors, errors, percentile(latencies, 0.5), percentile(latencies, 0.99),
                   resident_mib(process.pid), open_files(process.pid))
            rows.append(row)
            span = f"{index * args.window_minutes:g}-{(index + 1) * args.window_minutes:g}"
            print(f"{index + 1:>6} {span:>9} {row[0]:>9} {row[1]:>7} {row[2]:>8.1f} {row[3]:>8.1f} {row[4]:>8.0f} "
                  f"{row[5]:>5}", flush=True)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        process.terminate()
        process.wait(timeout=60)
    return report(rows)


def report(rows) -> int:
    errors = sum(row[1] for row in rows)
    growth = max(row[4] for row in rows[1:]) / rows[0][4] - 1 if len(rows) > 1 else 0.0
    drift = rows[-1][3] / rows[0][3]
    checks = [(f"errors {errors}", errors == 0),
              (f"resident memory growth after the first window {growth:+.1%}", growth <= 0.05),
              (f"p99 last window / first {drift:.2f}x", drift <= 1.25)]
    for text, ok in checks:
        print(f"{'met' if ok else 'MISSED':>6}  {text}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
