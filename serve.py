"""Serve exported versions with TF Serving's own REST and gRPC APIs, without Docker.

    python serve.py --model_base_path saved_models/chatbot
    curl -d '{"instances": ["안녕하세요"]}' http://127.0.0.1:8501/v1/models/chatbot:predict

Flags follow `tensorflow_model_server`'s names, so a command line moves between the
two. Like TF Serving it disables XLA, loads versions with the TF1 loader, serves the
highest version and picks up new ones as they appear. It binds 127.0.0.1 unless
`--host` says otherwise. oneDNN is off by default (`TF_ENABLE_ONEDNN_OPTS=0`): batch-1
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
    parser.add_argument("--model_name", help="default: the base path's folder name")
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
    parser.add_argument("--log_level", default="INFO")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from serving.grpc_api import start_grpc
    from serving.loaded_model import disable_xla_compilation
    from serving.model_server import Limits, ModelServer
    from serving.rest_api import start_rest

    disable_xla_compilation()
    base_path = Path(args.model_base_path)
    server = ModelServer(
        args.model_name or base_path.resolve().name, base_path,
        Limits(args.max_body_bytes, args.max_request_rows, args.max_text_chars),
        args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism,
        args.max_batch_size if args.enable_batching else 1, args.batch_timeout_micros / 1e6, args.num_batch_threads,
    )
    server.poll()
    if server.current is None:
        logging.warning("no loadable version under %s yet; waiting for one", base_path)
    server.watch(args.file_system_poll_wait_seconds)
    grpc_server, grpc_port = start_grpc(server, args.host, args.port)
    logging.info("gRPC on %s:%d", args.host, grpc_port)
    if args.rest_api_port:
        httpd = start_rest(server, args.host, args.rest_api_port)
        threading.Thread(target=httpd.serve_forever, name="rest", daemon=True).start()
        logging.info("REST on http://%s:%d/v1/models/%s", args.host, httpd.server_address[1], server.model_name)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"serving {server.model_name} (ready)", flush=True)
    stop.wait()
    grpc_server.stop(grace=2)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
