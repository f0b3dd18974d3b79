"""Chat with a trained run, in process or through a server.

    python chat.py --run-dir runs/seed-ChatbotData [--strategy beam ...]
    python chat.py --server 127.0.0.1:8500            # gRPC (serve.py or TF Serving)
    python chat.py --server http://127.0.0.1:8501     # REST

In a terminal: an interactive chat with readline editing and /reset, /quit,
/set NAME VALUE, /settings, /help. With lines on stdin (no terminal): one reply
per input line, for scripts.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One question at a time: small ops dispatch fastest on one thread, without oneDNN
# (README, "Decoding"). Set these variables yourself to override.
for _name in ("TF_ENABLE_ONEDNN_OPTS", "TF_NUM_INTEROP_THREADS", "TF_NUM_INTRAOP_THREADS"):
    os.environ.setdefault(_name, "0" if _name == "TF_ENABLE_ONEDNN_OPTS" else "1")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--run-dir", help="a run directory written by train.py")
    where.add_argument("--server", help="HOST:PORT (gRPC) or http://HOST:PORT (REST) of a model server")
    parser.add_argument("--model-name", default="chatbot", help="the served model's name (with --server)")
    from config import DECODING_STRATEGIES, DecodingSettings  # The served defaults, so every chat starts alike.

    served = DecodingSettings()
    parser.add_argument("--strategy", default=served.strategy, choices=DECODING_STRATEGIES)
    parser.add_argument("--max-reply-length", type=int, default=served.max_reply_length)
    parser.add_argument("--num-beams", type=int, default=served.num_beams)
    parser.add_argument("--length-penalty", type=float, default=served.length_penalty)
    parser.add_argument("--temperature", type=float, default=served.temperature)
    parser.add_argument("--top-k", type=int, default=served.top_k)
    parser.add_argument("--top-p", type=float, default=served.top_p)
    parser.add_argument("--no-repeat-ngram-size", type=int, default=served.no_repeat_ngram_size)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--no-retrieval", action="store_true",
                        help="reply with the generator alone (default: the hybrid of retrieval and generation)")
    return parser.parse_args(argv)


def replier(args):
    """Replies to a chat history: a run in this process, or a server's `chat` signature."""
    if args.server:
        from serving.client import RemoteReplies, connect

        return RemoteReplies(connect(args.server, args.model_name))
    from serving.chat_session import LocalReplies
    from serving.replies import RunReplies
    from model.run_files import load_run

    run = load_run(args.run_dir)
    return LocalReplies(RunReplies(run))  # The code the export serves.


def main(argv=None) -> int:
    args = parse_args(argv)
    from config import DecodingSettings
    from serving.chat_session import HELP, ChatSession, QuitChat
    from serving.client import ServingError

    settings = DecodingSettings(
        strategy=args.strategy, max_reply_length=args.max_reply_length, num_beams=args.num_beams,
        length_penalty=args.length_penalty, temperature=args.temperature, top_k=args.top_k,
        top_p=args.top_p, no_repeat_ngram_size=args.no_repeat_ngram_size, seed=args.seed,
        retrieval=not args.no_retrieval,
    )
    session = ChatSession(replier(args), settings)
    interactive = sys.stdin.isatty()
    if interactive:
        import readline  # noqa: F401  (line editing and history for input())

        print(f"{args.run_dir or args.server}: {HELP}")
    while True:
        try:
            line = input("나> ") if interactive else sys.stdin.readline()
        except EOFError:
            break
        if not interactive and line == "":
            break
        try:
            answer = session.handle(line)
        except QuitChat:
            break
        except ServingError as error:  # The server refused or failed; the chat goes on.
            answer = f"(server error {error.status}: {error.message})"
        if interactive:
            print(f"봇> {answer}" if answer else "")
        else:
            print(answer, flush=True)
    return 0


if __name__ == "__main__":
    from errors import run_command

    sys.exit(run_command("chat.py", main))
