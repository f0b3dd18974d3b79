"""model/run_files.py with model/retrieval.py's `run_index`: a run read back, damaged files falling back and saying so."""

import shutil

import numpy as np
import pytest

from errors import DamagedFile
from model.retrieval import run_index
from model.run_files import load_run
from run_directory import RunDirectory


@pytest.fixture
def copied_run(real_run, tmp_path):
    return RunDirectory(shutil.copytree(real_run[0], tmp_path / "run"))


def test_a_damaged_model_file_falls_back_to_the_best_checkpoint(copied_run, capsys):
    intact = load_run(copied_run.root).model.get_weights()
    copied_run.model.write_bytes(copied_run.model.read_bytes()[:2000])
    fallen_back = load_run(copied_run.root).model.get_weights()
    assert f"{copied_run.model} is damaged" in capsys.readouterr().err
    assert all(np.array_equal(a, b) for a, b in zip(intact, fallen_back))  # The same weights.
    copied_run.best_weights.write_bytes(b"")
    with pytest.raises(DamagedFile, match="best.weights.h5 is damaged"):
        load_run(copied_run.root)


def test_a_damaged_retrieval_index_is_rebuilt_from_the_training_split(copied_run, capsys):
    from config import load_config

    settings = load_config(copied_run.config).retrieval
    intact = run_index(copied_run.root, settings)
    copied_run.retrieval_index.write_bytes(b"not an index")
    rebuilt = run_index(copied_run.root, settings)
    assert "is damaged" in capsys.readouterr().err and rebuilt.size == intact.size
    assert rebuilt.keys == intact.keys
    copied_run.retrieval_index.write_bytes(b"")
    copied_run.train_split.unlink()
    with pytest.raises(DamagedFile, match="is missing to rebuild it from"):
        run_index(copied_run.root, settings)
