"""data_pipeline/sources.py under generated bad input: every good row kept, every bad one named, only DataError.

Each reader gets files that shuffle good rows with more than twenty kinds of bad ones
(quotes, encodings, NUL and control characters, zero-width characters, huge cells,
wrong field counts, a BOM mid-file, CR-only lines, duplicates, wrong JSON shapes, ...),
under several seeds. The assertions: the dialogues kept are exactly the good ones, and
each bad row appears in `ReadReport.problems` under its line (or record) with its reason.
Then random byte mutations of good files: a reader returns or raises `DataError`
naming the file, nothing else.
"""

import json
import random

import pytest

from data_pipeline.sources import (
    MAX_TEXT_CHARS, DataError, read_aihub_json, read_dialogues, read_dialogues_jsonl, read_qa_csv, read_xpersona_json,
)

SEEDS = [0, 1, 2]
HUGE = "말" * (MAX_TEXT_CHARS + 1)

# (kind, the line(s) as bytes, reason expected in the problem list)
BAD_CSV = [
    ("unclosed quote", '"열린 따옴표 질문,대답,0', "unclosed double quote"),
    ("unclosed quote in the answer", '질문이에요,"열린 대답,0', "unclosed double quote"),
    ("empty question", ",대답만,0", "empty cell"),
    ("empty answer", "질문만,,0", "empty cell"),
    ("whitespace cells", "   ,\t ,0", "empty cell"),
    ("NaN", "NaN,답이에요,0", "empty cell"),
    ("quoted empty", '"",답이지요,0', "empty cell"),
    ("commas only", ",,", "empty cell"),
    ("zero-width only", "\u200b\u2060,답,0", "empty cell"),
    ("unquoted comma", "질문,대답, 그리고 더,0", "malformed CSV line"),
    ("one field", "질문 하나뿐", "malformed CSV line"),
    ("NUL byte", "질\x00문,답,0", "control character U+0000"),
    ("bell", "질문\x07,답,0", "control character U+0007"),
    ("escape", "질문,\x1b[31m답,0", "control character U+001B"),
    ("DEL", "질문\x7f,답,0", "control character U+007F"),
    ("C1 control", "질문\x90,답,0", "control character U+0090"),
    ("huge cell", f"{HUGE},답,0", "longer than"),
    ("repeated header", "Q,A,label", "header row repeated"),
    ("BOM and header mid-file", "\ufeffQ,A,label", "header row repeated"),
    ("undecodable bytes", b"\xff\xfe\xfa,\xc0\xaf,0", "undecodable bytes"),
    ("encoded surrogate", b"\xed\xa0\x80,\xed\xb0\x80,0", "undecodable bytes"),
]


def good_csv_rows(n: int, rng: random.Random) -> list[tuple[str, str, bytes]]:
    """(question, answer, line bytes): plain rows and the good-but-odd ones."""
    rows = [(f"질문 {i}번", f"대답 {i}번", f"질문 {i}번,대답 {i}번,0".encode()) for i in range(n)]
    rows += [
        ("한국어 윈도우 파일", "cp949 줄", "한국어 윈도우 파일,cp949 줄,0".encode("cp949")),  # Read as CP949.
        ('그는 "안녕" 했다', "따옴표 안의 따옴표", '"그는 ""안녕"" 했다",따옴표 안의 따옴표,0'.encode()),
        ("쉼표, 있는 질문", "따옴표로 감쌌어요", '"쉼표, 있는 질문",따옴표로 감쌌어요,0'.encode()),
        ("탭과 공백", "정리돼요", "\t탭과   공백 ,  정리돼요\t,0".encode()),
        ("이모지 👩‍💻", "합자는 그대로", "이모지 👩‍💻,합자는 그대로,0".encode()),
        ("보이지\u200b않는 문자", "지워져요", "보이지\u200b않는 문자,지워져요,0".encode()),
        ("레이블 없는 줄", "괜찮아요", "레이블 없는 줄,괜찮아요".encode()),
    ]
    rng.shuffle(rows)
    return [(q.replace("\u200b", "").replace("탭과   공백", "탭과 공백"), a, line) for q, a, line in rows]


def mixed_csv(seed: int, newline: bytes = b"\n"):
    """A CSV of good rows with every bad kind mixed in: (bytes, good pairs, {line: reason})."""
    rng = random.Random(seed)
    good = good_csv_rows(30, rng)
    items = [("good", row) for row in good] + [("bad", bad) for bad in BAD_CSV[1:]]
    rng.shuffle(items)
    items.insert(rng.randrange(1, len(items) - 5), ("bad", BAD_CSV[0]))  # Swallows the good rows after it.
    multi_line = ("여러 줄 질문", "여러 줄 셀은 한 줄로", '"여러\n줄 질문",여러 줄 셀은 한 줄로,0'.encode())
    lines, expected_bad, line_number = [b"Q,A,label"], {}, 1
    lines.append(multi_line[2])  # A legal quoted newline, before any unclosed quote.
    line_number += 2
    good.append(multi_line)
    for kind, item in items + [("bad", ("unclosed quote at the end", '"끝까지 안 닫힘,대답,0', "unclosed double quote"))]:
        line_number += 1
        if kind == "good":
            lines.append(item[2])
        else:
            name, text, reason = item
            lines.append(text if isinstance(text, bytes) else text.encode())
            expected_bad[line_number] = reason
    lines.append(good[0][2])  # A duplicate: dropped and counted, not a problem.
    return newline.join(lines) + newline, {(q, a) for q, a, _ in good}, expected_bad


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"], ids=["LF", "CRLF", "CR-only"])
def test_csv_keeps_every_good_row_and_names_every_bad_one(tmp_path, seed, newline):
    data, good, expected_bad = mixed_csv(seed, newline)
    path = tmp_path / "mixed.csv"
    path.write_bytes(data)
    dialogues, report = read_qa_csv(path)
    assert {d.turns for d in dialogues} == good
    named = {int(str(line).split("-")[0]): reason for line, reason, _ in report.problems}
    for line, reason in expected_bad.items():
        assert line in named and reason in named[line], (line, reason, named.get(line))
    assert set(named) == set(expected_bad), sorted(set(named) ^ set(expected_bad))
    assert report.duplicates == 1 and report.kept == len(good)
    assert "cp949" in report.encoding and "undecodable" in report.encoding


def test_the_issues_two_csv_cases(tmp_path):
    """50 rows, an unclosed quote in the middle (it swallowed 20 rows before) and one near the end (a crash)."""
    rows = [f"질문{i},대답{i},0" for i in range(50)]
    for name, position in (("middle", 25), ("end", 48)):
        lines = ["Q,A,label", *rows[:position], '"열린 따옴표 질문,대답,0', *rows[position:]]
        path = tmp_path / f"{name}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        dialogues, report = read_qa_csv(path)
        assert len(dialogues) == 50 and report.problems == [
            [position + 2, "unclosed double quote", report.problems[0][2]]]


def json_texts_bad():
    """(kind, a turn's JSON value, reason) shared by the JSON readers."""
    return [
        ("empty", "", "empty text"),
        ("whitespace", " \t\n ", "empty text"),
        ("null", None, "not a text"),
        ("number", 42, "not a text"),
        ("list", ["a"], "not a text"),
        ("NUL", "질\u0000문", "control character U+0000"),
        ("bell", "질문\u0007", "control character U+0007"),
        ("C1", "질문\u0090", "control character U+0090"),
        ("lone surrogate", "질문\ud800", "lone surrogate"),
        ("huge", HUGE, "longer than"),
        ("zero-width only", "\u200b\ufeff", "empty text"),
        ("replacement char", "깨진\ufffd글자", "undecodable bytes"),
    ]


def shuffled_json_file(path, good: list, duplicate, bad: list, seed: int):
    """A JSON list of the good records, one duplicate and the bad ones, shuffled: (path, [(kind, record, reason)])."""
    records = [("good", record, None) for record in good] + [("good", duplicate, "duplicate")]
    records += [("bad", record, reason) for _, record, reason in bad]
    random.Random(seed).shuffle(records)
    path.write_text(json.dumps([r for _, r, _ in records]), encoding="utf-8")  # "\ud800" stays an escape.
    return path, records


def test_jsonl_keeps_every_good_line_and_names_every_bad_one(tmp_path):
    for seed in SEEDS:
        rng = random.Random(seed)
        turn = lambda who, text: {"speaker": who, "text": text}  # noqa: E731
        good = [[turn("user", f"질문 {i}"), turn("bot", f"대답 {i}")] for i in range(25)]
        bad = [(f"text {kind}", json.dumps([turn("user", value), turn("bot", "답")]), reason)
               for kind, value, reason in json_texts_bad()]
        bad += [
            ("not JSON", "{oops", "not valid JSON"),
            ("truncated", '[{"speaker": "user", "text": "a"}', "not valid JSON"),
            ("deep nesting", "[" * 100_000 + "]" * 100_000, "not valid JSON"),
            ("a number", "42", "not a list of turns"),
            ("a string", '"안녕"', "not a list of turns"),
            ("null", "null", "not a list of turns"),
            ("turns not a list", '{"turns": "x"}', "not a list of turns"),
            ("no turns", "[]", "fewer than two turns"),
            ("one turn", json.dumps([turn("user", "혼자")]), "fewer than two turns"),
            ("unknown speaker", json.dumps([turn("narrator", "a"), turn("bot", "b")]), "no known speaker"),
            ("turn not an object", json.dumps(["a", "b"]), "no known speaker"),
            ("persona not a list", json.dumps({"persona": "나는 학생", "turns": good[0]}), "persona is not a list"),
            ("persona number", json.dumps({"persona": [3], "turns": good[0]}), "persona sentence: not a text"),
            ("persona control", json.dumps({"persona": ["나\u0007"], "turns": good[0]}), "persona sentence: control"),
            ("undecodable", b'[{"speaker": "user", "text": "\xff\xfe"}, {"speaker": "bot", "text": "b"}]',
             "undecodable bytes"),
        ]
        lines = [("good", json.dumps(d, ensure_ascii=rng.random() < 0.5).encode(), None) for d in good]
        lines += [("good", "\ufeff".encode() + json.dumps(good[1], ensure_ascii=False).encode() + b" ", "BOM"),
                  ("good", json.dumps([turn("user", "윈도우 줄"), turn("bot", "cp949")], ensure_ascii=False)
                   .encode("cp949"), "cp949")]
        lines += [("bad", text if isinstance(text, bytes) else text.encode(), reason) for _, text, reason in bad]
        rng.shuffle(lines)
        path = tmp_path / f"mixed{seed}.jsonl"
        path.write_bytes(b"\r".join(line for _, line, _ in lines) + b"\r")  # CR-only line ends.
        dialogues, report = read_dialogues_jsonl(path)
        expected = {(f"질문 {i}", f"대답 {i}") for i in range(25)} | {("윈도우 줄", "cp949")}
        assert {d.turns for d in dialogues} == expected
        assert report.duplicates == 1  # The BOM line repeats good[1].
        named = {line: reason for line, reason, _ in report.problems}
        for number, (kind, _, reason) in enumerate(lines, start=1):
            if kind == "bad":
                assert number in named and reason in named[number], (number, reason, named.get(number))
        assert len(named) == len(bad)


def test_xpersona_keeps_every_good_record_and_names_every_bad_one(tmp_path):
    good = [{"persona": [f"나는 {i}번 사람이야."], "dialogue": [[f"질문 {i}", f"대답 {i}"], [f"또 {i}", f"응 {i}"]]}
            for i in range(20)]
    bad = [(f"text {kind}", {"persona": ["나는 학생"], "dialogue": [[value, "답"]]}, reason)
           for kind, value, reason in json_texts_bad()]
    bad += [
        ("a number", 5, "not a {persona, dialogue} object"),
        ("a string", "안녕", "not a {persona, dialogue} object"),
        ("null", None, "not a {persona, dialogue} object"),
        ("no dialogue", {"persona": []}, "not a {persona, dialogue} object"),
        ("dialogue not a list", {"dialogue": "안녕"}, "not a {persona, dialogue} object"),
        ("no pairs", {"dialogue": []}, "no [user, response] pairs"),
        ("pair not a list", {"dialogue": ["안녕"]}, "not a [user, response] pair"),
        ("pair of three", {"dialogue": [["a", "b", "c"]]}, "not a [user, response] pair"),
        ("persona not a list", {"persona": "학생", "dialogue": [["a", "b"]]}, "persona is not a list"),
        ("persona number", {"persona": [1], "dialogue": [["a", "b"]]}, "persona sentence: not a text"),
        ("persona NUL", {"persona": ["\u0000"], "dialogue": [["a", "b"]]}, "persona sentence: control"),
    ]
    for seed in SEEDS:
        path, records = shuffled_json_file(tmp_path / f"x{seed}.json", good, good[3], bad, seed)
        dialogues, report = read_xpersona_json(path)
        assert {d.turns for d in dialogues} == {tuple(t for pair in r["dialogue"] for t in pair) for r in good}
        assert report.duplicates == 1
        named = {int(where.split()[1].rstrip(",")): reason for where, reason, _ in report.problems}
        for index, (kind, _, reason) in enumerate(records):
            if kind == "bad":
                assert index in named and reason in named[index], (index, reason, named.get(index))
        assert len(named) == len(bad)


def test_aihub_keeps_every_good_record_and_names_every_bad_one(tmp_path):
    def talk(content, talk_id="t"):
        return {"profile": {"persona-id": "A"}, "talk": {"id": {"talk-id": talk_id}, "content": content}}

    good = [talk({"HS01": f"질문 {i}", "SS01": f"대답 {i}", "HS02": "", "SS02": ""}, f"g{i}") for i in range(20)]
    bad = [(f"text {kind}", talk({"HS01": value, "SS01": "답"}), reason)
           for kind, value, reason in json_texts_bad() if kind not in ("empty", "whitespace", "null", "zero-width only")]
    bad += [
        ("empty first turn", talk({"HS01": "", "SS01": "답"}), "no HS01/SS01 exchange"),
        ("no answer", talk({"HS01": "질문"}), "no HS01/SS01 exchange"),
        ("a number", 5, "no talk.content object"),
        ("no talk", {"profile": {}}, "no talk.content object"),
        ("talk not an object", {"talk": "x"}, "no talk.content object"),
        ("content not an object", {"talk": {"content": ["a"]}}, "no talk.content object"),
    ]
    for seed in SEEDS:
        path, records = shuffled_json_file(tmp_path / f"a{seed}.json", good, good[0], bad, seed)
        dialogues, report = read_aihub_json(path)
        assert {d.turns for d in dialogues} == {(f"질문 {i}", f"대답 {i}") for i in range(20)}
        assert report.duplicates == 1
        named = {}
        for where, reason, _ in report.problems:
            named.setdefault(int(where.split()[1]), []).append(reason)
        for index, (kind, _, reason) in enumerate(records):
            if kind == "bad":
                assert index in named and any(reason in r for r in named[index]), (index, reason, named.get(index))


@pytest.mark.parametrize("name", ["data.csv", "data.jsonl", "xpersona.json", "aihub.json"])
def test_random_mutations_return_or_raise_data_error_naming_the_file(tmp_path, name):
    seeds = {
        "data.csv": "Q,A,label\n" + "".join(f'"질문, {i}",대답 {i},0\n' for i in range(8)),
        "data.jsonl": "".join(json.dumps([{"speaker": "user", "text": f"질문 {i}"}, {"speaker": "bot", "text": "응"}],
                                         ensure_ascii=False) + "\n" for i in range(8)),
        "xpersona.json": json.dumps([{"persona": ["나는 학생"], "dialogue": [[f"질문 {i}", "응"]]} for i in range(8)],
                                    ensure_ascii=False),
        "aihub.json": json.dumps([{"talk": {"content": {"HS01": f"질문 {i}", "SS01": "응"}}} for i in range(8)],
                                 ensure_ascii=False),
    }
    original = seeds[name].encode()
    rng = random.Random(name)
    alphabet = b'",\n\r{}[]:\x00\xff\xef\xbb\xbf\\ ' + "가".encode()
    path = tmp_path / name
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            action = rng.random()
            if action < 0.4:
                data[at:at + 1] = bytes([rng.choice(alphabet)])
            elif action < 0.7:
                data.insert(at, rng.choice(alphabet))
            else:
                del data[at:at + rng.randint(1, 8)]
        path.write_bytes(bytes(data))
        try:
            dialogues, report = read_dialogues(path)
        except DataError as error:
            assert str(path) in str(error)
            continue
        assert report.kept == len(dialogues) > 0
        assert all(turn and "\ufffd" not in turn for d in dialogues for turn in d.turns)
