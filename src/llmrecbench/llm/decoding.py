"""How test prompts become ranked lists: the ``llm.decoding`` options of config.yaml."""

from __future__ import annotations

from dataclasses import dataclass


from llmrecbench.errors import ConfigError


REPR_LABEL = {"text": "text", "unique_id": "unique_id", "number_text": "number_text", "semantic_id": "semantic_id"}


@dataclass
class DecodeConfig:
    """How test prompts are turned into ranked lists (``llm.decoding`` in config.yaml)."""

    beam_width: int = 20
    list_length: int = 20  # ranked list length from beam search (fine-tuned settings)
    max_new_tokens: int = 40  # title beam search; ID / semantic-ID use the token length of items
    batch_size: int = 4  # prompts decoded together (x beam_width rows)
    constrained: bool = True  # trie-constrained beam search for ID / semantic-ID tokens
    length_penalty: float = 1.0
    # zero-shot (LLMRec): the answer is a python list of `zero_shot_items` titles
    zero_shot_items: int = 10
    zero_shot_max_new_tokens: int = 256
    max_reasks: int = 2
    reask_temperature: float = 0.7
    min_similarity: float = 0.6  # grounding: nearest title accepted at this cosine
    answer_max_new_tokens: int = 8  # rating answers: greedy tokens read by the answer reader
    number_max_new_tokens: int = 8  # number-text items (P5's written IDs): beam tokens read by read_item_number
    text_max_new_tokens: int = 48  # explanation / review: greedy tokens of a generated sentence
    pair_batch_size: int = 32  # yes/no scoring: (user, candidate) prompts per forward pass
    na_status_threshold: float = 0.5  # N/A rate at or above which the cell's status is "n/a"
    latency_users: int = 4  # seqrec: prompts also decoded one at a time (batch-1 latency)

    @classmethod
    def from_spec(cls, spec: dict | None) -> "DecodeConfig":
        spec = dict(spec or {})
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ConfigError(f"llm decoding: unknown keys {unknown}; known: {sorted(known)}")
        return cls(**spec)
