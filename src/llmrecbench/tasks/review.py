"""Review summarization (P5 / LLMRec Tables 2 and 7; RecSysLLM Table 6): the review's summary
(headline) from its text.

Pairs: every review of the shared 8:1:1 split with a non-blank text and summary (the others are
left out and counted in the data's stats.json); the input is the review text with the user (and
item, as P5's templates show them), the reference the ``summary`` field. Models of the
``summarization`` family (the lead baseline); LLM rows (LLMRec's prompt, fine-tuned or not).
"""

from __future__ import annotations

from llmrecbench.tasks.text_generation import TextGenerationTask


class ReviewSummarization(TextGenerationTask):
    name = "review"
    description = "review summarization: BLEU / ROUGE of a generated summary of the review text"
    families = ("summarization",)
    headline = "ROUGE-L (p5)"
    llm_answers = ("summary",)
    reference_column = "summary"
    source_column = "review"

    def pairs_from_reviews(self, parts, ground_truth):
        from llmrecbench.data.text_pairs import review_summary_pairs

        return review_summary_pairs(parts)
