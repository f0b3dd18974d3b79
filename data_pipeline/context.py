"""What the encoder sees: persona sentences, earlier turns with speaker marks, the question.

One example's encoder input, as token ids (L = `data.sequence_length`, P = `data.max_persona_length`):

    persona tokens [PERSONA]  [USER] turn [SEP] [BOT] turn [SEP] ... question
    '--- first P, if any ---' '------------- last L - (persona part) --------'

- The persona part (the dialogue's persona sentences, or the character's) keeps its
  first P - 1 tokens and ends with [PERSONA]; a dialogue without a persona has none.
- Earlier turns carry a speaker mark; the last turn is the user's question and carries
  none, so a single question (ChatbotData, `context_turns` 0) is the question alone.
- Over the length cap, the oldest tokens go first: the turns part keeps its last tokens.

The text side (`format_turns`) is plain Python, used to build examples and by the chat
session; the token side (`encoder_token_ids`) and `history_to_context` run in the graph,
in the tf.data pipeline and in the exported signatures alike, so training and serving
pack inputs the same way.
"""

from __future__ import annotations

from typing import Sequence

import tensorflow as tf

from config import PERSONA_ID

SEP_TEXT = " [SEP] "
USER, BOT = "user", "bot"
SPEAKER_MARKS = {USER: "[USER]", BOT: "[BOT]"}


def format_turns(turns: Sequence[str], speakers: Sequence[str]) -> str:
    """Earlier turns (marked) and the question (last, unmarked) joined with [SEP]."""
    if not turns:
        raise ValueError("format_turns: no turns")
    marked = [f"{SPEAKER_MARKS[s]} {t}" for s, t in zip(speakers[:-1], turns[:-1])]
    return SEP_TEXT.join(marked + [turns[-1]])


def format_persona(sentences: Sequence[str]) -> str:
    return " ".join(sentences)


def history_speakers(number_of_turns: int) -> list[str]:
    """Speakers of a chat history whose last turn is the user's and whose turns alternate."""
    return [USER if (number_of_turns - 1 - i) % 2 == 0 else BOT for i in range(number_of_turns)]


def format_history(history: Sequence[str], context_turns: int) -> str:
    """The last `context_turns` earlier turns and the question of a chat history, oldest first."""
    recent = list(history[-(context_turns + 1):])
    return format_turns(recent, history_speakers(len(recent)))


def history_to_context(turns: tf.RaggedTensor, context_turns: int) -> tf.Tensor:
    """In-graph `format_history`: ragged [B, None] non-empty turns, oldest first -> [B] contexts."""
    turns = turns[:, -(context_turns + 1):]
    from_end = tf.expand_dims(turns.row_lengths(), 1) - 1 - tf.ragged.range(turns.row_lengths())
    def mark(position):  # 0: the question (no mark); odd: the bot's turn; even: the user's.
        speaker = tf.where(position % 2 == 1, SPEAKER_MARKS[BOT] + " ", SPEAKER_MARKS[USER] + " ")
        return tf.where(position == 0, "", speaker)

    marked = tf.ragged.map_flat_values(lambda p, t: mark(p) + t, from_end, turns)
    return tf.strings.reduce_join(marked, axis=1, separator=SEP_TEXT)


def as_ragged_ids(ids) -> tf.RaggedTensor:
    if not isinstance(ids, tf.RaggedTensor):  # keras-hub returns Python lists when eager.
        ids = tf.ragged.constant(ids, dtype=tf.int32, ragged_rank=1, inner_shape=())
    return tf.cast(ids, tf.int32)


def encoder_token_ids(tokenizer, personas: tf.Tensor, contexts: tf.Tensor, sequence_length: int,
                      max_persona_length: int) -> tf.RaggedTensor:
    """[B] persona texts ("" for none) and [B] contexts -> ragged [B, <= sequence_length] encoder ids."""
    persona_ids = as_ragged_ids(tokenizer(personas))[:, : max(0, max_persona_length - 1)]
    has_persona = tf.cast(persona_ids.row_lengths() > 0, tf.int64)
    separator = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(has_persona)], PERSONA_ID), has_persona
    )
    persona_part = tf.concat([persona_ids, separator], axis=1)

    context_ids = as_ragged_ids(tokenizer(contexts))
    room = tf.maximum(sequence_length - persona_part.row_lengths(), 0)
    lengths = context_ids.row_lengths()
    kept = tf.ragged.range(lengths - tf.minimum(lengths, room), lengths)  # The last `room` tokens.
    return tf.concat([persona_part, tf.gather(context_ids, kept, batch_dims=1)], axis=1)
