"""One training run, start to finish, in a run directory.

Its files are listed in `run_directory.py`; `metrics.json` is written last: the run
is finished when it exists.

Re-running the same command on an interrupted run resumes from the last finished
epoch; on a finished run it prints the results and trains nothing.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import keras
import tensorflow as tf

from config import Config, load_config
from errors import DiskFull, UserError, damage_of, is_no_space
from run_directory import RunDirectory
from run_lock import holding
from data_pipeline.dataset import make_dataset, padding_stats
from data_pipeline.character import load_character
from data_pipeline.loading import prepare_data, run_context_turns
from model.checkpoints import AtomicModelCheckpoint, resume_point
from model.callbacks import ResumeMonitors, SampleReplies, Throughput, ema_swaps, read_history, truncate_history
from model.speed_probe import MachineSpeed
from model.distribution import distribute_dataset_options, make_strategy, worker_run_dir
from model.metrics import MaskedAccuracy, MaskedSparseCrossentropy, perplexity
from model.precision import float32_model, policy_name, resolve_precision
from model.retrieval import RetrievalIndex, save_atomically
from model.run_files import TrainedRun
from model.schedule import NoamSchedule
from model.transformer import build_model

# Keys that may differ between the saved and the re-run configuration of one run.
RESUMABLE_CHANGES = {("train", "epochs"), ("train", "sample_questions")}


class RunConfigMismatch(UserError, ValueError):
    """The run directory was made by a different configuration."""


def check_or_save_config(config: Config, run_dir: str | Path) -> None:
    path = RunDirectory(run_dir).config
    if not path.exists():
        config.save(path)
        return
    saved = load_config(path).to_dict()
    current = config.to_dict()
    differences = [
        f"{section}.{key}: saved {saved[section][key]!r}, now {current[section][key]!r}"
        for section in ("data", "model", "train")
        for key in current[section]
        if saved[section].get(key) != current[section][key] and (section, key) not in RESUMABLE_CHANGES
    ]
    if saved.get("preset") != current.get("preset"):
        differences.insert(0, f"preset: saved {saved.get('preset')!r}, now {current.get('preset')!r}")
    if differences:
        raise RunConfigMismatch(
            f"{run_dir} holds a run with a different configuration; use another --run-dir "
            "or the saved settings. Differences:\n  " + "\n  ".join(differences)
        )
    config.save(path)  # Record allowed changes (e.g. more epochs).


# Variable names (substrings) AdamW leaves alone: biases and LayerNormalization's gamma/beta.
NOT_DECAYED = ["bias", "gamma", "beta"]


def make_schedule(config: Config, steps_per_epoch: int | None = None) -> NoamSchedule:
    """Noam (held at its peak with `train.learning_rate_decay=none`), cooling down over the last
    `train.cooldown_fraction` of `epochs * steps_per_epoch` steps.

    Without `steps_per_epoch` (benchmarks, tests) the plan is unknown: plain Noam.
    """
    fraction = config.train.cooldown_fraction
    total = config.train.epochs * steps_per_epoch if steps_per_epoch and fraction else 0
    return NoamSchedule(config.model.hidden_dim, config.train.warmup_steps, config.train.learning_rate_scale,
                        total_steps=total, cooldown_steps=round(total * fraction),
                        hold_peak=config.train.learning_rate_decay == "none")


def make_optimizer(config: Config, steps_per_epoch: int | None = None) -> keras.optimizers.Optimizer:
    """Adam on the Noam schedule (AdamW with `train.weight_decay`), averaging weights with `train.ema_momentum`."""
    schedule = make_schedule(config, steps_per_epoch)
    ema, decay = config.train.ema_momentum, config.train.weight_decay
    adam = dict(learning_rate=schedule, beta_1=0.9, beta_2=0.98, epsilon=1e-9)
    if ema > 0:
        adam.update(use_ema=True, ema_momentum=ema)
    if decay == 0.0:
        return keras.optimizers.Adam(**adam)
    optimizer = keras.optimizers.AdamW(weight_decay=decay, **adam)
    optimizer.exclude_from_weight_decay(var_names=NOT_DECAYED)
    return optimizer


def compile_model(model, config: Config, steps_per_epoch: int | None = None) -> None:
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=MaskedSparseCrossentropy(label_smoothing=config.train.label_smoothing),
        metrics=[MaskedAccuracy(), perplexity()],
        jit_compile=config.train.jit_compile,
    )


def prepare_new_or_resumed(config: Config, run_dir: Path, created: bool):
    """Check or save the configuration, then read and split the data; a new (`created`) run dir that fails
    here is removed.

    So a missing or unusable data file leaves nothing behind, and the corrected command
    starts afresh instead of meeting a saved configuration it differs from.
    """
    try:
        check_or_save_config(config, run_dir)
        return prepare_data(config.data, run_dir)
    except UserError:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def train(config: Config, run_dir: str | Path, replies_for=None) -> dict:
    """Train (or resume, or report) the run in `run_dir`; return its metrics.

    `replies_for(run, training_model)` makes the callable that gives the sample replies
    (`train.sample_questions` each epoch, five validation contexts in `metrics.json`):
    `train.py` passes `serving.replies.TrainingReplies`, the served reply path, which
    this layer does not import. None: no sample replies.
    """
    run = RunDirectory(worker_run_dir(Path(run_dir)))  # Non-chief workers write a private copy.
    if run.metrics.exists():
        print(f"{run} is a finished run ({run.metrics.name} exists); nothing to train. Use a new --run-dir.")
        return json.loads(run.metrics.read_text(encoding="utf-8"))
    created = not run.root.exists()
    run.root.mkdir(parents=True, exist_ok=True)
    with holding(run.lock):  # One train.py per run directory.
        return _train(config, run, created, replies_for)


def _train(config: Config, run: RunDirectory, created: bool, replies_for) -> dict:
    strategy = make_strategy(config.train.strategy)
    data = prepare_new_or_resumed(config, run.root, created)
    keras.utils.set_random_seed(config.train.seed)
    train_ds, validation_ds = make_pipelines(config, data)
    train_ds = distribute_dataset_options(train_ds, strategy)
    validation_ds = distribute_dataset_options(validation_ds, strategy)
    train_padding = padding_stats(train_ds)  # Word dropout changes tokens, never lengths.
    print(
        f"{len(data.train)} training / {len(data.validation)} validation examples, "
        f"vocabulary {len(data.vocabulary)}; padding computed: "
        f"{train_padding.padding_fraction:.1%} of positions (mean per batch {train_padding.mean_batch_padding:.1%})"
    )
    precision = resolve_precision(config.train.mixed_precision)
    print(f"Computing in {precision} (train.mixed_precision: {config.train.mixed_precision}).")
    with strategy.scope():  # The model's own policy (mixed_float16 also gets loss scaling from compile).
        model = build_model(config.model, len(data.vocabulary), config.data.sequence_length,
                            dtype=policy_name(precision))
        compile_model(model, config, steps_per_epoch=train_padding.batches)
    index = build_run_index(config, data.train, run)  # Before training: the sample replies retrieve.
    replies = sample_replier(replies_for, model, config, data, run)

    with strategy.scope():  # Checks what a resume loads (the optimizer is built as BackupAndRestore builds it).
        epochs_done = resume_point(model, run)
    history = truncate_history(run.history, epochs_done)
    if epochs_done:
        print(f"Resuming {run} after epoch {epochs_done} (of at most {config.train.epochs}).")
    callbacks = make_callbacks(config, run, history, train_padding.real_tokens, replies)
    started = time.perf_counter()
    try:
        model.fit(train_ds, validation_data=validation_ds, epochs=config.train.epochs, callbacks=callbacks, verbose=2)
    except OSError as error:
        if not is_no_space(error):
            raise
        raise DiskFull(f"no space left to write {run}'s checkpoints ({damage_of(error)}); the finished epochs' "
                       "files are whole: free space and run the same command to resume") from error
    session_seconds = time.perf_counter() - started
    return finish_run(model, config, data, validation_ds, run, session_seconds, train_padding, precision, index,
                      replies)


def float32_copy(model, config: Config, vocabulary_size: int):
    """The float32 model that a run saves and serves: `model` itself, or a rebuilt copy of its weights."""
    return float32_model(model, lambda dtype: build_model(config.model, vocabulary_size, config.data.sequence_length,
                                                          dtype=dtype))


def sample_replier(replies_for, model, config: Config, data, run: RunDirectory):
    """`replies_for` (see `train`) over this run's float32 model, tokenizer, persona and index; or None."""
    if replies_for is None:
        return None
    served = TrainedRun(config, float32_copy(model, config, len(data.vocabulary)), data.tokenizer, run.root,
                        data.persona, run_context_turns(run.root, config.data.context_turns))
    return replies_for(served, model)


def make_pipelines(config: Config, data):
    """(training, validation) datasets; only training shuffles and hides words."""
    common = dict(sequence_length=config.data.sequence_length, max_persona_length=config.data.max_persona_length,
                  batch_size=config.train.batch_size)
    train_ds = make_dataset(
        data.train, data.tokenizer, shuffle=True, seed=config.train.seed,
        shuffle_buffer=config.train.shuffle_buffer, word_dropout_rate=config.train.word_dropout, **common,
    )
    return train_ds, make_dataset(data.validation, data.tokenizer, shuffle=False, **common)


def make_callbacks(config: Config, run: RunDirectory, history: list[dict], tokens_per_epoch: int, replies) -> list:
    run.checkpoints.mkdir(exist_ok=True)
    monitor = config.train.monitor
    checkpoint = AtomicModelCheckpoint(
        run.best_weights, monitor=monitor, mode="min", save_best_only=True,
        save_weights_only=True,
    )
    early_stopping = keras.callbacks.EarlyStopping(
        monitor=monitor, mode="min", patience=config.train.early_stopping_patience, verbose=1
    )
    # Order matters. ResumeMonitors follows the callbacks whose state it restores, and
    # BackupAndRestore comes last: an epoch counts as done for a resume only once its
    # history row and checkpoint are written (a kill before that re-runs the epoch).
    # With EMA, validation and everything between the two swaps see the averaged
    # weights (so the checkpoint holds them); the backup holds the training state.
    ema_in, ema_out = ema_swaps() if config.train.ema_momentum else ([], [])
    return [
        Throughput(tokens_per_epoch),
        MachineSpeed(),  # After Throughput: it divides the throughput by the machine's speed.
        *ema_in,
        *([SampleReplies(replies, config.train.sample_questions, run.logs / "samples")] if replies else []),
        keras.callbacks.TensorBoard(str(run.logs)),
        keras.callbacks.CSVLogger(str(run.history), append=True),
        checkpoint,
        early_stopping,
        ResumeMonitors(history, checkpoint, early_stopping, monitor),
        *ema_out,
        keras.callbacks.BackupAndRestore(str(run.backup), double_checkpoint=True),
    ]


def _nll_per_character(perplexity: float, validation_ds, examples) -> float:
    """Validation negative log-likelihood (nats, unsmoothed) per character of the answers.

    Token accuracy and perplexity depend on the vocabulary (a smaller one cuts answers
    into more, easier tokens); this does not, so runs with different vocabularies compare.
    [END] counts as one character.
    """
    tokens = sum(int(tf.math.count_nonzero(targets)) for _, targets in validation_ds)
    characters = sum(len(e.response) + 1 for e in examples)
    return math.log(perplexity) * tokens / characters


def build_run_index(config: Config, train_examples, run: RunDirectory) -> dict | None:
    """Index the training split (never the validation one) for retrieval; its size for metrics.json."""
    if not config.retrieval.enabled:
        return None
    character = load_character(config.data.character) if config.data.character else None
    index = RetrievalIndex.for_run(train_examples, config.retrieval, character.dialogue_files() if character else ())
    save_atomically(index, run.retrieval_index)
    return {"entries": index.size, "bytes": index.nbytes(), "postings": int(index.postings_rows.shape[0]),
            "shadowed_by_identity": index.shadowed, "other_personas_left_out": index.other_personas_left_out}


def finish_run(model, config: Config, data, validation_ds, run: RunDirectory, session_seconds, train_padding,
               precision: str, index: dict | None, replies) -> dict:
    """Load the best weights, evaluate them in float32, save that model and write metrics.json (last)."""
    model.load_weights(str(run.best_weights))
    trained = model  # Report and save the float32 model that exports will serve.
    model = float32_copy(trained, config, len(data.vocabulary))
    if model is not trained:
        compile_model(model, config)
        model.optimizer.build(model.trainable_variables)  # So that model.keras reloads without warnings.
    results = model.evaluate(validation_ds, return_dict=True, verbose=0)
    history = read_history(run.history)
    best_epoch = 1 + min(range(len(history)), key=lambda i: history[i][config.train.monitor])
    nll_per_character = _nll_per_character(results["perplexity"], validation_ds, data.validation)
    model.save(run.model)
    shown = data.validation[:5]  # Replied to by the best weights (`replies` reads the training model).
    samples = replies([e.context for e in shown], [e.persona for e in shown]) if replies else []
    seconds = sum(r.get("train_seconds", 0.0) for r in history)
    metrics = {
        "best_epoch": best_epoch,  # By `train.monitor`.
        "monitor": config.train.monitor,
        "epochs_trained": len(history),
        "validation_loss": results["loss"],
        "validation_perplexity": results["perplexity"],
        "validation_token_accuracy": results["token_accuracy"],
        "validation_nll_per_character": round(nll_per_character, 4),
        "wall_seconds_of_epochs": round(sum(r.get("epoch_seconds", 0.0) for r in history), 1),
        "wall_seconds_this_session": round(session_seconds, 1),
        "train_seconds_per_epoch": round(seconds / max(1, len(history)), 1),
        "train_tokens_per_second": round(train_padding.real_tokens * len(history) / max(seconds, 1e-9), 1),
        "train_padding": train_padding.to_dict(),
        "precision": precision,  # What training computed in; the saved model is float32.
        "examples": {"train": len(data.train), "validation": len(data.validation)},
        "retrieval_index": index,
        "sample_replies": [{"context": e.context, "reference": e.response, "reply": r} for e, r in zip(shown, samples)],
    }
    tmp = run.metrics.with_name(run.metrics.name + ".tmp")
    tmp.write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    tmp.replace(run.metrics)
    print(
        f"best epoch {best_epoch}: validation loss {metrics['validation_loss']:.4f}, "
        f"perplexity {metrics['validation_perplexity']:.2f}, "
        f"token accuracy {metrics['validation_token_accuracy']:.4f}"
    )
    return metrics
