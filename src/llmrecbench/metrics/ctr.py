"""CTR metrics of (label, score) pairs: AUC, the two GAUC forms in use, and log loss.

* **AUC** (scikit-learn ``roc_auc_score``): the probability that a random click scores above a
  random non-click, ties counting one half:
  AUC = (1 / (|P| |N|)) * sum_(p in P) sum_(n in N) [s_p > s_n] + 0.5 [s_p = s_n].
* **GAUC (RecBench)**: the unweighted mean over users of the user's AUC,
  GAUC = (1 / |U|) * sum_u AUC_u, as RecBench / Legommenders compute it (group by user,
  ``roc_auc_score`` per group, plain mean). Their protocol gives every user both labels; a
  user with one label has no AUC and is left out here (counted in ``gauc_users_skipped``).
* **GAUC (FuxiCTR)**: the mean of user AUCs weighted by the user's number of pairs, over users
  with both labels only: GAUC = sum_u n_u AUC_u / sum_u n_u (FuxiCTR's ``gAUC``, the DIN
  paper's form).
* **logloss** (scikit-learn ``log_loss``): -(1/N) * sum_k y_k log p_k + (1 - y_k) log(1 - p_k),
  with p clipped to [1e-7, 1 - 1e-7] so one confident miss stays finite.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import log_loss, roc_auc_score

EPS = 1e-7


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.size} vs {s.size}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    return y, s


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUC over all pairs (NaN when only one label is present)."""
    y, s = _check(labels, scores)
    if y.min(initial=1.0) == y.max(initial=0.0):
        return float("nan")
    return float(roc_auc_score(y, s))


def user_aucs(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(AUC_u, n_u) of every user with both labels, and the number of users without."""
    y, s = _check(labels, scores)
    u = np.asarray(users).reshape(-1)
    order = np.argsort(u, kind="stable")
    u, y, s = u[order], y[order], s[order]
    starts = np.flatnonzero(np.r_[True, u[1:] != u[:-1]])
    ends = np.r_[starts[1:], len(u)]
    values, counts, skipped = [], [], 0
    for a, b in zip(starts, ends):
        if y[a:b].min() == y[a:b].max():
            skipped += 1
            continue
        values.append(roc_auc_score(y[a:b], s[a:b]))
        counts.append(b - a)
    return np.asarray(values, dtype=np.float64), np.asarray(counts, dtype=np.float64), skipped


def ctr_metrics(users: np.ndarray, labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """AUC, both GAUC forms and log loss of probabilities ``scores`` (see the module docstring)."""
    y, p = _check(labels, scores)
    values, counts, skipped = user_aucs(users, y, p)
    return {
        "AUC": auc(y, p),
        "GAUC (RecBench)": float(values.mean()) if values.size else float("nan"),
        "GAUC (FuxiCTR)": float((values * counts).sum() / counts.sum()) if values.size else float("nan"),
        "logloss": float(log_loss(y, np.clip(p, EPS, 1 - EPS), labels=[0.0, 1.0])),
        "gauc_users": int(values.size),
        "gauc_users_skipped": int(skipped),
    }
