"""The run directory's layout: what a finished run holds is what `RunDirectory` names."""

from pathlib import Path

from run_directory import RunDirectory


def named_entries(run: RunDirectory) -> set[str]:
    """The top-level names of every path `run` names."""
    paths = [p for p in vars(run).values() if isinstance(p, Path) and p != run.root]
    return {p.relative_to(run.root).parts[0] for p in paths}


def test_a_finished_run_holds_only_named_files_and_all_a_finished_run_needs(real_run):
    run = RunDirectory(real_run[0])
    assert {p.name for p in run.root.iterdir()} <= named_entries(run)
    for path in (run.config, run.data_report, run.train_split, run.validation_split, run.vocabulary, run.logs,
                 run.history, run.best_weights, run.model, run.retrieval_index, run.metrics):
        assert path.exists(), path
    assert not run.backup.exists()  # BackupAndRestore removes it when training ends.


def test_paths_are_under_the_root_and_a_worker_gets_its_own_directory(tmp_path):
    run = RunDirectory(tmp_path / "run")
    assert RunDirectory(run).root == run.root == tmp_path / "run"  # A RunDirectory is a path-like too.
    assert run.train_split == tmp_path / "run" / "data" / "train.jsonl"
    worker = run.worker("worker", 1)
    assert worker.root == run.workers / "worker-1" and worker.metrics.parent == worker.root
