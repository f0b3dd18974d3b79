"""The model package. Importing it registers every custom Keras object (model, loss,
metric, schedule), so `keras.saving.load_model("model.keras")` works after `import model`."""

from model import metrics, schedule, transformer  # noqa: F401
