"""Semantic-ID trie and (conditional) beam search over it.

Items are identified by equal-length tuples of integer codes (after
:func:`llmrecbench.semantic_ids.rqvae.resolve_collisions`, ``L + 1`` codes per item). The
:class:`ItemTrie` stores every valid code tuple as a root-to-leaf path. RecBench's *conditional
beam search* (CBS, Sec. 3.2 of the paper) restricts every decoding step to the codes that extend
the current prefix to a valid prefix in this tree, so every returned sequence is a real item.

Code vocabulary and how a decoder maps tokens to codes
------------------------------------------------------
:func:`constrained_beam_search` works in *code space*: at decoding step ``t`` (0-based, i.e. the
``t``-th level of the semantic ID) the decoder's ``step_logprobs_fn`` must return, for every beam,
log-probabilities whose column ``c`` is the log-probability of emitting code ``c`` at level
``t``. The number of columns ``V`` may be anything ``>= 1``; columns at or beyond the largest code
of the trie are simply never valid under the constraint.

* A decoder with one shared code vocabulary (code ``c`` is token ``c`` at every level) returns its
  log-softmax directly.
* A decoder with level-offset tokens, as in RecBench / TIGER (``token = level * K + code``, giving
  ``V = L * K`` new tokens, e.g. ``4 * 256 = 1024``), slices
  ``logits[:, t * K:(t + 1) * K]`` at step ``t`` and log-softmaxes that slice (or log-softmaxes the
  full row and slices, which keeps the probability mass the model put on other levels' tokens out
  of the score); see :func:`level_offset_tokens`.
* An LLM whose new tokens sit at arbitrary ids keeps a ``[L, K]`` table of token ids and gathers
  ``logprobs[:, table[t]]``.

Scores are the sums of the decoder's log-probabilities along the path. In constrained mode the
disallowed codes are masked to ``-inf`` *without* renormalising over the allowed ones, so the score
of an item is the same as its exhaustive score ``sum_t log p(c_t | c_<t)``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import torch

ItemId = Hashable
StepFn = Callable[[torch.Tensor, Any], tuple[torch.Tensor, Any]]


class ItemTrie:
    """A prefix tree over equal-length integer code tuples, each mapped to one item id.

    Nodes are numbered breadth-first: node 0 is the root (the empty prefix); the children of a node
    are stored in CSR form (``child_ptr``, ``child_code``, ``child_node``) sorted by code so the
    beam search can gather allowed codes for many beams at once without Python loops.
    """

    def __init__(self, codes: Sequence[Sequence[int]] | np.ndarray, item_ids: Sequence[ItemId] | None = None):
        arr = np.asarray(codes)
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise ValueError(f"codes must be a non-empty [N, depth] array of ints, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"codes must be integers, got dtype {arr.dtype}")
        if (arr < 0).any():
            raise ValueError("codes must be non-negative")
        n, depth = arr.shape
        ids = list(range(n)) if item_ids is None else list(item_ids)
        if len(ids) != n:
            raise ValueError(f"{len(ids)} item ids for {n} code tuples")
        self.depth = int(depth)
        self.vocab_size = int(arr.max()) + 1  # smallest V whose columns cover every code
        self._item_of: dict[tuple[int, ...], ItemId] = {}
        self._codes_of: dict[ItemId, tuple[int, ...]] = {}
        for row, item in zip(arr.tolist(), ids):
            key = tuple(int(c) for c in row)
            if key in self._item_of:
                raise ValueError(
                    f"code tuple {key} maps to both {self._item_of[key]!r} and {item!r}; "
                    "resolve collisions first (rqvae.resolve_collisions)"
                )
            self._item_of[key] = item
            self._codes_of[item] = key
        if len(self._codes_of) != n:
            raise ValueError("item ids are not unique")

        # Build nodes level by level (breadth-first), children sorted by code.
        self._children: list[dict[int, int]] = [{}]
        frontier: dict[tuple[int, ...], int] = {(): 0}
        for level in range(depth):
            prefixes = sorted({key[: level + 1] for key in self._item_of})
            nxt: dict[tuple[int, ...], int] = {}
            for p in prefixes:
                node = len(self._children)
                self._children.append({})
                self._children[frontier[p[:-1]]][p[-1]] = node
                nxt[p] = node
            frontier = nxt
        self._leaf_item: dict[int, ItemId] = {frontier[k]: v for k, v in self._item_of.items()}
        self.num_nodes = len(self._children)

        ptr = np.zeros(self.num_nodes + 1, dtype=np.int64)
        for i, ch in enumerate(self._children):
            ptr[i + 1] = ptr[i] + len(ch)
        code = np.empty(int(ptr[-1]), dtype=np.int64)
        node = np.empty(int(ptr[-1]), dtype=np.int64)
        for i, ch in enumerate(self._children):
            items = sorted(ch.items())
            code[ptr[i] : ptr[i + 1]] = [c for c, _ in items]
            node[ptr[i] : ptr[i + 1]] = [m for _, m in items]
        self.child_ptr = torch.from_numpy(ptr)
        self.child_code = torch.from_numpy(code)
        self.child_node = torch.from_numpy(node)
        # leaf node -> position in self.leaf_items (for vectorised lookup); -1 elsewhere
        leaf_index = np.full(self.num_nodes, -1, dtype=np.int64)
        self.leaf_items: list[ItemId] = []
        for leaf in sorted(self._leaf_item):
            leaf_index[leaf] = len(self.leaf_items)
            self.leaf_items.append(self._leaf_item[leaf])
        self.leaf_index = torch.from_numpy(leaf_index)
        # per leaf (in leaf_items order) the nodes on its root-to-leaf path, levels 1..depth, and
        # per node the number of leaves below it: a node is blocked when all of its leaves are
        self._leaf_pos_of: dict[ItemId, int] = {item: pos for pos, item in enumerate(self.leaf_items)}
        node_of_leaf = {leaf: pos for pos, leaf in enumerate(sorted(self._leaf_item))}
        paths = np.zeros((len(self.leaf_items), depth), dtype=np.int64)
        for key, item in self._item_of.items():
            node, path = 0, []
            for c in key:
                node = self._children[node][c]
                path.append(node)
            paths[node_of_leaf[node]] = path
        self.leaf_paths = paths
        self.node_leaves = np.bincount(paths.reshape(-1), minlength=self.num_nodes)

    # ---- lookups -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._item_of)

    def _node(self, prefix: Sequence[int]) -> int | None:
        node = 0
        for c in prefix:
            node = self._children[node].get(int(c))
            if node is None:
                return None
        return node

    def allowed_next(self, prefix: Sequence[int]) -> list[int]:
        """Codes that extend ``prefix`` to a valid prefix (sorted); ``[]`` for invalid or full prefixes."""
        node = self._node(prefix)
        return [] if node is None else sorted(self._children[node])

    def is_prefix(self, prefix: Sequence[int]) -> bool:
        return self._node(prefix) is not None

    def item_of(self, codes: Sequence[int]) -> ItemId:
        """The item whose full code tuple is ``codes``; ``KeyError`` if no item has it."""
        key = tuple(int(c) for c in codes)
        try:
            return self._item_of[key]
        except KeyError:
            raise KeyError(f"no item has semantic ID {key}") from None

    def get(self, codes: Sequence[int], default: ItemId | None = None) -> ItemId | None:
        return self._item_of.get(tuple(int(c) for c in codes), default)

    def codes_of(self, item_id: ItemId) -> tuple[int, ...]:
        return self._codes_of[item_id]

    def items(self) -> list[tuple[tuple[int, ...], ItemId]]:
        """All ``(codes, item_id)`` pairs, sorted by codes."""
        return sorted(self._item_of.items())

    def blocked_nodes(self, excluded: Sequence[Sequence[ItemId]]) -> torch.Tensor:
        """``[Q, num_nodes]`` bool: node n is blocked for query q when every item below it is in
        ``excluded[q]`` (so a beam never enters a subtree that holds only excluded items). Items
        not in the trie are ignored."""
        q = len(excluded)
        out = np.zeros((q, self.num_nodes), dtype=bool)
        rows, leaves = [], []
        for b, items in enumerate(excluded):
            pos = {self._leaf_pos_of[i] for i in items if i in self._leaf_pos_of}
            rows += [b] * len(pos)
            leaves += sorted(pos)
        if leaves:
            nodes = self.leaf_paths[np.asarray(leaves)]  # [P, depth]
            keys = np.repeat(np.asarray(rows, dtype=np.int64), self.depth) * self.num_nodes + nodes.reshape(-1)
            uniq, counts = np.unique(keys, return_counts=True)
            full = counts == self.node_leaves[uniq % self.num_nodes]
            out.reshape(-1)[uniq[full]] = True
        return torch.from_numpy(out)

    # ---- vectorised transition used by the beam search -----------------------------------------
    def children_table(self, nodes: torch.Tensor, vocab: int) -> torch.Tensor:
        """``[R, vocab]`` long tensor: child node reached from ``nodes[r]`` by code ``c``, or -1.

        ``nodes`` may contain -1 (off-trie); such rows are all -1.
        """
        r = nodes.shape[0]
        table = torch.full((r, vocab), -1, dtype=torch.long)
        valid = nodes >= 0
        safe = nodes.clamp(min=0)
        counts = torch.where(valid, self.child_ptr[safe + 1] - self.child_ptr[safe], torch.zeros_like(safe))
        total = int(counts.sum())
        if total == 0:
            return table
        rows = torch.repeat_interleave(torch.arange(r), counts)
        starts = torch.repeat_interleave(self.child_ptr[safe], counts)
        offsets = torch.arange(total) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
        edge = starts + offsets
        codes = self.child_code[edge]
        keep = codes < vocab
        table[rows[keep], codes[keep]] = self.child_node[edge[keep]]
        return table


# ---- beam-state helpers --------------------------------------------------------------------------
def index_state(state: Any, index: torch.Tensor) -> Any:
    """Default state re-indexer: select rows ``index`` along dim 0 of every tensor in ``state``.

    Handles ``None``, tensors, objects with a ``reorder_cache(index)`` method (Hugging Face
    ``Cache`` objects, reordered in place) and (nested) tuples / lists / dicts of these; other
    leaves (ints, strings, ...) are passed through unchanged. Decoders with other state layouts pass
    their own ``reorder_state``.
    """
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.index_select(0, index.to(state.device))
    if hasattr(state, "reorder_cache"):
        state.reorder_cache(index)
        return state
    if isinstance(state, tuple):
        return tuple(index_state(s, index) for s in state)
    if isinstance(state, list):
        return [index_state(s, index) for s in state]
    if isinstance(state, dict):
        return {k: index_state(v, index) for k, v in state.items()}
    return state


def level_offset_tokens(logprobs: torch.Tensor, level: int, codebook_size: int) -> torch.Tensor:
    """Slice level-offset token log-probs (``token = level * K + code``) into code space for ``level``."""
    return logprobs[:, level * codebook_size : (level + 1) * codebook_size]


# ---- beam search ---------------------------------------------------------------------------------
def constrained_beam_search(
    step_logprobs_fn: StepFn,
    trie: ItemTrie,
    beam_width: int,
    num_return: int | None = None,
    *,
    batch_size: int = 1,
    init_state: Any = None,
    constrained: bool = True,
    reorder_state: Callable[[Any, torch.Tensor], Any] = index_state,
    device: torch.device | str | None = None,
    return_codes: bool = False,
    exclude: Sequence[Sequence[ItemId]] | None = None,
) -> list[list[tuple[ItemId | None, float]]]:
    """Batched beam search over semantic IDs, constrained to the trie (CBS) or not.

    Args:
        step_logprobs_fn: ``(prefixes, state) -> (logprobs, new_state)``. ``prefixes`` is a
            ``LongTensor [batch_size * beam_width, t]`` of the codes chosen so far (rows
            ``b * beam_width ... (b + 1) * beam_width - 1`` belong to query ``b``; at ``t == 0``
            it has zero columns). ``logprobs`` is ``[batch_size * beam_width, V]`` in code space
            (see the module docstring for the token -> code mapping). ``new_state`` must be
            row-aligned with ``prefixes``; the search re-indexes it with ``reorder_state`` after
            every step when beams are reordered.
        trie: the valid semantic IDs.
        beam_width: beams kept per query at every step.
        num_return: ranked results returned per query (``<= beam_width``; default ``beam_width``).
        batch_size: number of queries decoded together.
        init_state: per-query state, leading dim ``batch_size`` (or ``None``); it is expanded to
            ``batch_size * beam_width`` rows with ``reorder_state`` before the first step.
        constrained: ``True`` for CBS (mask codes the trie does not allow to ``-inf``); ``False``
            for plain beam search, which may return sequences that are no item (``item_id None``).
        reorder_state: ``(state, row_index) -> state``; default :func:`index_state`.
        device: where prefixes and scores live (default: CPU; the decoder's outputs are moved here).
        return_codes: return ``(item_id, score, codes)`` triples instead of pairs (to inspect the
            invalid sequences of unconstrained mode).
        exclude: per query, items the search must not return (a user's history, so that
            ``num_return`` non-history items remain). Their paths are masked in the trie as soon
            as a prefix leads only to excluded items (:meth:`ItemTrie.blocked_nodes`), in both
            modes, so no beam is spent on them.

    Returns:
        one list per query of ``(item_id, score)`` sorted by score descending (ties in a
        deterministic but unspecified order).
        Constrained mode never returns an invalid item and returns fewer than ``num_return`` entries
        when fewer valid items are reachable (paths with ``-inf`` score are dropped). Unconstrained
        mode returns ``None`` as the item id of sequences not in the trie.
    """
    if beam_width < 1:
        raise ValueError("beam_width must be >= 1")
    num_return = beam_width if num_return is None else int(num_return)
    if not 1 <= num_return <= beam_width:
        raise ValueError(f"num_return must be in [1, beam_width={beam_width}], got {num_return}")
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    dev = torch.device("cpu") if device is None else torch.device(device)
    B, W = batch_size, beam_width
    rows = B * W

    # Only beam 0 of each query is live at the start; the others are -inf copies, so the first
    # step's top-k picks W distinct first codes instead of W copies of the best one.
    scores = torch.full((B, W), float("-inf"), dtype=torch.float64, device=dev)
    scores[:, 0] = 0.0
    prefixes = torch.zeros((rows, 0), dtype=torch.long, device=dev)
    nodes = torch.zeros(rows, dtype=torch.long)  # trie node per beam (-1: off-trie), on CPU
    state = reorder_state(init_state, torch.arange(B).repeat_interleave(W))
    if exclude is not None and len(exclude) != B:
        raise ValueError(f"exclude holds {len(exclude)} item lists for {B} queries")
    blocked = trie.blocked_nodes(exclude) if exclude is not None else None
    query_of_row = torch.arange(rows) // W

    for t in range(trie.depth):
        logprobs, state = step_logprobs_fn(prefixes, state)
        if logprobs.dim() != 2 or logprobs.shape[0] != rows:
            raise ValueError(f"step_logprobs_fn returned shape {tuple(logprobs.shape)}, expected [{rows}, V]")
        logprobs = logprobs.detach().to(dev, torch.float64)
        V = logprobs.shape[1]
        child = trie.children_table(nodes, V)  # [rows, V] CPU
        if constrained:
            logprobs = logprobs.masked_fill((child < 0).to(dev), float("-inf"))
        if blocked is not None:
            barred = blocked[query_of_row.unsqueeze(1), child.clamp(min=0)] & (child >= 0)
            logprobs = logprobs.masked_fill(barred.to(dev), float("-inf"))
        cand = (scores.reshape(rows, 1) + logprobs).reshape(B, W * V)
        # W * V >= W candidates per query; -inf ones (masked, or children of dead beams) become
        # dead beams that are dropped from the results
        top_scores, top_idx = torch.topk(cand, W, dim=1, largest=True, sorted=True)
        parent = (top_idx // V) + torch.arange(B, device=dev).unsqueeze(1) * W  # global parent row
        token = top_idx % V
        parent_flat, token_flat = parent.reshape(-1), token.reshape(-1)
        prefixes = torch.cat([prefixes.index_select(0, parent_flat), token_flat.unsqueeze(1)], dim=1)
        nodes = child[parent_flat.cpu(), token_flat.cpu()]
        scores = top_scores
        if t + 1 < trie.depth:  # the final state is not used
            state = reorder_state(state, parent_flat)

    results: list[list[tuple[ItemId | None, float]]] = []
    leaf_pos = torch.where(nodes >= 0, trie.leaf_index[nodes.clamp(min=0)], torch.full_like(nodes, -1))
    prefixes_cpu = prefixes.cpu()
    for b in range(B):
        out: list[tuple[ItemId | None, float]] = []
        for w in range(W):
            s = float(scores[b, w])
            if s == float("-inf"):
                continue
            r = b * W + w
            pos = int(leaf_pos[r])
            if pos >= 0:
                item = trie.leaf_items[pos]
            else:
                item = None
                assert not constrained, "constrained search reached an invalid sequence"
            out.append((item, s, tuple(prefixes_cpu[r].tolist())) if return_codes else (item, s))
            if len(out) == num_return:
                break
        results.append(out)
    return results
