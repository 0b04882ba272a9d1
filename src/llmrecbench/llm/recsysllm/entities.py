"""Entities in textualised recommendation data, and the entity pool.

RecSysLLM calls each item of a behaviour sequence and each user-feature value an *entity*: a
run of tokens with one meaning (its Figure 1: x1 x2 x3 form e1). Here the entities of a prompt
are the renderings of catalog items (titles, ``<item_n>`` tokens, semantic-ID token runs) and
user identifiers (``user_<id>``).

* :class:`EntityFinder` finds their character spans in a text (longest match at word
  boundaries), :func:`token_spans` maps character spans to token runs through the tokenizer's
  offsets.
* :class:`EntityPool` is the paper's *entity pool*: a trie over the token sequences of all
  entities, as they occur in the training texts and as each catalog rendering tokenises on its
  own. It segments a token sequence into entities (Part A intra-positions, masking units) and
  drives the dynamic intra-positions of Part B (:class:`IntraTracker`), from token ids alone, so
  training and inference assign the same ids.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Iterable, Sequence

USER_PATTERN = re.compile(r"(?<![A-Za-z0-9])[Uu]ser_\d+(?![A-Za-z0-9])")
_KEY = 6  # renderings are indexed by their first _KEY characters (shorter ones by length)
_END = -1  # trie key marking a complete entity


class EntityFinder:
    """Character spans of known entity strings and user ids in a text.

    A match starts where a word starts (text start, or after a non-alphanumeric character),
    ends where a word ends, and the longest rendering wins; matches do not overlap.
    """

    def __init__(self, strings: Iterable[str], user_pattern: re.Pattern | None = USER_PATTERN):
        self.user_pattern = user_pattern
        self._long: dict[str, list[str]] = defaultdict(list)
        self._short: dict[int, set[str]] = defaultdict(set)
        for s in {s.strip() for s in strings if s and s.strip()}:
            if len(s) >= _KEY:
                self._long[s[:_KEY]].append(s)
            else:
                self._short[len(s)].add(s)
        for group in self._long.values():
            group.sort(key=len, reverse=True)
        self._short_lengths = sorted(self._short, reverse=True)

    def _match_at(self, text: str, i: int) -> int:
        """End of the longest rendering starting at ``i`` (0 when none)."""
        for s in self._long.get(text[i : i + _KEY], ()):
            j = i + len(s)
            if text.startswith(s, i) and (j == len(text) or not text[j].isalnum() or not s[-1].isalnum()):
                return j
        for n in self._short_lengths:
            j = i + n
            if text[i:j] in self._short[n] and (j == len(text) or not text[j].isalnum() or not text[j - 1].isalnum()):
                return j
        return 0

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Sorted, non-overlapping ``[start, end)`` character spans of the entities in ``text``."""
        taken = [m.span() for m in self.user_pattern.finditer(text)] if self.user_pattern else []
        blocked = bytearray(len(text))
        for a, b in taken:
            blocked[a:b] = b"\x01" * (b - a)
        out = list(taken)
        i, n = 0, len(text)
        while i < n:
            if blocked[i] or text[i].isspace() or (i > 0 and text[i - 1].isalnum() and text[i].isalnum()):
                i += 1
                continue
            j = self._match_at(text, i)
            if j and not any(blocked[i:j]):
                out.append((i, j))
                i = j
            else:
                i += 1
        return sorted(out)


def token_spans(offsets: Sequence[tuple[int, int]], char_spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[first, last + 1)`` token runs of character spans: a token belongs to the span it overlaps
    (``offsets`` from a fast tokenizer's ``return_offsets_mapping``; empty tokens belong to none)."""
    out = []
    t, n = 0, len(offsets)
    for a, b in char_spans:
        while t < n and offsets[t][1] <= a:
            t += 1
        first = t
        while t < n and offsets[t][0] < b:
            t += 1
        run = [k for k in range(first, t) if offsets[k][1] > offsets[k][0]]
        if run:
            out.append((run[0], run[-1] + 1))
    return out


class EntityPool:
    """A trie over entity token sequences (any length >= 1)."""

    def __init__(self, sequences: Iterable[Sequence[int]] = ()):
        self.root: dict = {}
        self.n = 0
        for s in sequences:
            self.add(s)

    def add(self, seq: Sequence[int]) -> None:
        if not seq:
            return
        node = self.root
        for t in seq:
            node = node.setdefault(int(t), {})
        if _END not in node:
            node[_END] = True
            self.n += 1

    def __len__(self) -> int:
        return self.n

    def __contains__(self, seq: Sequence[int]) -> bool:
        node = self.root
        for t in seq:
            node = node.get(int(t))
            if node is None:
                return False
        return _END in node

    def sequences(self) -> list[list[int]]:
        out, stack = [], [(self.root, [])]
        while stack:
            node, prefix = stack.pop()
            for t, child in node.items():
                if t == _END:
                    out.append(prefix)
                else:
                    stack.append((child, prefix + [t]))
        return sorted(out)

    def longest_at(self, ids: Sequence[int], i: int) -> int:
        """Length of the longest complete entity starting at ``ids[i]`` (0 when none)."""
        node, best = self.root, 0
        for k in range(i, len(ids)):
            node = node.get(int(ids[k]))
            if node is None:
                break
            if _END in node:
                best = k - i + 1
        return best

    def segment(self, ids: Sequence[int], start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
        """Entity runs ``[a, b)`` in ``ids[start:end]``: greedy left to right, longest match."""
        end = len(ids) if end is None else end
        view = list(ids[start:end])
        out, i = [], 0
        while i < len(view):
            n = self.longest_at(view, i)
            if n:
                out.append((start + i, start + i + n))
                i += n
            else:
                i += 1
        return out

    def part_a_intra(self, ids: Sequence[int], start: int = 0, end: int | None = None) -> list[int]:
        """Intra-position ids of corrupted-text tokens: 0 outside entities, 1..len inside one."""
        end = len(ids) if end is None else end
        intra = [0] * (end - start)
        for a, b in self.segment(ids, start, end):
            for k in range(a, b):
                intra[k - start] = k - a + 1
        return intra

    def to_json(self) -> list[list[int]]:
        return self.sequences()

    @classmethod
    def from_json(cls, data: Iterable[Sequence[int]]) -> "EntityPool":
        return cls(data)


class IntraTracker:
    """Dynamic intra-positions of one Part B span (the paper's Figure 2).

    [START] has intra-position 1 and the token after it 2 (the paper's "[S], x5 -> 1, 2" and
    "[S], x1, x2, x3 -> 1, 2, 3, 4"). Every later token continues the current entity when the
    pool's trie has it as a child of the entity prefix so far (intra + 1); otherwise it starts
    again at 1, as a new entity when the trie has it at its root, as a lone token otherwise.
    """

    def __init__(self, pool: EntityPool):
        self.pool = pool
        self.intra = 1  # [START]
        self.node: dict | None = None
        self.first = True

    def feed(self, token: int) -> int:
        token = int(token)
        if self.first:
            self.first = False
            self.intra = 2
            self.node = self.pool.root.get(token)
        elif self.node is not None and token in self.node:
            self.intra += 1
            self.node = self.node[token]
        else:
            self.intra = 1
            self.node = self.pool.root.get(token)
        return self.intra

    def copy(self) -> "IntraTracker":
        out = IntraTracker.__new__(IntraTracker)
        out.pool, out.intra, out.node, out.first = self.pool, self.intra, self.node, self.first
        return out


def dynamic_intra(pool: EntityPool, span: Sequence[int]) -> list[int]:
    """Intra-positions of ``[START] + span`` under :class:`IntraTracker` (training's Part B)."""
    tracker = IntraTracker(pool)
    return [1] + [tracker.feed(t) for t in span]


def pool_from_texts(tok, finder: EntityFinder, texts: Iterable[str]) -> EntityPool:
    """The token sequences of every entity found in ``texts``, tokenised in context."""
    pool = EntityPool()
    for text in texts:
        enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
        for a, b in token_spans(enc["offset_mapping"], finder.spans(text)):
            pool.add(enc["input_ids"][a:b])
    return pool


def add_renderings(pool: EntityPool, tok, renderings: Iterable[str]) -> EntityPool:
    """Add each rendering tokenised on its own and after a space (the two contexts BPE sees)."""
    strings = [r for r in dict.fromkeys(r.strip() for r in renderings) if r]
    for variant in (strings, [" " + s for s in strings]):
        for i in range(0, len(variant), 4096):
            for ids in tok(variant[i : i + 4096], add_special_tokens=False)["input_ids"]:
                pool.add(ids)
    return pool
