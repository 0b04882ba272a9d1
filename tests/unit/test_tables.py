"""Table merge: mean and sample std over seeds, one row per key, N/A cells, no path parsing."""

import json
import math

import polars as pl
import pytest

from llmrecbench.errors import InputError
from llmrecbench.tables import merge_cells, read_cells, to_markdown

PROTOCOL = {"split": "loo", "ranking": "full", "mask_history": True, "indexing": "sequential_train_only", "loss": "ce"}


def _cell(model, seed, ndcg10, **kw):
    metrics = {m: 0.0 for m in ("HR@5", "NDCG@5", "HR@10", "HR@20", "NDCG@20", "MRR")}
    metrics["NDCG@10"] = ndcg10
    base = dict(dataset="beauty", task="seqrec", model=model, item_repr="unique_id", setting="CE", seed=seed, protocol=PROTOCOL, metrics=metrics)
    base.update(kw)
    return base


def test_mean_and_std_over_seeds():
    cells = [_cell("sasrec", 1, 0.03), _cell("sasrec", 2, 0.05), _cell("pop", 1, 0.01)]
    table = merge_cells(cells)
    assert table.height == 2
    row = table.filter(pl.col("model") == "sasrec").row(0, named=True)
    assert row["n_seeds"] == 2
    assert row["NDCG@10"] == pytest.approx(0.04)
    assert row["NDCG@10_std"] == pytest.approx(math.sqrt(((0.01) ** 2 + (0.01) ** 2) / 1))
    pop = table.filter(pl.col("model") == "pop").row(0, named=True)
    assert pop["n_seeds"] == 1 and pop["NDCG@10_std"] == 0.0
    assert "loss=ce" in row["protocol"] and "split=loo" in row["protocol"]
    expected = ["dataset", "model", "item_repr", "setting", "protocol", "n_seeds", "n_users", "HR@5", "NDCG@5", "HR@10", "NDCG@10", "HR@20", "NDCG@20", "MRR"]
    assert table.columns[: len(expected)] == expected
    assert "HR@5_std" in table.columns and "MRR_std" in table.columns


def test_na_cell_renders_na_with_reason():
    na = _cell("llm", 1, 0.0, status="n/a", note="output not parseable")
    na["metrics"] = {}
    table = merge_cells([na, _cell("pop", 1, 0.01)])
    md = to_markdown(table)
    llm_line = next(line for line in md.splitlines() if "| llm |" in line)
    assert "N/A" in llm_line and "output not parseable" in llm_line


def test_read_cells_names_bad_file(tmp_path):
    bad = tmp_path / "metrics.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="metrics.json"):
        read_cells([bad])
    incomplete = tmp_path / "m2.json"
    incomplete.write_text(json.dumps({"dataset": "beauty"}))
    with pytest.raises(InputError, match="lacks fields"):
        read_cells([incomplete])


def test_llm_cells_get_na_rate_and_latency_columns(tmp_path):
    """LLM rows carry their N/A rate; full-ranking rows have N/A rate 0 by construction."""
    timing = tmp_path / "timing.json"
    timing.write_text(json.dumps({"latency_ms_per_user": 12.5}))
    full = _cell("pop", 1, 0.01, timing=str(timing))
    llm = _cell("smollm2", 1, 0.02, item_repr="semantic_id", setting="LoRA + CBS", timing=str(timing),
                protocol={"split": "loo", "ranking": "generated_list", "decoding": "beam20+trie(CBS)"},
                extra_columns={"na_rate": 0.25})
    paths = []
    for i, cell in enumerate((full, llm)):
        paths.append(tmp_path / f"c{i}.json")
        paths[-1].write_text(json.dumps(cell))
    table = merge_cells(read_cells(paths))
    rows = {r["model"]: r for r in table.iter_rows(named=True)}
    assert rows["pop"]["na_rate"] == 0.0 and rows["smollm2"]["na_rate"] == 0.25
    assert rows["smollm2"]["latency_ms"] == 12.5 and rows["smollm2"]["setting"] == "LoRA + CBS"


def test_unavailable_llm_cell_says_why():
    from llmrecbench.llm.settings import unavailable_cell, unavailable_reason

    block = {"method": "lora", "item_repr": "semantic_id", "setting": "LoRA + CBS"}
    assert unavailable_reason("beauty", ["item_text"], "lora_sid", block) is None
    assert unavailable_reason("toys", [], "lora_id", {"method": "lora", "item_repr": "unique_id"}) is None
    why = unavailable_reason("toys", [], "lora_sid", block)
    assert "no item text" in why and "semantic_id" in why
    cell = unavailable_cell("toys", "smollm2", "lora_sid", block, 1, why)
    md = to_markdown(merge_cells([cell, _cell("pop", 1, 0.01)]))
    line = next(x for x in md.splitlines() if "| smollm2 |" in x)
    assert "N/A" in line and "no item text" in line


def test_cell_writer_refuses_incomplete_cells_and_na_without_reason(tmp_path):
    from llmrecbench.tables.cells import CellError, make_cell, na_cell, write_cell

    ident = dict(dataset="d", task="rating", model="mf", model_class="mf", item_repr="unique_id", setting="MSE", seed=1)
    cell = make_cell(**ident, protocol={"split": "ratio_8_1_1"}, metrics={"RMSE": 0.9})
    write_cell(cell, tmp_path / "metrics.json", timing="t.json", provenance="p.json")
    assert json.loads((tmp_path / "metrics.json").read_text())["timing"] == "t.json"
    with pytest.raises(CellError, match="needs a note"):
        make_cell(**ident, protocol={}, metrics={}, status="n/a")
    with pytest.raises(CellError, match="lacks fields"):
        write_cell({"dataset": "d"}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()
    assert na_cell(**ident, protocol={}, reason="N/A: no ratings")["status"] == "n/a"


def test_tradeoff_plot_writes_a_png_with_the_tasks_latency_unit(tmp_path):
    import polars as pl

    from llmrecbench.tables.plots import tradeoff_plot
    from llmrecbench.tasks import get_task

    table = pl.DataFrame({"dataset": ["d", "d"], "model": ["a", "b"], "item_repr": ["unique_id"] * 2, "setting": ["s"] * 2,
                          "AUC": [0.7, None], "latency_ms": [0.01, None]})
    assert get_task("ctr").latency_unit == "test pair" and get_task("seqrec").latency_unit == "test user"
    tradeoff_plot(table, tmp_path / "p.png", metric="AUC", unit=get_task("ctr").latency_unit)
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_readme_blocks_are_rendered_from_the_tables_and_fail_in_one_line(tmp_path):
    """README tables come from results/tables/*.csv and the benchmark files; a missing table or
    an unknown block fails with one line naming the file, and the README is left as it was."""
    import pytest
    import yaml

    from llmrecbench.errors import InputError
    from llmrecbench.tables.readme import update_readme

    table = tmp_path / "results/tables/seqrec.csv"
    table.parent.mkdir(parents=True)
    table.write_text(
        "dataset,model,item_repr,setting,protocol,n_seeds,n_users,NDCG@10,NDCG@10_std,note\n"
        "beauty,pop,unique_id,popularity,p,1,10,0.0055,0.0,\n"
        "beauty,sasrec,unique_id,CE,p,2,10,0.04761,0.0012,\n"
        "other,sasrec,unique_id,CE,p,1,10,0.9,0.0,\n"
    )
    bench = tmp_path / "results/benchmarks/beauty/seqrec/sasrec/seed42/train.tsv"
    bench.parent.mkdir(parents=True)
    bench.write_text("s\th:m:s\n228.4\t0:03:48\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"main": {
        "table": "results/tables/seqrec.csv", "filter": {"dataset": "beauty"}, "rows": ["pop", "sasrec"],
        "columns": ["NDCG@10"], "bold_max": "NDCG@10", "train_seconds": True, "seeds": [42],
        "published": {"column": "paper", "values": {"sasrec": "0.0318"}},
    }}))
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- generated:main -->\nold typed table\n<!-- /generated:main -->\nend\n")
    assert update_readme(readme, spec, tmp_path) == ["main"]
    text = readme.read_text()
    assert "old typed table" not in text and text.startswith("intro\n") and text.endswith("end\n")
    assert "| pop | 0.0055 | – | – |" in text
    assert "| sasrec | **0.0476 ± 0.0012** | 228 | 0.0318 |" in text
    before = readme.read_text()
    two = before + "<!-- generated:main2 -->\nkept as typed\n<!-- /generated:main2 -->\n"
    readme.write_text(two.replace("<!-- generated:main -->\n|", "<!-- generated:main -->\nstale\n|"))
    spec.write_text(yaml.safe_dump({**yaml.safe_load(spec.read_text()), "main2": {"table": "results/tables/missing.csv", "rows": []}}))
    assert update_readme(readme, spec, tmp_path, only=["main"]) == ["main"]  # main2's table is not needed
    assert readme.read_text() == two
    with pytest.raises(InputError, match="no generated block named nope"):
        update_readme(readme, spec, tmp_path, only=["nope"])
    readme.write_text(before.replace("generated:main", "generated:other"))
    with pytest.raises(InputError, match="no spec"):
        update_readme(readme, spec, tmp_path)
    table.unlink()
    readme.write_text(before)
    with pytest.raises(InputError, match="seqrec.csv"):
        update_readme(readme, spec, tmp_path)
    assert readme.read_text() == before


def test_readme_llm_rows_are_picked_by_model_and_setting(tmp_path):
    """One LLM model has one table row per setting: a README row names both and shows them."""
    import yaml

    from llmrecbench.tables.readme import render_block

    table = tmp_path / "results/tables/seqrec.csv"
    table.parent.mkdir(parents=True)
    table.write_text(
        "dataset,model,item_repr,setting,n_seeds,NDCG@10,NDCG@10_std\n"
        "b,smollm2,number_text,\"LoRA, P5 indexing\",1,0.59,0.0\n"
        "b,smollm2,number_text,LoRA,1,0.01,0.0\n"
        "b,index_leak_p5,unique_id,p5_sequential,1,0.5,0.0\n"
    )
    spec = yaml.safe_load("""
table: results/tables/seqrec.csv
rows: [index_leak_p5, {model: smollm2, setting: LoRA}, {model: smollm2, setting: "LoRA, P5 indexing"}]
columns: [NDCG@10]
""")
    text = render_block(spec, tmp_path)
    assert text.splitlines()[2:] == ["| index_leak_p5 | 0.5000 |", "| smollm2 (LoRA) | 0.0100 |",
                                     "| smollm2 (LoRA, P5 indexing) | 0.5900 |"]


def test_templated_llm_rows_get_a_seen_unseen_template_column():
    seen = _cell("smollm2", 1, 0.02, setting="recsysllm", protocol={**PROTOCOL, "eval_template": "seq1", "eval_template_seen": "seen"})
    unseen = _cell("smollm2", 1, 0.01, setting="recsysllm_unseen", protocol={**PROTOCOL, "eval_template": "seq6", "eval_template_seen": "unseen"})
    table = merge_cells([_cell("sasrec", 1, 0.03), seen, unseen])
    assert table.columns[:5] == ["dataset", "model", "item_repr", "setting", "template"]
    by_setting = {r["setting"]: r["template"] for r in table.iter_rows(named=True)}
    assert by_setting == {"CE": None, "recsysllm": "seq1 (seen)", "recsysllm_unseen": "seq6 (unseen)"}
    md = to_markdown(table)
    assert md.splitlines()[0].startswith("| dataset | model | item_repr | setting | template | protocol |")
    assert "| seq6 (unseen) |" in md and "| CE |  |" in md
    # a table without templated rows keeps its columns
    assert "template" not in merge_cells([_cell("sasrec", 1, 0.03)]).columns
