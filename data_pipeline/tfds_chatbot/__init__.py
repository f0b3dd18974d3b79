"""TFDS builder for ChatbotData (`chatbot_data`); importing this registers it."""

from data_pipeline.tfds_chatbot.chatbot_data import ChatbotData

__all__ = ["ChatbotData"]
