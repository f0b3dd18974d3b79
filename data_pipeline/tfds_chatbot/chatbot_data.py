"""`chatbot_data`: a tensorflow-datasets builder for Chatbot_data_for_Korean (songys/Chatbot_data).

On a connected machine it downloads the public CSV. Offline, it reads a local
copy named `ChatbotData.csv` from the TFDS manual directory
(`DownloadConfig(manual_dir=...)`, or `train.py --tfds-manual-dir DIR`). Rows go
through the project's own CSV reader, so the same validation rules (and
warnings naming file and line) apply to both paths.

    import tensorflow_datasets as tfds
    import data_pipeline.tfds_chatbot  # registers the builder
    ds = tfds.load("chatbot_data", split="train",
                   download_and_prepare_kwargs={"download_config":
                       tfds.download.DownloadConfig(manual_dir="../shared/data")})
"""

from __future__ import annotations

import socket
import urllib.parse
from pathlib import Path

import tensorflow_datasets as tfds

from data_pipeline.sources import read_qa_csv
from errors import UserError

URL = "https://raw.githubusercontent.com/songys/Chatbot_data/master/ChatbotData.csv"
FILE_NAME = "ChatbotData.csv"


class ChatbotDataUnavailable(UserError, RuntimeError):
    """Neither a local copy nor the download could provide the CSV."""


def _check_reachable(url: str, timeout: float = 5.0) -> None:
    """Raise OSError at once when the download host cannot be reached."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    socket.create_connection((parts.hostname, port), timeout=timeout).close()


class ChatbotData(tfds.core.GeneratorBasedBuilder):
    """Korean single-turn everyday-conversation question/answer pairs (MIT license)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Validated, NFC-normalised, exact duplicates removed."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Offline, place {FILE_NAME} (from {URL}) in the manual directory, "
        "e.g. `python train.py --tfds-manual-dir DIR` or `--data DIR/ChatbotData.csv`."
    )
    download_url = URL  # Class attribute so tests can point it at an unreachable address.

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            features=tfds.features.FeaturesDict(
                {"question": tfds.features.Text(), "answer": tfds.features.Text()}
            ),
            supervised_keys=("question", "answer"),
            homepage="https://github.com/songys/Chatbot_data",
            license="MIT",
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        return {"train": self._generate_examples(self._locate_csv(dl_manager))}

    def _locate_csv(self, dl_manager) -> Path:
        manual_dir = self._manual_dir_or_none(dl_manager)
        if manual_dir is not None and (manual_dir / FILE_NAME).exists():
            return manual_dir / FILE_NAME
        try:
            _check_reachable(self.download_url)  # TFDS itself retries for minutes before failing.
            return Path(dl_manager.download(self.download_url))
        except Exception as error:  # No network: say how to work offline.
            raise ChatbotDataUnavailable(
                f"could not download {self.download_url} ({type(error).__name__}: {error}). "
                f"{self.MANUAL_DOWNLOAD_INSTRUCTIONS}"
            ) from error

    @staticmethod
    def _manual_dir_or_none(dl_manager) -> Path | None:
        try:
            return Path(dl_manager.manual_dir)
        except AssertionError:  # TFDS asserts when no manual dir was configured.
            return None

    def _generate_examples(self, path: Path):
        dialogues, _ = read_qa_csv(path)
        for index, dialogue in enumerate(dialogues):
            question, answer = dialogue.turns
            yield index, {"question": question, "answer": answer}
