"""data_pipeline/sources.py: every bad-CSV case is either kept (normalised) or skipped with file and line."""

import logging
import re
import unicodedata

import pytest

from conftest import SHARED_DATA, write_bytes
from data_pipeline.sources import DataError, normalize_text, read_qa_csv


def read(tmp_path, text: str | bytes, caplog=None):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return read_qa_csv(write_bytes(tmp_path, "data.csv", data))


def test_real_chatbot_data(chatbot_csv):
    dialogues, report = read_qa_csv(chatbot_csv)
    assert report.duplicates == 73  # The data README's count.
    assert report.kept == len(dialogues) == 11023 - 73
    assert not report.skipped


def test_missing_columns_names_what_was_found(tmp_path):
    with pytest.raises(DataError, match=r"missing column\(s\) \['A'\].*found columns \['Q', 'answer'\]"):
        read(tmp_path, "Q,answer\n안녕,반가워\n")


def test_empty_file(tmp_path):
    with pytest.raises(DataError, match="empty"):
        read(tmp_path, "")


def test_empty_and_nan_cells_skipped_with_line(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        dialogues, report = read(tmp_path, "Q,A\n안녕,반가워\n,빈 질문\n질문,\nNaN,답\n   ,  \n잘 가,또 봐\n")
    assert [d.turns for d in dialogues] == [("안녕", "반가워"), ("잘 가", "또 봐")]
    assert report.skipped["empty cell"] == 4
    for line in (3, 4, 5, 6):
        assert f"data.csv:{line}: skipped row: empty cell" in caplog.text


def test_bom_crlf_quoted_commas_and_newlines(tmp_path):
    text = '\ufeffQ,A,label\r\n"밥, 먹었어?","응, 먹었어",0\r\n"여러\r\n줄 질문","답",1\r\n끝,마지막,0\r\n'
    dialogues, report = read(tmp_path, text)
    assert [d.turns for d in dialogues] == [("밥, 먹었어?", "응, 먹었어"), ("여러 줄 질문", "답"), ("끝", "마지막")]
    assert [d.source.rsplit(":", 1)[1] for d in dialogues] == ["2", "3-4", "5"]  # A record over two lines.
    assert not report.skipped


def test_stray_whitespace_is_normalised(tmp_path):
    dialogues, _ = read(tmp_path, "Q,A\n  안녕   하세요 \t, 반가워\u3000요  \n")
    assert dialogues[0].turns == ("안녕 하세요", "반가워 요")


def test_nfd_input_becomes_nfc(tmp_path):
    nfd = unicodedata.normalize("NFD", "한국어")
    assert nfd != "한국어"
    dialogues, _ = read(tmp_path, f"Q,A\n{nfd},좋아\n")
    assert dialogues[0].turns[0] == "한국어"


def test_undecodable_bytes_skip_only_that_row(tmp_path, caplog):
    data = "Q,A\n안녕,반가워\n".encode() + b"bad\xff\xfe,x\n" + "또,봐\n".encode()
    with caplog.at_level(logging.WARNING):
        dialogues, report = read(tmp_path, data)
    assert [d.turns for d in dialogues] == [("안녕", "반가워"), ("또", "봐")]
    assert report.skipped["undecodable bytes"] == 1
    assert "data.csv:3: skipped row: undecodable bytes" in caplog.text


def test_cp949_file_is_decoded(tmp_path):
    dialogues, report = read(tmp_path, "Q,A\n안녕,반가워\n".encode("cp949"))
    assert dialogues[0].turns == ("안녕", "반가워")
    assert report.encoding == "cp949"


def test_malformed_line_skipped_with_physical_line(tmp_path, caplog):
    text = 'Q,A\n"두\n줄",답\n\n하나,둘,셋\n좋아,그래\n'
    with caplog.at_level(logging.WARNING):
        dialogues, report = read(tmp_path, text)
    assert [d.turns for d in dialogues] == [("두 줄", "답"), ("좋아", "그래")]
    assert report.skipped["malformed CSV line"] == 1
    assert "data.csv:5: skipped row: malformed CSV line" in caplog.text


def test_exact_duplicates_dropped_and_counted(tmp_path):
    dialogues, report = read(tmp_path, "Q,A\n안녕,반가워\n안녕 ,반가워\n안녕,반가워요\n")
    assert len(dialogues) == 2 and report.duplicates == 1
    assert report.to_dict()["duplicates_dropped"] == 1


def test_no_usable_rows_is_an_error(tmp_path):
    with pytest.raises(DataError, match="no usable dialogues"):
        read(tmp_path, "Q,A\n,\n")


def test_normalize_text():
    assert normalize_text(" a \n b\r\nc ") == "a b c"


# -- XPersona-style JSON ------------------------------------------------------
XPERSONA = SHARED_DATA / "xpersona_ko_dialogues.json"


def test_xpersona_shared_file_reads_every_dialogue():
    from data_pipeline.sources import read_xpersona_json

    dialogues, report = read_xpersona_json(XPERSONA)
    assert len(dialogues) + report.duplicates == 299 and not report.skipped
    assert sum(len(d.turns) // 2 for d in dialogues) + 0 >= 2300  # 2,342 pairs in the file.
    first = dialogues[0]
    assert first.persona and first.turns[0] == "안녕! 오늘 밤 어떻게 지내니?" and len(first.turns) % 2 == 0


def test_xpersona_bad_records_are_skipped_or_cut_and_named(tmp_path, caplog):
    import json

    from data_pipeline.sources import read_xpersona_json

    records = [
        {"persona": ["나는 개를 좋아해."], "dialogue": [["안녕", "반가워"], ["뭐 해?", "쉬어"]]},
        {"persona": ["나는 개를 좋아해."], "dialogue": [["안녕", "반가워"], ["뭐 해?", "쉬어"]]},  # Duplicate.
        {"dialogue": [["배고파", "뭐 먹을래?"], ["라면", ""], ["또", "와"]]},  # Cut at the empty reply.
        {"persona": "not a list", "dialogue": [["a", "b"]]},
        ["not", "an", "object"],
    ]
    path = tmp_path / "x.json"
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    dialogues, report = read_xpersona_json(path)
    assert [d.turns for d in dialogues] == [("안녕", "반가워", "뭐 해?", "쉬어"), ("배고파", "뭐 먹을래?")]
    assert report.duplicates == 1 and sum(report.skipped.values()) == 3
    assert "record 2, pair 1" in caplog.text and "record 4" in caplog.text


@pytest.mark.parametrize("text, message", [("[{", "not valid JSON (line 1"), ('{"a": 1}', "expected a JSON list")])
def test_xpersona_unusable_files_raise(tmp_path, text, message):
    from data_pipeline.sources import DataError, read_xpersona_json

    path = write_bytes(tmp_path, "bad.json", text.encode())
    with pytest.raises(DataError, match=re.escape(message)) as caught:
        read_xpersona_json(path)
    assert str(path) in str(caught.value)


def test_multi_turn_examples_from_xpersona_keep_the_context():
    from data_pipeline.context import format_turns
    from data_pipeline.examples import dialogue_examples
    from data_pipeline.sources import read_xpersona_json

    dialogue = read_xpersona_json(XPERSONA)[0][0]
    examples = dialogue_examples(dialogue, context_turns=3)
    assert len(examples) == len(dialogue.turns) // 2
    turns = dialogue.turns[1:5]  # Three earlier turns (bot, user, bot) and the question.
    assert examples[2].context == format_turns(turns, ["bot", "user", "bot", "user"])
    assert examples[2].response == dialogue.turns[5]
    assert examples[2].persona == " ".join(dialogue.persona)


def test_training_reads_json_files_as_xpersona():
    from config import DataConfig
    from data_pipeline.loading import load_dialogues

    dialogues, report = load_dialogues(DataConfig(sources=[str(XPERSONA)]))
    assert report.kept == len(dialogues) > 290 and dialogues[0].persona


# -- JSON Lines -------------------------------------------------------------
def jsonl(tmp_path, *lines: str):
    return write_bytes(tmp_path, "dialogues.jsonl", ("\n".join(lines) + "\n").encode("utf-8"))


def turn(speaker, text):
    return {"speaker": speaker, "text": text}


def test_jsonl_turns_with_speakers_persona_and_bot_openings(tmp_path):
    import json

    from data_pipeline.sources import BOT, USER, read_dialogues_jsonl

    path = jsonl(
        tmp_path,
        json.dumps([turn("user", "안녕"), turn("bot", "반가워"), turn("user", "뭐 해?"), turn("bot", "책 읽어")],
                   ensure_ascii=False),
        "",
        json.dumps({"persona": ["나는 고양이를 키워."], "turns": [turn("system", "어서 와"), turn("human", "안녕"),
                                                           turn("assistant", "반가워요")]}, ensure_ascii=False),
    )
    dialogues, report = read_dialogues_jsonl(path)
    assert [d.turns for d in dialogues] == [("안녕", "반가워", "뭐 해?", "책 읽어"), ("어서 와", "안녕", "반가워요")]
    assert [d.first_speaker for d in dialogues] == [USER, BOT]
    assert dialogues[1].persona == ("나는 고양이를 키워.",)
    assert dialogues[1].source == f"{path}:3" and report.kept == 2 and not report.skipped


def test_jsonl_bad_lines_are_named_and_good_turns_kept(tmp_path, caplog):
    import json

    from data_pipeline.sources import read_dialogues_jsonl

    good = json.dumps([turn("user", "a"), turn("bot", "b")])
    path = jsonl(
        tmp_path,
        good,
        "{not json",
        json.dumps([turn("user", "c"), turn("user", "c2"), turn("bot", "d"), turn("narrator", "e"), turn("bot", "f")]),
        json.dumps({"turns": "x"}),
        json.dumps([turn("user", "only")]),
        good,
    )
    with caplog.at_level(logging.WARNING):
        dialogues, report = read_dialogues_jsonl(path)
    assert [d.turns for d in dialogues] == [("a", "b"), ("c c2", "d")]  # Same speaker joined; cut at "narrator".
    assert report.duplicates == 1
    assert report.skipped["not valid JSON"] == 1
    assert report.skipped["no known speaker (the dialogue ends there)"] == 1
    assert report.skipped["not a list of turns or a {persona, turns} object"] == 1
    assert report.skipped["fewer than two turns"] == 1
    assert f"{path}:2:" in caplog.text and f"{path}:3:" in caplog.text and "kept the 3 turn(s) before it" in caplog.text


def test_jsonl_without_usable_dialogues_raises(tmp_path):
    from data_pipeline.sources import read_dialogues_jsonl

    with pytest.raises(DataError, match="no usable dialogues"):
        read_dialogues_jsonl(jsonl(tmp_path, "[]"))


# -- AIHub emotional dialogue -------------------------------------------------


def test_aihub_sample_reads_turns_in_order_and_reports_the_rest(caplog):
    from pathlib import Path

    from data_pipeline.sources import read_aihub_json

    path = Path(__file__).parent / "data" / "aihub_emotional_sample.json"
    with caplog.at_level(logging.WARNING):
        dialogues, report = read_aihub_json(path)
    assert [len(d.turns) for d in dialogues] == [4, 6, 2]
    assert dialogues[0].turns[3] == "혼자 해결하기로 했군요. 힘들면 주위에 도움을 청해 보세요."  # Stripped.
    assert dialogues[1].turns[-1] == "기대할게요!" and dialogues[0].persona == ()
    assert report.duplicates == 1 and report.kept == 3
    assert report.skipped["turn after a gap (dropped with the rest)"] == 2
    assert report.skipped["no talk.content object"] == 1
    assert report.skipped["no HS01/SS01 exchange"] == 1
    assert "record 2 (Pro_00003_00003)" in caplog.text and "HS03; kept 2 turn(s)" in caplog.text


def test_read_dialogues_picks_the_reader(tmp_path):
    from pathlib import Path

    from data_pipeline.sources import read_dialogues

    sample = Path(__file__).parent / "data" / "aihub_emotional_sample.json"
    assert read_dialogues(sample)[1].kept == 3
    assert read_dialogues(XPERSONA)[1].kept == 299
    csv_dialogues, _ = read_dialogues(write_bytes(tmp_path, "x.csv", "Q,A\n안녕,반가워\n".encode()))
    assert csv_dialogues[0].turns == ("안녕", "반가워")
