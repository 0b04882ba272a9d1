"""Ground-truth (input, reference) pairs of the text-generation tasks (explanation, review).

Each task's data rule writes ``results/{dataset}/{task}/data/{train,valid,test}.parquet`` from the
shared 8:1:1 split (never a second split): the explanation task its Sentires-like extraction
(:mod:`llmrecbench.data.explanations`; columns user_id, item_id, rating, feature, explanation,
review_row), the review task every review that has both a text and a summary (user_id, item_id,
rating, review, summary, review_row). :func:`read_pairs` reads one part back and refuses, in one
line naming the file, a missing column, a missing or blank reference, or no pairs at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from llmrecbench.errors import InputError

REVIEW_COLUMNS = ("user_id", "item_id", "rating", "review", "summary", "review_row")


def _blank(col: str) -> pl.Expr:
    return pl.col(col).is_null() | (pl.col(col).str.strip_chars() == "")


def check_review_text(parts: dict[str, pl.DataFrame], where: dict[str, str]) -> None:
    """A dataset asked for a text task must have review text: a part without a ``review`` column, or
    whose reviews are all blank, fails in one line naming its file."""
    for name, frame in parts.items():
        if "review" not in frame.columns:
            raise InputError(where[name], "has no review text (column 'review'); the explanation and review tasks need a dataset with reviews")
        if frame.height and frame.select(_blank("review").all()).item():
            raise InputError(where[name], "every review text is blank; the explanation and review tasks need review text")


def review_summary_pairs(parts: dict[str, pl.DataFrame]) -> tuple[dict[str, pl.DataFrame], dict]:
    """Review-summarization pairs of each split part: reviews with a non-blank text *and* summary
    (``review_row`` = the review's row in its part); the others are left out and counted."""
    out: dict[str, pl.DataFrame] = {}
    counts: dict[str, dict[str, int]] = {}
    for name, frame in parts.items():
        if "summary" not in frame.columns:
            raise ValueError(f"split part {name} has no summary column")
        indexed = frame.with_row_index("review_row").with_columns(pl.col("review_row").cast(pl.Int32))
        kept = indexed.filter(~_blank("review") & ~_blank("summary"))
        out[name] = kept.select(
            pl.col("user_id").cast(pl.Int32), pl.col("item_id").cast(pl.Int32), pl.col("rating").cast(pl.Float32),
            pl.col("review").str.strip_chars(), pl.col("summary").str.strip_chars(), "review_row",
        )
        counts[name] = {"reviews": frame.height, "pairs": kept.height, "left_out": frame.height - kept.height}
    return out, {"method": "reviews with a non-blank text and summary", "parts": counts}


def reference_overlap(parts: dict[str, pl.DataFrame], reference: str) -> dict[str, dict[str, int]]:
    """For the valid and test parts: how many references occur verbatim (whitespace-stripped) among
    the training references, and how many of those were written by the same user. A high count
    means a model can copy training text (All_Beauty with its variant copies kept: 68 of 68 test
    reviews); a few short generic texts ("Great product") by other users are expected."""
    train = parts["train"].select(pl.col("user_id"), pl.col(reference).str.strip_chars().alias("ref"))
    seen = set(train["ref"].to_list())
    seen_by_user = set(zip(train["user_id"].to_list(), train["ref"].to_list()))
    out = {}
    for name in ("valid", "test"):
        if name not in parts:
            continue
        refs = parts[name][reference].str.strip_chars().to_list()
        users = parts[name]["user_id"].to_list()
        out[name] = {
            "references": len(refs),
            "in_train": sum(r in seen for r in refs),
            "in_train_same_user": sum((u, r) in seen_by_user for u, r in zip(users, refs)),
        }
    return out


@dataclass(frozen=True)
class TextPairs:
    """One part of a text task: ids, the input text (``None`` where the task reads none), the
    reference text and the feature word (explanation; ``None`` otherwise), in file order."""

    users: list[int]
    items: list[int]
    ratings: list[float]
    sources: list[str] | None
    references: list[str]
    features: list[str] | None
    path: str

    @property
    def n(self) -> int:
        return len(self.references)


def read_pairs(path: str | Path, reference: str, source: str | None = None, feature: str | None = None) -> TextPairs:
    """The pairs of one task-data part; bad input is one line naming ``path``."""
    try:
        frame = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a bad file
        raise InputError(path, f"cannot read parquet ({type(exc).__name__}: {exc})") from exc
    needed = ["user_id", "item_id", "rating", reference, *(c for c in (source, feature) if c)]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(path, f"lacks columns {missing}")
    if frame.height == 0:
        raise InputError(path, "holds no pairs")
    blank = frame.with_row_index("row").filter(_blank(reference))
    if blank.height:
        raise InputError(path, f"row {blank['row'][0]}: empty reference ({reference!r}); {blank.height} such rows")
    return TextPairs(
        users=frame["user_id"].to_list(), items=frame["item_id"].to_list(), ratings=frame["rating"].to_list(),
        sources=frame[source].to_list() if source else None, references=frame[reference].to_list(),
        features=frame[feature].to_list() if feature else None, path=str(path),
    )
