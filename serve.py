"""Serve exported versions with TF Serving's own REST and gRPC APIs, without Docker.

    python serve.py --model_base_path saved_models/chatbot
    curl -d '{"instances": ["안녕하세요"]}' http://127.0.0.1:8501/v1/models/chatbot:predict

Flags follow `tensorflow_model_server`'s names, so a command line moves between the
two. Like TF Serving it disables XLA, loads versions with the TF1 loader, serves the
highest version and picks up new ones as they appear. It binds 127.0.0.1 unless
`--host` says otherwise. REST connections are bounded in time and number
(`serving/http_server.py`); SIGTERM lets requests in flight finish, then exits 0. oneDNN is off by default (`TF_ENABLE_ONEDNN_OPTS=0`): batch-1
decoding is ~35% faster without it on this CPU (see README, Results).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_base_path", required=True, help="folder holding integer version folders")
    parser.add_argument("--model_name", default="chatbot",
                        help="the name clients call (default chatbot, what chat.py and the chat page call)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (0.0.0.0 for every interface)")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port")
    parser.add_argument("--rest_api_port", type=int, default=8501, help="REST port (0: no REST)")
    parser.add_argument("--file_system_poll_wait_seconds", type=float, default=1.0)
    parser.add_argument("--enable_batching", type=lambda s: s.lower() in ("1", "true", "yes"), default=True)
    parser.add_argument("--max_batch_size", type=int, default=32, help="rows per batched run")
    parser.add_argument("--batch_timeout_micros", type=int, default=0, help="wait for more requests (0: none)")
    parser.add_argument("--num_batch_threads", type=int, default=1)
    parser.add_argument("--tensorflow_intra_op_parallelism", type=int, default=0)
    parser.add_argument("--tensorflow_inter_op_parallelism", type=int, default=1)
    parser.add_argument("--max_body_bytes", type=int, default=1 << 20, help="REST request body limit")
    parser.add_argument("--max_request_rows", type=int, default=256, help="batch size of one request")
    parser.add_argument("--max_text_chars", type=int, default=1000, help="characters in one text")
    parser.add_argument("--rest_api_num_threads", type=int, default=16, help="threads answering REST requests")
    parser.add_argument("--rest_api_timeout_in_ms", type=int, default=10_000,
                        help="a REST request must arrive whole (headers and body) within this, else 408")
    parser.add_argument("--rest_api_idle_timeout_seconds", type=float, default=30.0,
                        help="close a REST connection that starts no request within this")
    parser.add_argument("--rest_api_max_connections", type=int, default=2048,
                        help="open REST connections; one more is answered 503 (Retry-After) and closed")
    parser.add_argument("--grace_period_seconds", type=float, default=10.0,
                        help="on SIGTERM/SIGINT: time for requests in flight to finish before exiting")
    parser.add_argument("--log_level", default="INFO")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from serving.grpc_api import start_grpc
    from serving.http_server import HttpLimits
    from serving.loaded_model import disable_xla_compilation
    from serving.model_server import Limits, ModelServer
    from serving.rest_api import start_rest

    from errors import UserError

    disable_xla_compilation()
    base_path = Path(args.model_base_path)
    if (base_path / "saved_model.pb").exists():
        raise UserError(f"{base_path} is one version; --model_base_path is the folder holding the versions "
                        f"({base_path.parent})")
    server = ModelServer(
        args.model_name, base_path,
        Limits(args.max_body_bytes, args.max_request_rows, args.max_text_chars),
        args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism,
        args.max_batch_size if args.enable_batching else 1, args.batch_timeout_micros / 1e6, args.num_batch_threads,
    )
    server.poll()
    if server.current is None:
        logging.warning("no loadable version under %s yet; waiting for one", base_path)
    server.watch(args.file_system_poll_wait_seconds)
    try:
        grpc_server, grpc_port = start_grpc(server, args.host, args.port)
        rest = None
        if args.rest_api_port:
            rest = start_rest(server, args.host, args.rest_api_port, HttpLimits(
                idle_timeout_s=args.rest_api_idle_timeout_seconds, request_timeout_s=args.rest_api_timeout_in_ms / 1000,
                max_connections=args.rest_api_max_connections, worker_threads=args.rest_api_num_threads,
                max_body_bytes=args.max_body_bytes))
    except (OSError, RuntimeError) as error:  # gRPC reports a taken port as RuntimeError.
        server.stop()
        raise UserError(f"cannot listen on {args.host} (ports {args.port}, {args.rest_api_port}): {error}") from error
    logging.info("gRPC on %s:%d", args.host, grpc_port)
    if rest:
        logging.info("REST on http://%s:%d/v1/models/%s", args.host, rest.port, server.model_name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"serving {server.model_name} (ready)", flush=True)
    stop.wait()
    logging.info("stopping: no new requests; %g s for those in flight", args.grace_period_seconds)
    grpc_done = grpc_server.stop(grace=args.grace_period_seconds)  # Refuses new RPCs at once.
    finished = rest.stop(args.grace_period_seconds) if rest else True
    grpc_done.wait(args.grace_period_seconds)
    server.stop()
    logging.info("stopped (%s)", "every request answered" if finished else "grace period over; some cut off")
    return 0


if __name__ == "__main__":
    from errors import run_command

    sys.exit(run_command("serve.py", main))
