"""serving/web/ in a real browser: Debian's Chromium, driven by Playwright, against serve.py on a tiny export.

The character run's export is served; the page must show the character, send Korean typed
through a real IME composition exactly once, carry the controls into the request, reset,
survive a stopped server, and work from another origin (CORS).
"""

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from config import DecodingSettings
from conftest import ROOT, free_port, start_server

CHROMIUM = Path("/usr/bin/chromium")
# The flags the browser needs on a machine without network or a display.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

@pytest.fixture(scope="module")
def served(persona_export, tmp_path_factory):
    """serve.py over the character export: (REST URL, base path, ports, process holder)."""
    base = tmp_path_factory.mktemp("page") / "chatbot"
    base.mkdir()
    shutil.copytree(persona_export, base / "1")
    ports = (free_port(), free_port())
    holder = {"process": start_server(base, *ports)[0]}
    yield f"http://127.0.0.1:{ports[1]}", base, ports, holder
    holder["process"].terminate()
    holder["process"].wait(timeout=30)


@pytest.fixture(scope="module")
def browser():
    assert CHROMIUM.exists(), "Debian's chromium is needed: apt-get install -y chromium (.ci/run does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, served):
    context = browser.new_context(locale="ko-KR")
    page = context.new_page()
    page.goto(served[0] + "/")
    page.wait_for_function("window.chatPage && window.chatPage.state.loaded")
    yield page
    context.close()


def bubbles(page) -> list[tuple[str, str]]:
    return page.eval_on_selector_all(
        "#messages li", "items => items.map(li => [li.dataset.speaker, li.lastChild.textContent])")


def wait_for_bubbles(page, count: int):
    page.wait_for_function(f"document.querySelectorAll('#messages li').length >= {count}", timeout=60_000)
    page.wait_for_function("!window.chatPage.state.sending", timeout=60_000)


def type_with_ime_and_enter(page, committed: str, composing: str):
    """Type `committed`, compose `composing` through the IME, press Enter while composing, as Chrome does."""
    page.focus("#input")
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.insertText", {"text": committed})
    cdp.send("Input.imeSetComposition", {"text": composing, "selectionStart": len(composing),
                                         "selectionEnd": len(composing)})
    # The Enter that commits the syllable: keyCode 229 while the composition is open.
    cdp.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", "key": "Enter", "code": "Enter",
                                        "windowsVirtualKeyCode": 229, "nativeVirtualKeyCode": 229})
    cdp.send("Input.insertText", {"text": composing})  # Commits the composition (compositionend).
    cdp.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 229})
    # The Enter the platform sends after compositionend.
    for kind in ("rawKeyDown", "char", "keyUp"):
        event = {"type": kind, "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
        if kind == "char":
            event["text"] = "\r"
        cdp.send("Input.dispatchKeyEvent", event)


def test_the_page_shows_the_character_greeting_and_version(page):
    assert page.inner_text("#status") == ""
    assert page.title() == "하루" and page.inner_text("#title") == "하루"
    assert bubbles(page) == [["bot", "안녕하세요! 저는 하루예요. 오늘 하루는 어땠어요?"]]
    assert page.inner_text("#version") == "chatbot · 버전 1"
    assert page.get_attribute("#messages", "aria-live") == "polite"  # New replies are announced.
    for control in ("input", "strategy", "temperature", "top_k", "top_p", "max_length", "seed", "retrieval"):
        assert page.evaluate(f"document.getElementById('{control}').labels.length") == 1, control


def test_a_message_sent_before_the_page_is_ready_is_held_and_sent_once(browser, served):
    """Enter pressed while the page still waits for the export's settings: held, said so, then sent."""
    context = browser.new_context(locale="ko-KR")
    page = context.new_page()
    held = []

    def hold_the_settings_call(route):
        if '"settings"' in (route.request.post_data or ""):
            held.append(route)
        else:
            route.continue_()

    page.route("**/v1/models/**", hold_the_settings_call)
    try:
        page.goto(served[0] + "/")
        page.wait_for_function("window.chatPage !== undefined")
        for _ in range(600):
            if held:
                break
            page.wait_for_timeout(50)
        assert held, "the page never asked for the export's settings"
        page.fill("#input", "안녕 하루야")
        page.press("#input", "Enter")
        assert not page.evaluate("window.chatPage.state.loaded")
        assert "준비되면 바로 보낼게요" in page.inner_text("#status") and page.input_value("#input") == "안녕 하루야"
        held[0].continue_()
        wait_for_bubbles(page, 3)
        speakers = [speaker for speaker, _ in bubbles(page)]
        assert speakers == ["bot", "user", "bot"] and bubbles(page)[1] == ["user", "안녕 하루야"]
        assert page.inner_text("#status") == "" and page.input_value("#input") == ""
    finally:
        context.close()


def test_the_controls_start_at_the_exports_decoding_defaults(page):
    served = DecodingSettings()  # The test export keeps the default export settings.
    shown = {control: page.input_value(f"#{control}") for control in ("strategy", "temperature", "top_k", "top_p",
                                                                       "max_length")}
    assert shown == {"strategy": served.strategy, "temperature": "1", "top_k": str(served.top_k), "top_p": "1",
                     "max_length": str(served.max_reply_length)}
    assert page.is_checked("#retrieval")


def test_korean_typed_through_the_ime_is_sent_once_with_its_last_syllable(page):
    type_with_ime_and_enter(page, "안녕하", "세요")
    wait_for_bubbles(page, 3)
    page.wait_for_timeout(300)  # A second (wrong) send would show by now.
    sent = bubbles(page)[1:]
    assert [speaker for speaker, _ in sent] == ["user", "bot"], sent
    assert sent[0][1] == "안녕하세요" and sent[1][1]
    assert page.input_value("#input") == ""


def test_a_naive_enter_handler_fails_the_same_ime_test(page):
    """The check above catches the classic bug: sending on every Enter keydown."""
    page.evaluate("() => { window.chatPage.isSendKey = (e) => e.key === 'Enter' && !e.shiftKey; }")
    type_with_ime_and_enter(page, "안녕하", "세요")
    page.wait_for_timeout(1500)
    page.wait_for_function("!window.chatPage.state.sending", timeout=60_000)
    users = [text for speaker, text in bubbles(page) if speaker == "user"]
    # It sends on the composing Enter; the committed syllable then comes back as a second
    # message, or (when the first reply is still on its way) stays behind in the box.
    assert (users, page.input_value("#input")) != (["안녕하세요"], ""), users


def test_shift_enter_makes_a_new_line_and_the_keyboard_alone_sends(page):
    page.focus("#input")
    page.keyboard.type("배고파")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("뭐 먹지")
    assert page.input_value("#input") == "배고파\n뭐 먹지" and len(bubbles(page)) == 1
    page.keyboard.press("Enter")
    wait_for_bubbles(page, 3)
    assert bubbles(page)[1] == ["user", "배고파\n뭐 먹지"]


def test_changed_controls_reach_the_request_with_the_history(page):
    requests = []
    page.on("request", lambda r: requests.append(json.loads(r.post_data)) if r.method == "POST" else None)
    page.click("summary")
    page.select_option("#strategy", "beam")
    page.fill("#max_length", "12")
    page.fill("#seed", "7")
    page.uncheck("#retrieval")
    for turn, text in enumerate(["안녕", "뭐 해?"]):
        page.fill("#input", text)
        page.click("#send")
        wait_for_bubbles(page, 3 + 2 * turn)
    chat = [r for r in requests if r.get("signature_name") == "chat"]
    assert chat[-1]["inputs"]["strategy"] == "beam" and chat[-1]["inputs"]["max_length"] == 12
    assert chat[-1]["inputs"]["seed"] == 7 and chat[-1]["inputs"]["retrieval"] is False
    first_reply = bubbles(page)[2][1]
    assert chat[-1]["inputs"]["history"] == [["안녕", first_reply, "뭐 해?"]]  # The tab keeps the conversation.


def test_a_name_given_in_the_page_is_told_back_later(page):
    """The page sends the conversation with every message; the served `chat` keeps the user's name from it."""
    for turn, text in enumerate(["내 이름은 민지야", "배고파", "내 이름 기억해?"]):
        page.fill("#input", text)
        page.press("#input", "Enter")
        wait_for_bubbles(page, 3 + 2 * turn)
    replies = [text for who, text in bubbles(page) if who == "bot"]
    assert "민지" in replies[1] and "민지" not in replies[2] and "민지" in replies[3]


def test_reset_clears_the_conversation(page):
    page.fill("#input", "안녕")
    page.press("#input", "Enter")
    wait_for_bubbles(page, 3)
    page.click("#reset")
    assert bubbles(page) == [["bot", "안녕하세요! 저는 하루예요. 오늘 하루는 어땠어요?"]]
    assert page.evaluate("window.chatPage.state.history") == []


def test_a_stopped_server_shows_its_error_keeps_the_text_and_the_next_send_works(page, served):
    url, base, ports, holder = served
    holder["process"].terminate()
    holder["process"].wait(timeout=30)
    page.fill("#input", "서버 꺼졌어?")
    page.press("#input", "Enter")
    page.wait_for_function("document.getElementById('status').classList.contains('error')", timeout=30_000)
    assert "서버에 연결할 수 없어요" in page.inner_text("#status")
    assert page.input_value("#input") == "서버 꺼졌어?" and len(bubbles(page)) == 1
    holder["process"] = start_server(base, *ports)[0]
    page.press("#input", "Enter")
    wait_for_bubbles(page, 3)
    assert bubbles(page)[1] == ["user", "서버 꺼졌어?"] and page.inner_text("#status") == ""
    # A refused request shows the server's own message.
    page.click("summary")
    page.fill("#top_p", "1.5")
    page.fill("#input", "다시")
    page.press("#input", "Enter")
    page.wait_for_function("document.getElementById('status').classList.contains('error')", timeout=30_000)
    assert "(400)" in page.inner_text("#status") and "top_p must be in" in page.inner_text("#status")
    assert page.input_value("#input") == "다시"


def test_the_page_hosted_elsewhere_calls_the_api_through_cors(browser, served, tmp_path):
    shutil.copytree(ROOT / "serving" / "web", tmp_path / "site")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "site"))
    static = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=static.serve_forever, daemon=True).start()
    try:
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{static.server_address[1]}/index.html?api={served[0]}&model=chatbot")
        page.wait_for_function("document.getElementById('title').textContent === '하루'", timeout=30_000)
        page.fill("#input", "안녕")
        page.press("#input", "Enter")
        wait_for_bubbles(page, 3)
        assert [s for s, _ in bubbles(page)] == ["bot", "user", "bot"]
        context.close()
    finally:
        static.shutdown()
