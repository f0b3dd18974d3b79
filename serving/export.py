"""Export a trained run as a SavedModel in TF Serving's layout, one atomic version at a time.

    saved_models/<name>/<version>/saved_model.pb
                                  variables/
                                  assets.extra/vocab.txt, config.yaml, export.json,
                                               tf_serving_warmup_requests
                                  (the names: `run_directory.ExportVersion`)

The version is the next integer after the highest one present. It is written
under a hidden temporary name, checked (no `Xla*` op in the graph or its function
library) and renamed into place, so a server watching the base path never sees a
half-written or unservable version. `assets.extra/tf_serving_warmup_requests` holds
one request per signature; TF Serving (and `serve.py`) replay it when loading so the
first user does not pay for graph start-up.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import keras
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from config import Config
from errors import UserError, damage_of, is_no_space
from run_directory import ExportVersion, RunDirectory, versions
from serving.client import chat_arrays
from data_pipeline.loading import run_context_turns, run_character, run_persona
from model.retrieval import run_index
from serving.signatures import CHAT_SPECS, TEXT_SPEC, ServingFunctions

STAGING_PREFIX = ".staging-"  # A version being written: hidden, not an integer, so no server loads it.
SERVING_DEFAULT = "serving_default"
CHAT_SIGNATURE = "chat"
RETRIEVE_SIGNATURE = "retrieve"
CHARACTER_SIGNATURE = "character"
SETTINGS_SIGNATURE = "settings"


class ExportFailed(UserError):
    """The export could not be written (its disk is full, or a limit or permission stopped it)."""


def graph_op_types(saved_model_dir: Path) -> set[str]:
    """Every op type in `saved_model.pb`: the graphs and their function libraries."""
    saved_model = saved_model_pb2.SavedModel()
    saved_model.ParseFromString(ExportVersion(saved_model_dir).graph.read_bytes())
    types = set()
    for meta_graph in saved_model.meta_graphs:
        types.update(node.op for node in meta_graph.graph_def.node)
        for function in meta_graph.graph_def.library.function:
            types.update(node.op for node in function.node_def)
    return types


def model_folder_name(config: Config, run_dir: str | Path | None) -> str:
    """Where under the base path a run's versions go: `export.name`, else the run directory's name."""
    return config.export.name or (Path(run_dir).resolve().name if run_dir is not None else "chatbot")


def export_model(model, tokenizer, config: Config, run_dir: Path | None = None,
                 base_dir: str | Path | None = None) -> Path:
    """Write the next version under `<base_dir>/<model_folder_name>`; returns its final directory."""
    model_dir = Path(base_dir or config.export.base_dir) / model_folder_name(config, run_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    remove_abandoned_staging(model_dir)
    staging = model_dir / f"{STAGING_PREFIX}{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        return _write_and_publish(model, tokenizer, config, run_dir, staging, model_dir)
    except UserError:
        raise
    except (OSError, tf.errors.OpError) as error:  # A full disk, a file-size limit, a read-only folder.
        if isinstance(error, tf.errors.OpError) and not is_no_space(error):
            raise  # A graph that cannot be built is a bug, not the disk.
        raise ExportFailed(f"could not write the export under {model_dir} ({damage_of(error)}); nothing was "
                           "published and the versions there are as they were") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def remove_abandoned_staging(model_dir: Path) -> None:
    """Delete the staging folders of exports that were killed (their process is gone); servers never read them."""
    for folder in model_dir.glob(f"{STAGING_PREFIX}*"):
        pid = folder.name[len(STAGING_PREFIX):]
        if pid.isdigit() and not _process_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_and_publish(model, tokenizer, config: Config, run_dir, staging: Path, model_dir: Path) -> Path:
    """Write the version in `staging`, check it, and rename it into place."""
    if run_dir is None:
        persona, turns, index, character = "", config.data.context_turns, None, None
    else:  # What the run's model was trained to see: its character, its number of earlier turns.
        persona, turns = run_persona(run_dir, config.data), run_context_turns(run_dir, config.data.context_turns)
        index = run_index(run_dir, config.retrieval) if config.retrieval.enabled else None
        character = run_character(run_dir)
    lines = (character.name, character.greeting) if character else None
    write_saved_model(model, tokenizer, config, staging, persona=persona, context_turns=turns, index=index,
                      character_lines=lines)
    write_extras(staging, tokenizer, config, run_dir, with_retrieval=index is not None,
                 with_character=character is not None)
    xla_ops = sorted(op for op in graph_op_types(staging) if op.startswith("Xla"))
    if xla_ops:
        raise RuntimeError(f"the exported graph uses {xla_ops}, which TF Serving cannot run without XLA")
    return publish(staging, model_dir)


def write_saved_model(model, tokenizer, config: Config, path: Path, stop_at_end: bool = True,
                      persona: str = "", context_turns: int | None = None, index=None,
                      character_lines: tuple[str, str] | None = None) -> None:
    """The SavedModel alone (`stop_at_end=False` only for latency benchmarks: fixed-length replies).

    `persona`: the character's persona text, packed before every request's turns;
    `context_turns`: earlier turns the `chat` signature keeps (default `data.context_turns`);
    `index`: the run's `RetrievalIndex` (None: replies are generated only);
    `character_lines`: the character's (name, greeting), served by the `character` signature.
    """
    turns = config.data.context_turns if context_turns is None else context_turns
    functions = ServingFunctions(model, tokenizer, turns, config.export, stop_at_end, persona=persona,
                                 max_persona_length=config.data.max_persona_length, index=index,
                                 retrieval=config.retrieval, character_lines=character_lines,
                                 selector=config.selector)
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.track(tokenizer)
    archive.track(functions.decoder)
    archive.add_endpoint(SERVING_DEFAULT, functions.reply, input_signature=[TEXT_SPEC])
    archive.add_endpoint(CHAT_SIGNATURE, functions.chat, input_signature=list(CHAT_SPECS))
    archive.add_endpoint(SETTINGS_SIGNATURE, functions.decoding_settings, input_signature=[TEXT_SPEC])
    if index is not None:
        archive.track(index)
        archive.add_endpoint(RETRIEVE_SIGNATURE, functions.retrieve, input_signature=[TEXT_SPEC])
    if character_lines is not None:
        archive.add_endpoint(CHARACTER_SIGNATURE, functions.character, input_signature=[TEXT_SPEC])
    archive.write_out(str(path), verbose=False)


def write_extras(path: Path, tokenizer, config: Config, run_dir: Path | None, with_retrieval: bool = False,
                 with_character: bool = False) -> None:
    """Vocabulary, configuration, provenance and warm-up requests, beside the graph."""
    version = ExportVersion(path)
    version.extra.mkdir(parents=True, exist_ok=True)
    version.vocabulary.write_text("\n".join(tokenizer.get_vocabulary()) + "\n", encoding="utf-8")
    config.save(version.config)
    character = RunDirectory(run_dir).character if run_dir is not None else None
    if character is not None and character.exists():
        shutil.copyfile(character, version.character)
    signatures = [SERVING_DEFAULT, CHAT_SIGNATURE, SETTINGS_SIGNATURE]
    signatures += ([RETRIEVE_SIGNATURE] if with_retrieval else []) + ([CHARACTER_SIGNATURE] if with_character else [])
    provenance = {"run_dir": str(run_dir) if run_dir else None, "signatures": signatures}
    version.export_record.write_text(json.dumps(provenance, indent=2), encoding="utf-8")
    with tf.io.TFRecordWriter(str(version.warmup_requests)) as writer:
        for request in warmup_requests(config, with_retrieval):
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())


def warmup_requests(config: Config, with_retrieval: bool = False) -> list[predict_pb2.PredictRequest]:
    question = config.train.sample_questions[0] if config.train.sample_questions else "안녕"
    requests = []
    for name in [SERVING_DEFAULT] + ([RETRIEVE_SIGNATURE] if with_retrieval else []):
        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = config.export.name, name
        request.inputs["text"].CopyFrom(tf.make_tensor_proto([question]))
        requests.append(request)
    for strategy in ("greedy", "beam", "sample"):
        chat = predict_pb2.PredictRequest()
        chat.model_spec.name, chat.model_spec.signature_name = config.export.name, CHAT_SIGNATURE
        for key, value in chat_arrays([[question]], strategy=strategy).items():
            chat.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        requests.append(chat)
    return requests


def publish(staging: Path, model_dir: Path) -> Path:
    """Rename `staging` to the next free version number (atomic on one file system)."""
    while True:
        version = (versions(model_dir) or [0])[-1] + 1
        target = model_dir / str(version)
        try:
            os.rename(staging, target)  # Fails if another exporter took the number first.
            return target
        except OSError:
            if not target.exists():
                raise


def export_run(run_dir: str | Path, base_dir: str | Path | None = None, name: str | None = None) -> Path:
    """Export a finished run directory (see `model/run_files.py`)."""
    from model.run_files import load_run

    run = load_run(run_dir)
    config = run.config
    if name:
        config = dataclasses.replace(config, export=dataclasses.replace(config.export, name=name))
    return export_model(run.model, run.tokenizer, config, run_dir=run.run_dir, base_dir=base_dir)


def export_finished_run(run_dir: str | Path, base_dir: str | Path | None = None) -> Path:
    """Export a run once: the run's `export.json` records the version, and a re-run reuses it.

    A crash between the rename and the record leaves one extra version, never a
    half-written or overwritten one.
    """
    record = RunDirectory(run_dir).export_record
    if record.exists():
        exported = Path(json.loads(record.read_text(encoding="utf-8"))["path"])
        if exported.is_dir():
            return exported
    path = export_run(run_dir, base_dir=base_dir)
    tmp = record.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"path": str(path), "version": int(path.name)}, indent=2), encoding="utf-8")
    tmp.replace(record)
    return path
