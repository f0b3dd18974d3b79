"""evaluate.py with evaluation/{evaluate_run,likelihood,report}.py on the tiny real run."""

import json
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def evaluated(real_run, tmp_path_factory):
    run_dir, _ = real_run
    out = tmp_path_factory.mktemp("eval")
    probes = out / "probes.txt"
    probes.write_text("안녕하세요\n\n배고파\n", encoding="utf-8")
    process = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "--run-dir", str(run_dir), "--limit", "60",
         "--strategies", "retrieval,greedy,beam,top-p", "--probes", str(probes), "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    return run_dir, out, process.stdout


def test_report_files_are_written(evaluated):
    run_dir, out, stdout = evaluated
    for name in ("eval.json", "report.md", "references.txt", "replies/greedy.txt", "replies/beam.txt",
                 "replies/top-p.txt", "replies/retrieval.txt", "training_curves.png", "reply_lengths.png", "strategies.png"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "| greedy |" in report and "| 배고파 |" in report  # Strategy rows and the probe table.
    assert list((run_dir / "logs" / "eval").glob("events.out.tfevents.*"))
    assert "| beam |" in stdout


def test_figures_are_sane(evaluated):
    summary = json.loads((evaluated[1] / "eval.json").read_text(encoding="utf-8"))
    assert summary["examples"] == 60
    likelihood = summary["likelihood"]
    assert 1 < likelihood["perplexity"] < 200 and 0 < likelihood["token_accuracy"] < 1
    for name in ("greedy", "beam", "top-p"):
        scores = summary["strategies"][name]
        assert 0 <= scores["bleu"] <= 100 and 0 < scores["chrf"] <= 100
        assert 0 < scores["distinct_1"] <= 1 and 0 <= scores["ended_share"] <= 1 and scores["mean_reply_tokens"] > 0
    # One answer per evaluated strategy (retrieval, greedy, beam, top-p), blank lines skipped.
    assert len(summary["probes"]) == 2 and all(len(a) == 4 for a in summary["probes"].values())


def test_scores_agree_with_an_independent_sacrebleu_run(evaluated):
    out = evaluated[1]
    summary = json.loads((out / "eval.json").read_text(encoding="utf-8"))
    for name in ("greedy", "beam", "top-p"):
        process = subprocess.run(
            [sys.executable, "-m", "sacrebleu", str(out / "references.txt"), "-i", str(out / "replies" / f"{name}.txt"),
             "-m", "bleu", "chrf", "-b", "-w", "4"], capture_output=True, text=True, timeout=120,
        )
        assert process.returncode == 0, process.stderr
        bleu, chrf = json.loads(process.stdout)
        assert bleu == pytest.approx(summary["strategies"][name]["bleu"], abs=1e-3)
        assert chrf == pytest.approx(summary["strategies"][name]["chrf"], abs=1e-3)


def test_bad_arguments_are_reported(real_run, tmp_path):
    process = subprocess.run(
        [sys.executable, str(ROOT / "evaluate.py"), "--run-dir", str(real_run[0]), "--strategies", "nucleus"],
        capture_output=True, text=True, timeout=300,
    )
    assert process.returncode == 2 and "unknown strategies ['nucleus']" in process.stderr
