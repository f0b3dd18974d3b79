"""Metrics of generated replies against references: BLEU, chrF, distinct-n, length, [END], exact match.

BLEU and chrF are sacrebleu's corpus scores with its defaults (BLEU's `13a`
tokenizer splits Korean at spaces and punctuation, so it scores eojeol; chrF works on
characters and suits Korean better). distinct-n is the number of different n-grams
over all replies divided by the number of n-grams (Li et al., 2016), on the same
space-separated words; a model that gives every question one generic reply scores low.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import sacrebleu


@dataclass
class ReplyScores:
    bleu: float
    chrf: float
    distinct_1: float
    distinct_2: float
    mean_reply_tokens: float  # WordPiece tokens before [END].
    ended_share: float  # Replies that produced [END] before the length cap.
    exact_match_share: float
    replies: int

    def to_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def distinct_n(replies: list[str], n: int) -> float:
    """Different n-grams / all n-grams over the replies' words (0 when there are none)."""
    grams = [tuple(words[i : i + n]) for words in (r.split() for r in replies) for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    return sacrebleu.corpus_bleu(hypotheses, [references]).score


def corpus_chrf(hypotheses: list[str], references: list[str]) -> float:
    return sacrebleu.corpus_chrf(hypotheses, [references]).score


def score_replies(hypotheses: list[str], references: list[str], reply_tokens: list[int],
                  ended: list[bool]) -> ReplyScores:
    """All reply metrics for one decoding strategy."""
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"need as many replies as references (got {len(hypotheses)} and {len(references)})")
    return ReplyScores(
        bleu=corpus_bleu(hypotheses, references),
        chrf=corpus_chrf(hypotheses, references),
        distinct_1=distinct_n(hypotheses, 1),
        distinct_2=distinct_n(hypotheses, 2),
        mean_reply_tokens=float(np.mean(reply_tokens)),
        ended_share=float(np.mean(ended)),
        exact_match_share=float(np.mean([h.strip() == r.strip() for h, r in zip(hypotheses, references)])),
        replies=len(hypotheses),
    )
