"""Regenerate the README's chat page screenshots: docs/chat_desktop.png and docs/chat_phone.png.

    PYTHONPATH=tests python docs/screenshots.py --model_base_path saved_models/chatbot [--questions 안녕하세요 배고파 ...]

(`PYTHONPATH=tests`: it starts the server and Chromium as the browser tests do, with their helpers.)

Starts serve.py over the base path, opens the page in Debian's Chromium (Playwright)
at desktop and phone widths, asks the questions, and saves the screenshots here.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conftest import free_port, start_server
from test_chat_page import CHROMIUM, CHROMIUM_ARGS

DOCS = Path(__file__).resolve().parent

SIZES = {"chat_desktop.png": {"width": 1100, "height": 760}, "chat_phone.png": {"width": 390, "height": 760}}


def main(argv=None) -> int:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_base_path", required=True)
    parser.add_argument("--questions", nargs="+", default=["안녕하세요", "오늘 너무 피곤해", "배고픈데 뭐 먹을까?"])
    args = parser.parse_args(argv)
    rest_port = free_port()
    process, _ = start_server(Path(args.model_base_path), free_port(), rest_port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            for name, size in SIZES.items():
                page = browser.new_page(viewport=size, device_scale_factor=1)
                page.goto(f"http://127.0.0.1:{rest_port}/")
                page.wait_for_function("window.chatPage && window.chatPage.state.loaded")
                for question in args.questions:
                    before = page.eval_on_selector_all("#messages li", "items => items.length")
                    page.fill("#input", question)
                    page.press("#input", "Enter")
                    page.wait_for_function(f"document.querySelectorAll('#messages li').length >= {before + 2}")
                    page.wait_for_function("!window.chatPage.state.sending")
                page.screenshot(path=str(DOCS / name))
                print(DOCS / name)
            browser.close()
    finally:
        process.terminate()
        process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
