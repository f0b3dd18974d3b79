"""model/callbacks.py: history truncation, restored monitor state after a resume, EMA weight swaps."""

import keras
import numpy as np

from model.callbacks import ResumeMonitors, ema_swaps, read_history, truncate_history


def write_history(path, rows):
    path.write_text("epoch,loss,val_loss\n" + "".join(f"{e},{l},{v}\n" for e, l, v in rows))


def test_truncate_drops_epochs_the_backup_does_not_cover(tmp_path):
    path = tmp_path / "history.csv"
    write_history(path, [(0, 5.0, 4.0), (1, 4.0, 3.0), (2, 3.5, 3.2)])
    rows = truncate_history(path, epochs_done=2)
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    assert [int(r["epoch"]) for r in read_history(path)] == [0, 1]


def test_resume_restores_best_and_patience():
    history = [{"epoch": 0, "val_loss": 3.0}, {"epoch": 1, "val_loss": 2.0}, {"epoch": 2, "val_loss": 2.5}]
    checkpoint = keras.callbacks.ModelCheckpoint("unused.weights.h5", save_best_only=True, save_weights_only=True)
    early = keras.callbacks.EarlyStopping(patience=3)
    early.on_train_begin()  # Resets its state, as fit() does before ResumeMonitors runs.
    ResumeMonitors(history, checkpoint, early).on_train_begin()
    assert checkpoint.best == 2.0 and early.best == 2.0
    assert early.wait == 1 and early.best_epoch == 1


class RecordWeights(keras.callbacks.Callback):
    """Keeps the model's weights (and the optimizer's moving averages) at each epoch end."""

    def __init__(self):
        super().__init__()
        self.weights, self.averages = [], []

    def on_epoch_end(self, epoch, logs=None):
        self.weights.append([w.copy() for w in self.model.get_weights()])
        self.averages.append([v.numpy().copy() for v in self.model.optimizer._model_variables_moving_average])


def fit_regression(callbacks):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = x @ np.arange(1, 5, dtype="float32")[:, None]
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(0.1, use_ema=True, ema_momentum=0.9), loss="mse")
    history = model.fit(x, y, validation_data=(x, y), epochs=3, batch_size=8, shuffle=False, verbose=0,
                        callbacks=callbacks)
    return model, history, (x, y)


def test_ema_swaps_validate_with_averaged_weights_and_back_up_training_weights():
    plain = RecordWeights()
    fit_regression([plain])  # No swaps: the model holds the training weights.
    between, after = RecordWeights(), RecordWeights()
    ema_in, ema_out = ema_swaps()
    model, history, (x, y) = fit_regression([*ema_in, between, *ema_out, after])
    for epoch in (0, 1):  # (The last epoch ends with Keras' own finalisation.)
        # Callbacks between the swaps (checkpoint, sample replies) see the moving average...
        for seen, average in zip(between.weights[epoch], plain.averages[epoch]):
            np.testing.assert_allclose(seen, average, rtol=1e-5, atol=1e-6)  # Keras swaps by adding.
        # ...and those after them (the backup) the training weights, unchanged by the swaps.
        for seen, trained in zip(after.weights[epoch], plain.weights[epoch]):
            np.testing.assert_allclose(seen, trained, rtol=1e-5, atol=1e-6)
        assert not np.allclose(between.weights[epoch][0], after.weights[epoch][0])
        # Validation used the moving average.
        model.set_weights(between.weights[epoch])
        np.testing.assert_allclose(model.evaluate(x, y, verbose=0), history.history["val_loss"][epoch], rtol=1e-5)
