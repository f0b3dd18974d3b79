"""The files of a run directory and of an exported version, named in one place: modules ask for paths here.

    <run>/config.yaml          the resolved configuration (written first; a resume must match it)
    <run>/data_report.json     rows kept / skipped / duplicates; split sizes; context turns seen
    <run>/data/train.jsonl     the training split, as used
    <run>/data/validation.jsonl
    <run>/vocab.txt            the WordPiece vocabulary
    <run>/character.yaml       the run's copy of its character (`data.character`), if any
    <run>/logs/                TensorBoard: train/, validation/, samples/, eval/
    <run>/history.csv          one row per finished epoch
    <run>/checkpoints/best.weights.h5   best so far by `train.monitor` (EMA weights with EMA on)
    <run>/backup/              BackupAndRestore state (removed when training ends)
    <run>/workers/<task>-<i>/  what a non-chief worker writes (multi-worker training)
    <run>/model.keras          the final (best) model
    <run>/retrieval_index.npz  the training split's retrieval index (`retrieval.enabled`)
    <run>/metrics.json         written last: the run is finished when it exists
    <run>/export.json          the TF Serving version it was exported as (`export_finished_run`)
    <run>/train.lock           held by the train.py training the run (`run_lock.py`)
    <run>/eval/                `evaluate.py`'s report, unless `--out` says elsewhere

`ExportVersion` names the files of one TF Serving version (`serving/export.py` writes them):

    <base>/<name>/<version>/saved_model.pb, variables/
                            assets.extra/vocab.txt, config.yaml, character.yaml (a character run),
                                         export.json, tf_serving_warmup_requests
"""

from __future__ import annotations

from pathlib import Path


class RunDirectory:
    """The paths of the run in `root` (attributes, one per file above); nothing is created or read here."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.config = self.root / "config.yaml"
        self.data_report = self.root / "data_report.json"
        self.data = self.root / "data"
        self.train_split = self.data / "train.jsonl"
        self.validation_split = self.data / "validation.jsonl"
        self.vocabulary = self.root / "vocab.txt"
        self.character = self.root / "character.yaml"
        self.logs = self.root / "logs"
        self.history = self.root / "history.csv"
        self.checkpoints = self.root / "checkpoints"
        self.best_weights = self.checkpoints / "best.weights.h5"
        self.backup = self.root / "backup"
        self.model = self.root / "model.keras"
        self.retrieval_index = self.root / "retrieval_index.npz"
        self.metrics = self.root / "metrics.json"
        self.export_record = self.root / "export.json"
        self.lock = self.root / "train.lock"
        self.evaluation = self.root / "eval"
        self.workers = self.root / "workers"

    def __fspath__(self) -> str:  # A path-like: `Path(run)` and `RunDirectory(run)` take one.
        return str(self.root)

    def __str__(self) -> str:
        return str(self.root)

    def __repr__(self) -> str:
        return f"RunDirectory({str(self.root)!r})"

    def worker(self, task_type: str, index: int) -> "RunDirectory":
        """The private run directory of a non-chief worker (multi-worker training)."""
        return RunDirectory(self.workers / f"{task_type}-{index}")


class ExportVersion:
    """The paths of the exported version in `root` (TF Serving's `<base>/<name>/<version>/`)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.graph = self.root / "saved_model.pb"
        self.extra = self.root / "assets.extra"  # TF Serving's folder for files beside the graph.
        self.vocabulary = self.extra / "vocab.txt"
        self.config = self.extra / "config.yaml"
        self.character = self.extra / "character.yaml"
        self.export_record = self.extra / "export.json"
        self.warmup_requests = self.extra / "tf_serving_warmup_requests"  # The name TF Serving replays.

    def __fspath__(self) -> str:
        return str(self.root)

    def __repr__(self) -> str:
        return f"ExportVersion({str(self.root)!r})"


def versions(model_dir: str | Path) -> list[int]:
    """Integer version folders under `model_dir`, ascending (other names are ignored, as TF Serving does)."""
    if not Path(model_dir).is_dir():
        return []
    return sorted(int(p.name) for p in Path(model_dir).iterdir() if p.is_dir() and p.name.isdigit())
