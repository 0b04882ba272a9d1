"""CTR metrics of (label, score) pairs: AUC, the two GAUC forms in use, and log loss.

* **AUC** (scikit-learn ``roc_auc_score``): the probability that a random click scores above a
  random non-click, ties counting one half:
  AUC = (1 / (|P| |N|)) * sum_(p in P) sum_(n in N) [s_p > s_n] + 0.5 [s_p = s_n].
* **GAUC (RecBench)**: the unweighted mean over users of the user's AUC,
  GAUC = (1 / |U|) * sum_u AUC_u, as RecBench / Legommenders compute it (group by user,
  ``roc_auc_score`` per group, plain mean; here AUC_u is its Mann-Whitney form, equal to it and
  vectorised over users, see :func:`user_aucs`). Their protocol gives every user both labels; a
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
    """(AUC_u, n_u) of every user with both labels (in user order), and the number of users without.

    AUC_u is the Mann-Whitney form of ``roc_auc_score`` on the user's pairs, computed for all users
    at once: with r_k the rank of pair k among the user's scores (ties get their mean rank),
    AUC_u = (sum_(k in P_u) r_k - |P_u| (|P_u| + 1) / 2) / (|P_u| |N_u|), which counts a tied
    (click, non-click) pair one half, as the trapezoidal ROC area does.
    """
    y, s = _check(labels, scores)
    u = np.asarray(users).reshape(-1)
    if u.shape != y.shape:
        raise ValueError(f"users and labels differ in length: {u.size} vs {y.size}")
    if u.size == 0:
        return np.zeros(0), np.zeros(0), 0
    order = np.lexsort((s, u))
    u, y, s = u[order], y[order], s[order]
    new_user = np.r_[True, u[1:] != u[:-1]]
    starts = np.flatnonzero(new_user)
    user_of = np.cumsum(new_user) - 1
    position = np.arange(u.size) - starts[user_of] + 1.0  # 1-based rank inside the user
    new_tie = new_user | np.r_[True, s[1:] != s[:-1]]
    tie_start = np.flatnonzero(new_tie)
    tie_of = np.cumsum(new_tie) - 1
    tie_end = np.r_[tie_start[1:], u.size] - 1
    rank = (position[tie_start] + position[tie_end])[tie_of] / 2.0
    n = np.diff(np.r_[starts, u.size]).astype(np.float64)
    pos = np.add.reduceat(y, starts)
    rank_sum = np.add.reduceat(rank * y, starts)
    both = (pos > 0) & (pos < n)
    p, q = pos[both], n[both] - pos[both]
    values = (rank_sum[both] - p * (p + 1) / 2.0) / (p * q)
    return values, n[both], int((~both).sum())


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
