"""Chat with a trained run: `python chat.py --run-dir runs/seed-ChatbotData [--strategy beam ...]`.

In a terminal: an interactive chat with readline editing and /reset, /quit,
/set NAME VALUE, /settings, /help. With lines on stdin (no terminal): one reply
per input line, for scripts.
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", required=True, help="a run directory written by train.py")
    parser.add_argument("--strategy", default="greedy", choices=["greedy", "beam", "sample"])
    parser.add_argument("--max-reply-length", type=int, default=24)
    parser.add_argument("--num-beams", type=int, default=4)
    parser.add_argument("--length-penalty", type=float, default=0.6)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--top-k", type=int, default=0)
    parser.add_argument("--top-p", type=float, default=1.0)
    parser.add_argument("--no-repeat-ngram-size", type=int, default=3)
    parser.add_argument("--seed", type=int)
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from model.chat_session import HELP, ChatSession, QuitChat
    from model.generation import DecodingSettings, ReplyGenerator
    from model.run_files import load_run

    try:
        settings = DecodingSettings(
            strategy=args.strategy, max_reply_length=args.max_reply_length, num_beams=args.num_beams,
            length_penalty=args.length_penalty, temperature=args.temperature, top_k=args.top_k,
            top_p=args.top_p, no_repeat_ngram_size=args.no_repeat_ngram_size, seed=args.seed,
        )
        run = load_run(args.run_dir)
    except (ValueError, FileNotFoundError) as error:
        print(f"chat.py: {error}", file=sys.stderr)
        return 2
    session = ChatSession(ReplyGenerator(run.model, run.tokenizer), run.config.data.context_turns, settings)
    interactive = sys.stdin.isatty()
    if interactive:
        import readline  # noqa: F401  (line editing and history for input())

        print(f"{args.run_dir}: {HELP}")
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
        if interactive:
            print(f"봇> {answer}" if answer else "")
        else:
            print(answer, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
