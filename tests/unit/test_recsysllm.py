"""RecSysLLM: entities, entity-aware blanks, Part A / Part B layout, 2-D positions, the 4-D mask,
dynamic positions at inference, the zero-initialised intra embedding, adapters and resume."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llmrecbench.llm.recsysllm.blanks import LEVELS, choose_blanks, units_of
from llmrecbench.llm.recsysllm.entities import EntityFinder, EntityPool, IntraTracker, dynamic_intra, token_spans
from llmrecbench.llm.recsysllm.layout import SpecialIds, blank_mask, build_example
from tests.conftest import killed_after_first_checkpoint

# --------------------------------------------------------------------------- pure parts

X = {f"x{k}": 100 + k for k in range(1, 8)}  # token ids of the paper's x1..x7
SP = SpecialIds(mask=1, start=2, end=3)


def test_figure_1_positions():
    """RecSysLLM Figure 1: e1 = x1 x2 x3, e2 = x6 x7, spans e1 and x5."""
    pool = EntityPool([[X["x1"], X["x2"], X["x3"]], [X["x6"], X["x7"]]])
    source = [X[f"x{k}"] for k in range(1, 8)]
    ex = build_example(source, [(0, 3), (4, 5)], None, SP, pool)
    M, S, E = SP.mask, SP.start, SP.end
    assert ex.ids == [M, X["x4"], M, X["x6"], X["x7"], S, X["x1"], X["x2"], X["x3"], S, X["x5"]]
    assert ex.n_a == 5
    assert ex.inter == [0, 1, 2, 3, 4, 0, 0, 0, 0, 2, 2]
    assert ex.intra == [0, 0, 0, 1, 2, 1, 2, 3, 4, 1, 2]
    assert ex.labels == [-100] * 5 + [X["x1"], X["x2"], X["x3"], E, X["x5"], E]
    flat = build_example(source, [(0, 3), (4, 5)], None, SP, pool, two_d=False)  # no_2d_pos ablation
    assert flat.inter == list(range(11)) and flat.intra == [0] * 11


def test_answer_is_the_last_span_after_its_own_mask():
    pool = EntityPool([[7, 8]])
    ex = build_example([5, 6, 7, 8], [(1, 2)], [7, 8], SP, pool)
    assert ex.ids == [5, SP.mask, 7, 8, SP.mask, SP.start, 6, SP.start, 7, 8]
    assert ex.inter == [0, 1, 2, 3, 4, 1, 1, 4, 4, 4]
    assert ex.intra == [0, 0, 1, 2, 0, 1, 2, 1, 2, 3]
    assert ex.labels[-3:] == [7, 8, SP.end]


def test_dynamic_intra_continues_entities_and_resets():
    pool = EntityPool([[10, 11, 12], [20, 21]])
    # [S] x5 e2 -> 1, 2, then e2 starts again at 1 and continues
    assert dynamic_intra(pool, [5, 20, 21]) == [1, 2, 1, 2]
    assert dynamic_intra(pool, [10, 11, 12, 20, 21, 9]) == [1, 2, 3, 4, 1, 2, 1]
    t = IntraTracker(pool)
    assert [t.feed(x) for x in [10, 11]] == [2, 3]
    c = t.copy()
    assert (t.feed(12), c.feed(99)) == (4, 1)  # copies evolve independently (beam reordering)


def test_pool_segments_longest_complete_entity():
    pool = EntityPool([[1, 2], [1, 2, 3], [4]])
    assert pool.segment([9, 1, 2, 3, 1, 2, 5, 4]) == [(1, 4), (4, 6), (7, 8)]
    assert pool.part_a_intra([9, 1, 2, 3, 1, 2, 5, 4]) == [0, 1, 2, 3, 1, 2, 0, 1]
    assert pool.segment([1, 9]) == []  # an unfinished prefix is no entity
    assert EntityPool.from_json(pool.to_json()).sequences() == pool.sequences()


def test_entity_finder_spans_and_tokens():
    finder = EntityFinder(["Great Lash Mascara", "Lash", "Oil"])
    text = "user_7 bought 'Great Lash Mascara' and Oil, not Oily or Eyelash"
    spans = finder.spans(text)
    assert [text[a:b] for a, b in spans] == ["user_7", "Great Lash Mascara", "Oil"]
    offsets = [(0, 4), (4, 6), (7, 13), (14, 15), (15, 20), (20, 25), (25, 33), (33, 34)]
    assert token_spans(offsets, [(0, 6), (15, 33)]) == [(0, 2), (4, 7)]


def _random_case(rng):
    n = int(rng.integers(4, 60))
    runs, i = [], 0
    while i < n:
        if rng.random() < 0.3:
            L = int(rng.integers(1, 6))
            runs.append((i, min(n, i + L)))
            i += L + int(rng.integers(0, 3))
        else:
            i += 1
    sentence = np.cumsum(rng.random(n) < 0.1).tolist()
    return n, runs, sentence


@pytest.mark.parametrize("level", LEVELS)
def test_blanks_never_cut_an_entity(level):
    """Property over 400 seeded random documents: spans are whole units, sorted, disjoint,
    non-touching, leave context, and the same seed gives the same spans."""
    for seed in range(400):
        rng = np.random.default_rng(seed)
        n, runs, sentence = _random_case(rng)
        lo = int(rng.integers(0, 3))
        spans = choose_blanks(lo, n, runs, level, np.random.default_rng([seed, 1]), sentence_of_token=sentence)
        again = choose_blanks(lo, n, runs, level, np.random.default_rng([seed, 1]), sentence_of_token=sentence)
        assert spans == again
        assert spans == sorted(spans)
        for (a, b), (c, d) in zip(spans, spans[1:]):
            assert b < c  # disjoint and never touching
        for a, b in spans:
            assert lo <= a < b <= n
            for ea, eb in runs:
                ea, eb = max(ea, lo), min(eb, n)
                if eb > ea:
                    inside = a <= ea and eb <= b
                    outside = eb <= a or ea >= b
                    assert inside or outside, (seed, (a, b), (ea, eb))
        assert sum(b - a for a, b in spans) < n - lo  # some context stays
    assert len(units_of(0, 5, [(1, 3)])) == 4


def test_entity_level_blanks_about_fifteen_percent():
    rng = np.random.default_rng(0)
    shares = [sum(b - a for a, b in choose_blanks(0, 200, [], "entity", rng)) / 200 for _ in range(50)]
    assert 0.15 <= np.mean(shares) <= 0.25
    doc = [sum(b - a for a, b in choose_blanks(0, 200, [], "document", rng)) / 200 for _ in range(200)]
    assert min(doc) >= 0.5 and max(doc) <= 1.0 and np.mean(doc) > 0.65


def test_blank_mask_a_bidirectional_b_causal():
    # one row: 1 pad, Part A of 3, Part B of 2
    m = blank_mask(torch.tensor([3]), torch.tensor([5]), 6)[0, 0]
    A, B = [1, 2, 3], [4, 5]
    for q in A:
        assert all(m[q, k] for k in A) and not any(m[q, k] for k in B) and not m[q, 0]
    assert all(m[4, k] for k in A) and m[4, 4] and not m[4, 5]
    assert all(m[5, k] for k in A + B)
    assert m[0, 0] and not m[0, 1:].any()  # padding sees itself only


# --------------------------------------------------------------------------- on the offline LM


@pytest.fixture(scope="module")
def blank_setup(smollm2_dir, mirror_dir):
    from llmrecbench.llm.finetune import add_item_tokens
    from llmrecbench.llm.loading import load_model
    from llmrecbench.llm.prompt_files import prompt_set
    from llmrecbench.llm.prompts import mirror_slice
    from llmrecbench.llm.recsysllm.layout import SPECIAL_TOKENS
    from llmrecbench.llm.recsysllm.model import IntraEmbedding, RecSysLLMLM
    from llmrecbench.llm.recsysllm.training import build_pool

    d = mirror_dir / "amazon-2014-5core" / "beauty"
    data, titles = mirror_slice(d / "user_sequence.txt", d / "item_titles.tsv", n_users=200)
    train = prompt_set(data, titles, "seq1-text", "train", max_history=3, max_examples_per_user=1)[:8]
    model, tok, _ = load_model(smollm2_dir)
    add_item_tokens(model, tok, list(SPECIAL_TOKENS), 0)
    pool = build_pool(tok, train, titles)
    intra = IntraEmbedding(model.config.hidden_size, 64)
    lm = RecSysLLMLM(model.eval(), tok, SpecialIds.of(tok), pool, intra)
    return lm, train, titles


def test_zero_initialised_intra_embedding_leaves_the_model_unchanged(blank_setup):
    lm, train, _ = blank_setup
    ids = torch.tensor([lm.prompt_ids(train[0]["prompt"])])
    mask = torch.ones_like(ids)
    attention, inter, intra, _ = lm.prefill_layout(ids, mask)
    assert intra.max() > 0  # the prompt has entities, so the intra ids are really used
    with torch.no_grad():
        ours, _, _ = lm.forward(ids, mask)
        base = lm.model(input_ids=ids, attention_mask=attention, position_ids=inter, logits_to_keep=1).logits
    assert torch.equal(ours, base)


def test_prompt_attends_bidirectionally(blank_setup):
    """Changing the last prompt word changes the first prompt token's state (Part A is bidirectional)."""
    lm, train, _ = blank_setup
    a = lm.prompt_ids(train[0]["prompt"])
    b = lm.prompt_ids(train[0]["prompt"].replace("to the user", "to the buyer"))
    assert len(a) == len(b)
    with torch.no_grad():
        la, _, _ = lm.forward(torch.tensor([a]), torch.ones(1, len(a), dtype=torch.long), logits_to_keep=0)
        lb, _, _ = lm.forward(torch.tensor([b]), torch.ones(1, len(b), dtype=torch.long), logits_to_keep=0)
    assert not torch.allclose(la[0, 0], lb[0, 0])


def test_replaying_a_target_through_decoding_reproduces_training(blank_setup):
    """Feed a training target token by token through the KV-cached inference path: the intra ids
    equal training's Part B ids and the logits equal the training forward's at every position."""
    from llmrecbench.llm.recsysllm.training import encode_sources

    lm, train, _ = blank_setup
    saved = lm.intra.table.weight.detach().clone()
    with torch.no_grad():  # a trained-looking intra table, so wrong intra ids would change the logits
        lm.intra.table.weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(0))
    try:
        _replay(lm, train, encode_sources)
    finally:
        with torch.no_grad():
            lm.intra.table.weight.copy_(saved)


def _replay(lm, train, encode_sources):
    from llmrecbench.llm.recsysllm.layout import collate

    src = encode_sources(lm, train[:2], 256)[1]
    ex = build_example(src.ids, [], src.answer, lm.specials, lm.pool)
    b = collate([ex], lm.tok.pad_token_id, "cpu")
    with torch.no_grad():
        train_logits, _ = lm.run(b["ids"], b["attention"], b["inter"], b["intra"], logits_to_keep=0, use_cache=False)
        prompt = src.ids + [lm.specials.mask, lm.specials.start]
        assert ex.ids[: len(prompt)] == prompt
        x = torch.tensor([prompt])
        logits, cache, full = lm.forward(x, torch.ones_like(x))
        steps = [logits[0, -1]]
        for t in src.answer:
            step = torch.tensor([[t]])
            logits, cache, full = lm.forward(step, torch.ones_like(step), cache=cache, past_mask=full)
            steps.append(logits[0, -1])
    assert cache.fed[0] == ex.intra[len(prompt) - 1 :]
    assert any(i > 2 for i in cache.fed[0])  # the title is an entity: its intra ids grow
    ref = train_logits[0, len(prompt) - 1 :]
    assert torch.allclose(torch.stack(steps), ref, atol=1e-4)


def test_adapter_trains_reloads_and_resumes(tmp_path, smollm2_dir, blank_setup):
    from safetensors.torch import load_file

    from llmrecbench.llm.finetune import FinetuneConfig, finetune, load_adapter
    from llmrecbench.llm.recsysllm.model import INTRA_FILE, POOL_FILE, RecSysLLMLM

    _, train, titles = blank_setup
    cfg = FinetuneConfig(method="lora", epochs=2, batch_size=4, max_train_examples=4, max_length=96, lr=1e-2,
                         objective="blank_infilling", seed=3)
    log = finetune(smollm2_dir, train, [], cfg, tmp_path / "full", tmp_path / "ck_full", entity_strings=titles)
    assert log["history"][1]["loss"] < log["history"][0]["loss"]
    assert (tmp_path / "full" / POOL_FILE).exists() and (tmp_path / "full" / INTRA_FILE).exists()
    intra = torch.load(tmp_path / "full" / INTRA_FILE, weights_only=True)["table.weight"]
    assert intra.abs().sum() > 0  # trained with the adapter

    with killed_after_first_checkpoint(), pytest.raises(KeyboardInterrupt):
        finetune(smollm2_dir, train, [], cfg, tmp_path / "res", tmp_path / "ck_res", entity_strings=titles)
    log2 = finetune(smollm2_dir, train, [], cfg, tmp_path / "res", tmp_path / "ck_res", entity_strings=titles)
    assert log2["resumed_from_epoch"] == 0
    a, b = (load_file(tmp_path / n / "adapter_model.safetensors") for n in ("full", "res"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert torch.equal(intra, torch.load(tmp_path / "res" / INTRA_FILE, weights_only=True)["table.weight"])

    scores = []
    for _ in range(2):
        lm, meta = load_adapter(smollm2_dir, tmp_path / "full")
        assert isinstance(lm, RecSysLLMLM) and meta["config"]["objective"] == "blank_infilling"
        hyps = lm.beam_search([lm.prompt_ids(train[0]["prompt"])], beam_width=3, num_return=3, max_new_tokens=6)[0]
        scores.append([(h.tokens, h.logprob) for h in hyps])
    assert scores[0] == scores[1] and scores[0]


@pytest.mark.parametrize("options", [{"two_d_positions": False}, {"entity_mask": False}])
def test_ablation_adapters_train_and_decode(tmp_path, smollm2_dir, blank_setup, options):
    """recsysllm_no_2d_pos (ordinary positions, no intra table) and recsysllm_no_entity_mask."""
    from llmrecbench.llm.finetune import FinetuneConfig, finetune, load_adapter
    from llmrecbench.llm.recsysllm.model import INTRA_FILE

    _, train, titles = blank_setup
    cfg = FinetuneConfig(method="lora", epochs=1, batch_size=4, max_train_examples=4, max_length=96, lr=1e-2,
                         objective="blank_infilling", seed=5, **options)
    finetune(smollm2_dir, train, [], cfg, tmp_path / "a", tmp_path / "ck", entity_strings=titles)
    lm, meta = load_adapter(smollm2_dir, tmp_path / "a")
    two_d = options.get("two_d_positions", True)
    assert lm.two_d == two_d and (lm.intra is not None) == two_d and (tmp_path / "a" / INTRA_FILE).exists() == two_d
    ids = torch.tensor([lm.prompt_ids(train[0]["prompt"])])
    _, inter, _, _ = lm.prefill_layout(ids, torch.ones_like(ids))
    assert torch.equal(inter[0], torch.arange(ids.shape[1])) == (not two_d)  # 2-D: [START] shares its mask's position
    hyps = lm.beam_search([ids[0].tolist()], beam_width=3, num_return=3, max_new_tokens=4)[0]
    assert hyps and all(lm.specials.end not in h.tokens for h in hyps)
