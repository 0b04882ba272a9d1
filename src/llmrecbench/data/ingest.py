"""Raw source formats -> one canonical schema.

Canonical frames (all ids contiguous and 0-based):

- ``interactions``: user_id Int32, item_id Int32, position Int32 (0-based chronological rank
  within the user), plus when the source has them: timestamp Int64, rating Float32,
  review Utf8, summary Utf8.
- ``items``: item_id Int32, original_id Utf8, title Utf8 (null where unknown), plus brand,
  categories, description where the source has them.
- ``users``: user_id Int32, original_id Utf8.

Canonical ids follow the source deterministically: users in order of first appearance in the
file, items in order of first appearance along the file. Chronological order within a user is
the file's order for sequence formats, and (timestamp, file order) for review/atomic formats.

Formats and the file roles they read:

- ``user_sequence``: ``user_sequence`` (``reviewerID ASIN ASIN ...``), optional ``item_titles``
  (``asin<TAB>title`` with header).
- ``p5_sequential``: ``sequential_data`` (``user item item ...`` numeric), ``datamaps``
  (JSON with ``id2user`` and ``id2item``).
- ``amazon_reviews_json``: ``reviews`` (Amazon 2014/2018 review JSON lines, gzipped or not),
  optional ``meta`` (2014 metadata: one Python literal per line, parsed with ``ast.literal_eval``).
  Duplicate policy: a (user, item) pair reviewed more than once keeps only its earliest review
  (smallest ``unixReviewTime``, ties by file order); ``report`` holds ``reviews_read``,
  ``duplicate_rows_dropped`` (rows removed) and ``user_item_pairs_with_duplicates`` (distinct
  pairs that occurred more than once). All_Beauty 2018: 5,269 reviews, 1,040 pairs repeated,
  1,177 rows dropped -> 4,092 interactions.
  Variant copies: Amazon 2018 files repeat one review under every variant (size, colour) of a
  product, so the same reviewer, text, summary, rating and ``unixReviewTime`` appear under
  several asins. They are always counted (``report["variant_copies"]``: rows that repeat an
  earlier kept row's (user, timestamp, rating, review, summary) with non-null review text under
  another item) and, with ``drop_variant_copies=True``, removed (the earliest row in file order
  stays). All_Beauty 2018: 2,813 of the 4,092 interactions are such copies (1,279 remain, 991
  users, 63 items); its 5-core is built almost entirely of them (686 rows, 139 distinct
  reviews), so an 8:1:1 split puts a copy of every test review (68 of 68), and its rating, in
  train. With the copies dropped no 5-core is left; unfiltered, 3 of 128 test reviews occur in
  train, all written by another user.
- ``recbole_atomic``: ``inter`` (``user_id:token  item_id:token  rating:float  timestamp:float``),
  optional ``item`` (title from ``movie_title`` or ``title``), optional ``user``.

Ratings (``overall`` / ``rating``) must be numbers in [1, 5]: anything else is an InputError that
names the file, the line (JSON) or data row (atomic) and the value
(:func:`llmrecbench.data.ratings.check_ratings`). A review without ``overall`` keeps a null rating.
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import polars as pl

from llmrecbench.data.ratings import check_ratings
from llmrecbench.errors import ConfigError, InputError

FORMATS = ("user_sequence", "p5_sequential", "amazon_reviews_json", "recbole_atomic")


@dataclass
class CanonicalDataset:
    """The canonical frames of one dataset (see the module docstring) and an ingest report."""

    interactions: pl.DataFrame
    items: pl.DataFrame
    users: pl.DataFrame
    report: dict = field(default_factory=dict)


def ingest(fmt: str, files: dict[str, Path], drop_variant_copies: bool = False) -> CanonicalDataset:
    """Parse the raw ``files`` (by role) of a source in format ``fmt`` into canonical frames.

    ``drop_variant_copies`` (``amazon_reviews_json`` only) removes the variant copies described
    in the module docstring. Raises ConfigError for an unknown format, a missing file role or
    ``drop_variant_copies`` on another format, InputError (one line, naming the file) for
    anything wrong with a file's contents.
    """
    readers: dict[str, Callable[[dict[str, Path]], CanonicalDataset]] = {
        "user_sequence": _user_sequence,
        "p5_sequential": _p5_sequential,
        "amazon_reviews_json": _amazon_reviews,
        "recbole_atomic": _recbole_atomic,
    }
    if fmt not in readers:
        raise ConfigError(f"unknown dataset format {fmt!r}; known: {', '.join(FORMATS)}")
    paths = {role: Path(p) for role, p in files.items()}
    if fmt == "amazon_reviews_json":
        return _amazon_reviews(paths, drop_variant_copies)
    if drop_variant_copies:
        raise ConfigError(f"drop_variant_copies applies to the amazon_reviews_json format only, not {fmt!r}")
    return readers[fmt](paths)


# --- reading helpers --------------------------------------------------------------------


def _require(files: dict[str, Path], role: str, fmt: str) -> Path:
    if role not in files:
        raise ConfigError(f"format {fmt} needs a {role!r} file; the source lists {sorted(files)}")
    path = files[role]
    if not path.is_file():
        raise InputError(path, "file does not exist")
    if path.stat().st_size == 0:
        raise InputError(path, "empty file")
    return path


def _read_bytes(path: Path) -> bytes:
    """Whole file, transparently gunzipped (detected by magic bytes, not by name)."""
    raw = path.read_bytes()
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        data = gzip.decompress(raw)
    except EOFError as exc:
        raise InputError(path, f"truncated gzip file ({exc})") from exc
    except (gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise InputError(path, f"corrupt gzip file ({exc})") from exc
    if not data:
        raise InputError(path, "empty file (gzip holds no data)")
    return data


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, text) of every non-blank line."""
    try:
        text = _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc})") from exc
    for n, line in enumerate(io.StringIO(text), start=1):
        if line.strip():
            yield n, line.rstrip("\n")


# --- assembling the canonical frames ----------------------------------------------------


def _assemble(raw: pl.DataFrame, item_info: pl.DataFrame | None = None, report: dict | None = None) -> CanonicalDataset:
    """raw: user (str), item (str), row (file order), optional timestamp and payload columns.

    Ids by first appearance in file order; chronological order = (timestamp, row) when there
    is a timestamp, else row.
    """
    if raw.height == 0:
        raise ValueError("no interactions to assemble")  # callers check first and name the file
    raw = raw.sort("row")
    users = raw.group_by("user", maintain_order=True).agg().with_row_index("user_id")
    items = raw.group_by("item", maintain_order=True).agg().with_row_index("item_id")
    df = raw.join(users, on="user").join(items, on="item")
    order = ["user_id", "timestamp", "row"] if "timestamp" in df.columns else ["user_id", "row"]
    df = df.sort(order)
    df = df.with_columns(pl.int_range(pl.len()).over("user_id").alias("position"))
    payload = [c for c in ("timestamp", "rating", "review", "summary") if c in df.columns]
    interactions = df.select(
        pl.col("user_id").cast(pl.Int32),
        pl.col("item_id").cast(pl.Int32),
        pl.col("position").cast(pl.Int32),
        *[pl.col(c) for c in payload],
    )
    items_out = items.select(pl.col("item_id").cast(pl.Int32), pl.col("item").alias("original_id"))
    if item_info is not None:
        items_out = items_out.join(item_info.rename({"item": "original_id"}), on="original_id", how="left")
    if "title" not in items_out.columns:
        items_out = items_out.with_columns(pl.lit(None, dtype=pl.Utf8).alias("title"))
    items_out = items_out.sort("item_id")
    users_out = users.select(pl.col("user_id").cast(pl.Int32), pl.col("user").alias("original_id"))
    return CanonicalDataset(interactions, items_out, users_out, report or {})


def _token_lines(path: Path) -> pl.DataFrame:
    """Non-blank lines of a whitespace-separated sequence file as (line, tokens: list[str]).

    Every line must be ``user item [item ...]`` (at least two tokens); the first offending
    line is named otherwise.
    """
    try:
        text = _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc})") from exc
    df = (
        pl.DataFrame({"text": text.split("\n")})
        .with_row_index("line", offset=1)
        .with_columns(pl.col("text").str.extract_all(r"\S+").alias("tokens"))
        .filter(pl.col("tokens").list.len() > 0)
    )
    if df.height == 0:
        raise InputError(path, "no sequences (only blank lines)")
    short = df.filter(pl.col("tokens").list.len() < 2)
    if short.height:
        n, line = short.row(0)[:2]
        raise InputError(path, f"line {n}: expected 'user item [item ...]', got {line.strip()[:60]!r}")
    return df.select("line", "tokens")


def _sequences_frame(lines: pl.DataFrame) -> pl.DataFrame:
    """(line, tokens) -> one row per interaction: line, user, item, row (file order)."""
    return (
        lines.select(
            "line",
            pl.col("tokens").list.first().alias("user"),
            pl.col("tokens").list.slice(1).alias("item"),
        )
        .explode("item")
        .with_row_index("row")
    )


def _user_sequence(files: dict[str, Path]) -> CanonicalDataset:
    path = _require(files, "user_sequence", "user_sequence")
    raw = _sequences_frame(_token_lines(path))
    _no_repeated_users(raw, path)
    titles = None
    if "item_titles" in files:
        tpath = _require(files, "item_titles", "user_sequence")
        try:
            titles = pl.read_csv(tpath, separator="\t", quote_char=None, schema={"asin": pl.Utf8, "title": pl.Utf8}, has_header=True)
        except Exception as exc:  # polars raises ComputeError / SchemaError variants
            raise InputError(tpath, f"cannot parse as 'asin<TAB>title' ({type(exc).__name__}: {exc})") from exc
        titles = titles.rename({"asin": "item"}).with_columns(
            pl.when(pl.col("title").str.strip_chars() == "").then(None).otherwise(pl.col("title")).alias("title")
        ).unique("item", keep="first", maintain_order=True)
    return _assemble(raw.drop("line"), titles)


def _no_repeated_users(raw: pl.DataFrame, path: Path) -> None:
    """A sequence file holds each user on one line; a second line would split the sequence."""
    lines_per_user = raw.group_by("user").agg(pl.col("line").n_unique().alias("n"), pl.col("line").min().alias("first"))
    dup = lines_per_user.filter(pl.col("n") > 1).sort("first")
    if dup.height:
        raise InputError(path, f"user {dup['user'][0]!r} has more than one line ({dup.height} such users)")


def _p5_sequential(files: dict[str, Path]) -> CanonicalDataset:
    path = _require(files, "sequential_data", "p5_sequential")
    mpath = _require(files, "datamaps", "p5_sequential")
    try:
        maps = json.loads(_read_bytes(mpath))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(mpath, f"malformed JSON ({exc})") from exc
    if not isinstance(maps, dict) or not all(isinstance(maps.get(k), dict) for k in ("id2user", "id2item")):
        raise InputError(mpath, "datamaps must hold the objects 'id2user' and 'id2item'")
    seq = _sequences_frame(_token_lines(path)).rename({"user": "user_num", "item": "item_num"})
    id2user = pl.DataFrame({"user_num": list(maps["id2user"]), "user": [str(v) for v in maps["id2user"].values()]})
    id2item = pl.DataFrame({"item_num": list(maps["id2item"]), "item": [str(v) for v in maps["id2item"].values()]})
    raw = seq.join(id2user, on="user_num", how="left").join(id2item, on="item_num", how="left").sort("row")
    for num, name, what in (("user_num", "user", "user"), ("item_num", "item", "item")):
        missing = raw.filter(pl.col(name).is_null())
        if missing.height:
            n, bad = missing["line"][0], missing[num][0]
            raise InputError(path, f"line {n}: {what} id {bad} is not in {mpath.name} ({missing.height} unmapped)")
    _no_repeated_users(raw, path)
    return _assemble(raw.select("row", "user", "item"))


def _amazon_reviews(files: dict[str, Path], drop_variant_copies: bool = False) -> CanonicalDataset:
    path = _require(files, "reviews", "amazon_reviews_json")
    records = []
    overall: list[object] = []  # the present "overall" values, their lines and record rows
    rated_lines: list[int] = []
    rated_rows: list[int] = []
    for n, line in _lines(path):
        try:
            r = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"line {n}: malformed JSON ({exc.msg} at column {exc.colno})") from exc
        try:
            records.append(
                (
                    str(r["reviewerID"]),
                    str(r["asin"]),
                    int(r["unixReviewTime"]),
                    None,  # rating: filled in below, once all are checked
                    _text(r.get("reviewText")),
                    _text(r.get("summary")),
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(path, f"line {n}: review lacks or has a bad field ({exc!r})") from exc
        if r.get("overall") is not None:  # a missing rating stays null
            rated_lines.append(n)
            rated_rows.append(len(records) - 1)
            overall.append(r["overall"])
    # every present rating must be a number in [1, 5]; the first bad one is named by its line
    values = np.empty(len(overall), dtype=object)  # element-wise, so a list value cannot add a dimension
    values[:] = overall
    ratings = check_ratings(values, path, "line", rated_lines) if overall else np.empty(0, np.float32)
    for row, value in zip(rated_rows, ratings.tolist()):
        records[row] = records[row][:3] + (value,) + records[row][4:]
    raw = pl.DataFrame(
        records,
        schema={"user": pl.Utf8, "item": pl.Utf8, "timestamp": pl.Int64, "rating": pl.Float32, "review": pl.Utf8, "summary": pl.Utf8},
        orient="row",
    ).with_row_index("row")
    if raw.height == 0:
        raise InputError(path, "no reviews (only blank lines)")
    deduped, report = _keep_earliest_review(raw)
    copy = _variant_copy_mask(deduped)
    report["variant_copies"] = int(copy.sum())
    report["variant_copies_dropped"] = bool(drop_variant_copies)
    if drop_variant_copies:
        deduped = deduped.filter(~copy)
    meta = _read_meta(files["meta"]) if "meta" in files else None
    return _assemble(deduped, meta, report)


def _keep_earliest_review(raw: pl.DataFrame) -> tuple[pl.DataFrame, dict]:
    """Duplicate policy: keep the earliest review of each (user, item) pair (time, then file order).

    Returns the kept rows (file order) and {reviews_read, duplicate_rows_dropped,
    user_item_pairs_with_duplicates}; rows dropped = reviews_read - kept.
    """
    deduped = raw.sort(["timestamp", "row"]).unique(["user", "item"], keep="first", maintain_order=True).sort("row")
    repeated = raw.group_by(["user", "item"]).len().filter(pl.col("len") > 1).height
    report = {
        "reviews_read": raw.height,
        "duplicate_rows_dropped": raw.height - deduped.height,
        "user_item_pairs_with_duplicates": repeated,
    }
    return deduped, report


def _variant_copy_mask(reviews: pl.DataFrame) -> pl.Series:
    """True for each row repeating an earlier row's (user, timestamp, rating, review, summary)
    under another item, review text non-null; "earlier" is file order (column ``row``)."""
    key = ["user", "timestamp", "rating", "review", "summary"]
    first = pl.col("row") == pl.col("row").min().over(key)
    return reviews.select((pl.col("review").is_not_null() & ~first).alias("copy"))["copy"]


def _text(value: object) -> str | None:
    """Metadata field as text: strings as they are, lists joined with spaces, None stays None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def _read_meta(path: Path) -> pl.DataFrame:
    """2014 metadata: one Python dict literal per line (not JSON)."""
    _require({"meta": path}, "meta", "amazon_reviews_json")
    rows = []
    for n, line in _lines(path):
        try:
            m = ast.literal_eval(line)
        except (ValueError, SyntaxError, MemoryError, RecursionError) as exc:
            raise InputError(path, f"line {n}: not a Python literal ({type(exc).__name__})") from exc
        if not isinstance(m, dict) or "asin" not in m:
            raise InputError(path, f"line {n}: metadata record without 'asin'")
        cats = m.get("categories")
        if isinstance(cats, list):  # [['Beauty', 'Skin Care'], ...] -> "Beauty, Skin Care | ..."
            cats = " | ".join(", ".join(map(str, c)) if isinstance(c, (list, tuple)) else str(c) for c in cats)
        rows.append((str(m["asin"]), _text(m.get("title")), _text(m.get("brand")), _text(cats), _text(m.get("description"))))
    schema = {"item": pl.Utf8, "title": pl.Utf8, "brand": pl.Utf8, "categories": pl.Utf8, "description": pl.Utf8}
    return pl.DataFrame(rows, schema=schema, orient="row").unique("item", keep="first", maintain_order=True)


def _read_atomic(path: Path) -> pl.DataFrame:
    """A RecBole atomic file, all columns as text, ``name:type`` headers reduced to ``name``."""
    try:
        df = pl.read_csv(path, separator="\t", quote_char=None, infer_schema=False)
    except Exception as exc:  # polars raises ComputeError / NoDataError variants
        raise InputError(path, f"cannot parse as a RecBole atomic file ({type(exc).__name__}: {exc})") from exc
    names = [c.split(":")[0] for c in df.columns]
    if len(set(names)) != len(names):
        raise InputError(path, f"repeated column names in header {df.columns}")
    return df.rename(dict(zip(df.columns, names)))


def _recbole_atomic(files: dict[str, Path]) -> CanonicalDataset:
    path = _require(files, "inter", "recbole_atomic")
    inter = _read_atomic(path)
    for col in ("user_id", "item_id"):
        if col not in inter.columns:
            raise InputError(path, f"no {col} column (header: {', '.join(inter.columns)})")
    try:
        raw = inter.select(
            pl.col("user_id").alias("user"),
            pl.col("item_id").alias("item"),
            *([pl.col("timestamp").cast(pl.Float64).cast(pl.Int64)] if "timestamp" in inter.columns else []),
            # non-strict: a non-numeric rating becomes null here and is named below
            *([pl.col("rating").str.strip_chars().cast(pl.Float64, strict=False)] if "rating" in inter.columns else []),
        ).with_row_index("row")
    except pl.exceptions.PolarsError as exc:
        raise InputError(path, f"non-numeric rating or timestamp ({type(exc).__name__})") from exc
    if "rating" in inter.columns:
        unparsed = raw.filter(pl.col("rating").is_null() & inter["rating"].is_not_null())
        if unparsed.height:
            k = int(unparsed["row"][0])
            raise InputError(path, f"data row {k + 1}: rating {inter['rating'][k]!r} is not a number ({unparsed.height} such rows)")
    nulls = raw.filter(pl.any_horizontal(pl.all().is_null()))
    if nulls.height:
        raise InputError(path, f"data row {nulls['row'][0] + 1}: empty field ({nulls.height} such rows)")
    if raw.height == 0:
        raise InputError(path, "no interactions (header only)")
    if "rating" in raw.columns:
        ratings = check_ratings(raw["rating"].to_numpy(), path, "data row")
        raw = raw.with_columns(pl.Series("rating", ratings, dtype=pl.Float32))
    if "user" in files:  # user features are not used; the file is still checked to exist and parse
        _read_atomic(_require(files, "user", "recbole_atomic"))
    info = None
    if "item" in files:
        ipath = _require(files, "item", "recbole_atomic")
        item_df = _read_atomic(ipath)
        title_col = next((c for c in ("movie_title", "title") if c in item_df.columns), None)
        if "item_id" not in item_df.columns:
            raise InputError(ipath, "no item_id column")
        info = item_df.select(
            pl.col("item_id").alias("item"), (pl.col(title_col) if title_col else pl.lit(None, pl.Utf8)).alias("title")
        ).unique("item", keep="first", maintain_order=True)
    return _assemble(raw, info)
