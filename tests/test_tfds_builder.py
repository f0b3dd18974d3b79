"""data_pipeline/tfds_chatbot: the TFDS builder reads a local copy offline, and says how when it has none."""

import pytest
import tensorflow_datasets as tfds

from config import DataConfig
from data_pipeline.loading import load_dialogues
from data_pipeline.tfds_chatbot.chatbot_data import ChatbotData, ChatbotDataUnavailable


def test_builder_uses_manual_dir(tmp_path, chatbot_csv):
    dialogues, report = load_dialogues(
        DataConfig(tfds_data_dir=str(tmp_path / "tfds"), tfds_manual_dir=str(chatbot_csv.parent))
    )
    assert len(dialogues) == report.kept == 11023 - 73
    assert ("3박4일 놀러가고 싶다", "여행은 언제나 좋죠.") in {d.turns for d in dialogues}
    info = tfds.builder("chatbot_data", data_dir=str(tmp_path / "tfds")).info
    assert info.splits["train"].num_examples == len(dialogues)


def test_offline_without_copy_says_how(tmp_path, monkeypatch):
    monkeypatch.setattr(ChatbotData, "download_url", "http://127.0.0.1:9/ChatbotData.csv")
    with pytest.raises(ChatbotDataUnavailable, match="--tfds-manual-dir"):
        load_dialogues(DataConfig(tfds_data_dir=str(tmp_path / "tfds"), tfds_manual_dir=None))
