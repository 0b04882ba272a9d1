"""README tables rendered from the workflow's own outputs, never typed by hand.

A README block sits between ``<!-- generated:NAME -->`` and ``<!-- /generated:NAME -->``.
:func:`update_readme` replaces each block's body with :func:`render_block` of the spec of the same
name in ``resources/readme_tables.yaml``:

* ``table``: the merged table it reads (``results/tables/{task}.csv``), ``filter`` (column:
  value pairs), ``rows`` (model names, in order: one README row each; an LLM row is
  ``{model: smollm2, setting: <the table's setting label>}``, shown as ``model (setting)``) and ``columns`` (the
  table's value columns; a row with ``n_seeds`` > 1 shows ``mean ± std``);
* ``pivot`` (instead of ``columns``): one README column per value of the ``over`` table column
  (e.g. dataset and item representation), each cell joining ``values`` with " / ";
* ``bold_max``: the column whose best value is set in bold;
* ``train_seconds``: a column with each row's training wall time, from the rules' ``benchmark:``
  files (mean over the table's seeds);
* ``published``: figures from the papers shown beside ours, with the column title naming the
  source. They are the only typed numbers, and they are the papers'.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import yaml

from llmrecbench import paths
from llmrecbench.errors import InputError
from llmrecbench.io import atomic_path

BLOCK = re.compile(r"(<!-- generated:(?P<name>[a-z0-9_]+) -->\n)(?P<body>.*?)(<!-- /generated:(?P=name) -->)", re.S)


def _read_table(path: Path) -> list[dict]:
    if not path.exists():
        raise InputError(path, "no such table; build it first (snakemake ... results/tables/<task>.csv)")
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _value(row: dict, column: str, digits: int) -> str:
    raw = row.get(column, "")
    if raw in ("", None):
        return "N/A"
    value = float(raw)
    text = f"{value:.{digits}f}"
    std = row.get(f"{column}_std", "")
    if std not in ("", None) and int(row.get("n_seeds") or 1) > 1:
        text += f" ± {float(std):.{digits}f}"
    return text


def _train_seconds(root: Path, row: dict, seeds: list[int]) -> str:
    times = []
    for seed in seeds:
        bench = root / paths.fill(paths.CELL_BENCHMARK, dataset=row["dataset"], task=row["task"], model=row["model"], seed=seed, step="train")
        if bench.exists():
            lines = bench.read_text().splitlines()
            times.append(float(lines[-1].split("\t")[0]))
    return f"{sum(times) / len(times):.0f}" if times else "–"


def _row_name(entry: str | dict) -> str:
    """A README row's name: the model, or ``model (setting)`` for an entry that names a setting."""
    return entry if isinstance(entry, str) else f"{entry['model']} ({entry['setting']})"


def _row_matches(row: dict, entry: str | dict) -> bool:
    """A table row of the entry: its model (and, for an LLM row, its ``setting`` label)."""
    if isinstance(entry, str):
        return row["model"] == entry
    return row["model"] == entry["model"] and row.get("setting") == entry["setting"]


def render_block(spec: dict, root: Path) -> str:
    """The markdown table of one spec (see the module docstring), from the files under ``root``."""
    rows = [r for r in _read_table(root / spec["table"]) if all(r.get(k) == str(v) for k, v in spec.get("filter", {}).items())]
    task = Path(spec["table"]).stem
    for r in rows:
        r["task"] = task
    digits = int(spec.get("digits", 4))
    names = [_row_name(entry) for entry in spec["rows"]]
    by_model: dict[str, list[dict]] = {}
    for entry, name in zip(spec["rows"], names):
        hit = [r for r in rows if _row_matches(r, entry)]
        if hit:
            by_model[name] = hit
    missing = [m for m in names if m not in by_model]
    if missing:
        raise InputError(root / spec["table"], f"rows {missing} of README block {spec.get('name', '?')!r} are not in the table")
    if "pivot" in spec:
        over = spec["pivot"]["over"]
        keys = [tuple(k) for k in spec["pivot"]["columns"]]
        header = [f"model ({' / '.join(spec['pivot']['values'])})", *[" ".join(str(x) for x in k) for k in keys]]
        lines = []
        for model in names:
            cells = [model]
            for key in keys:
                hit = [r for r in by_model[model] if tuple(r[c] for c in over) == key]
                cells.append(" / ".join(_value(hit[0], v, digits) for v in spec["pivot"]["values"]) if hit else "")
            lines.append(cells)
    else:
        columns = list(spec["columns"])
        header = ["model", *columns]
        best = None
        if spec.get("bold_max"):
            values = [float(by_model[m][0][spec["bold_max"]]) for m in names if by_model[m][0].get(spec["bold_max"])]
            best = max(values) if values else None
        lines = []
        for model in names:
            row = by_model[model][0]
            cells = [model]
            for c in columns:
                text = _value(row, c, int(spec.get("digits_of", {}).get(c, digits)))
                if c == spec.get("bold_max") and best is not None and row.get(c) and float(row[c]) == best:
                    text = f"**{text}**"
                cells.append(text)
            lines.append(cells)
        if spec.get("train_seconds"):
            header.append("train (s)")
            seeds = [int(s) for s in spec.get("seeds", [42])]
            for cells, model in zip(lines, names):
                cells.append(_train_seconds(root, by_model[model][0], seeds))
    if spec.get("published"):
        header.append(spec["published"]["column"])
        for cells, model in zip(lines, names):
            cells.append(str(spec["published"]["values"].get(model, "–")))
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out) + "\n"


def update_readme(readme: str | Path, spec_file: str | Path, root: str | Path = ".", only: list[str] | None = None) -> list[str]:
    """Re-render every generated block of ``readme`` in place (atomically), or only the blocks named
    in ``only`` (each run's results re-render the blocks that run produced); return their names.
    A block without a spec, a name in ``only`` that is no block, or a spec whose table is missing
    fails in one line and writes nothing."""
    readme, root = Path(readme), Path(root)
    specs = yaml.safe_load(Path(spec_file).read_text()) or {}
    text = readme.read_text()
    absent = sorted(set(only or ()) - {m.group("name") for m in BLOCK.finditer(text)})
    if absent:
        raise InputError(readme, f"no generated block named {', '.join(absent)}")
    done: list[str] = []

    def replace(m: re.Match) -> str:
        name = m.group("name")
        if name not in specs:
            raise InputError(readme, f"generated block {name!r} has no spec in {spec_file}")
        if only is not None and name not in only:
            return m.group(0)
        done.append(name)
        return m.group(1) + render_block({**specs[name], "name": name}, root) + m.group(4)

    new = BLOCK.sub(replace, text)
    with atomic_path(readme) as tmp:
        Path(tmp).write_text(new)
        Path(tmp).chmod(readme.stat().st_mode & 0o777)
    return done
