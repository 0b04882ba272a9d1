"""Explanation generation (P5 / LLMRec Tables 1 and 7; RecSysLLM Table 5): the sentence in which a
user explains their opinion of an item.

Ground truth: one Sentires-*like* (feature, sentence) pick per review of the shared 8:1:1 split
(:mod:`llmrecbench.data.explanations`: pysbd sentences, training-frequency feature words, VADER
sentiment); reviews without one are left out and counted in the data's stats.json. It
approximates P5's Sentires extraction; it is not Sentires. Models of the ``explanation`` family
(PETER / PETER+, the item-retrieval floor); LLM rows with and without the feature hint.
"""

from __future__ import annotations

from llmrecbench.tasks.text_generation import TextGenerationTask


class ExplanationGeneration(TextGenerationTask):
    name = "explanation"
    description = "explanation generation: BLEU / ROUGE of a generated explanation sentence (Sentires-like ground truth)"
    families = ("explanation",)
    headline = "BLEU-4 (p5)"
    llm_answers = ("explanation",)
    reference_column = "explanation"
    feature_column = "feature"

    def pairs_from_reviews(self, parts, ground_truth):
        from llmrecbench.data.explanations import ExtractionConfig, extract_explanations

        return extract_explanations(parts, ExtractionConfig(**ground_truth))
