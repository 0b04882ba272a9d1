"""RecSysLLM (Chu et al. 2023, ``../shared/papers/002_7c52c40f14ded1e9.txt``) on a causal LM.

The paper's method in four parts, one module each:

* :mod:`.entities`  – entities (item renderings, ``user_<id>``) as token runs; the entity pool
  (a trie over their token sequences) that segments Part A and drives dynamic positions;
* :mod:`.blanks`    – GLM-style blank selection at entity, sentence and document level (spans
  never cut an entity), plus the random-span ablation;
* :mod:`.layout`    – Part A (corrupted text, one [MASK] per span) + Part B ([START] span
  [END] per span, chronological), the 4-D attention mask (A bidirectional, B causal) and the
  2-D positions (inter = position in Part A, intra = position inside an entity);
* :mod:`.model`     – the zero-initialised intra-position embedding and :class:`RecSysLLMLM`,
  the :class:`~llmrecbench.llm.generate.CausalLM` whose prefill builds the mask and positions
  from token ids and whose decoding steps assign intra ids dynamically from the pool.
"""
