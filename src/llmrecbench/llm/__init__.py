"""LLMs as sequential recommenders: model registry, prompts, refinement, fine-tuning, decoding."""

from llmrecbench.llm.prompts import TEMPLATES, ItemCatalog, build_prompts, seen_templates, unseen_templates
from llmrecbench.llm.loading import LLMSpec, llm_spec, load_model, prepare_model

__all__ = [
    "TEMPLATES",
    "ItemCatalog",
    "LLMSpec",
    "build_prompts",
    "llm_spec",
    "load_model",
    "prepare_model",
    "seen_templates",
    "unseen_templates",
]
