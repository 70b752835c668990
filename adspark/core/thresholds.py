"""Thresholds on anomaly scores, fitted from error distributions or from labels (pure numpy/scipy).

Methods (higher score = more anomalous; a score above the threshold is an anomaly):

- ``quantile``: the q-quantile of validation scores (e.g. 0.995).
- ``sigma``: mean + k x standard deviation.
- ``distribution``: fit candidate distributions (gamma, log-normal, non-central t) by maximum
  likelihood, keep the one with the smallest Kolmogorov-Smirnov statistic, threshold where its tail
  probability equals ``tail`` (so a score reads as a probability under the fitted law).
- ``pot``: peaks over threshold (extreme value theory, as in SPOT, Siffer et al. KDD 2017): a
  generalized Pareto law fitted to the excesses over the ``level`` empirical quantile, threshold
  where the tail probability equals ``tail``. Models only the tail, so heavy-tailed reconstruction
  errors (where a law fitted to the bulk extrapolates wildly) get a sane threshold.
- ``robust``: ``exp(median + k x 1.4826 x MAD)`` of the log scores (for positive scores, such as
  reconstruction errors; on the raw scores otherwise). A robust location and spread of the normal
  scores instead of an extrapolated extreme tail: with few validation scores, or a tail that sits
  above most anomalies, it flags what lies clearly outside the bulk (k = 3 is about the 0.13%
  upper tail of a log-normal law).
- ``supervised``: with labels, the threshold maximizing F-beta.

Per-entity thresholds come from each entity's own scores, shrunk towards the global threshold
when an entity has few scores: ``t_e = (n_e * t_local + k * t_global) / (n_e + k)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from adspark.core.scaling import MAD_SIGMA, robust_sigma

Method = Literal["quantile", "sigma", "distribution", "pot", "robust", "supervised"]
CANDIDATES = ("gamma", "lognorm", "nct")


@dataclass(frozen=True)
class Threshold:
    """A fitted threshold.

    Attributes:
        method: How it was fitted.
        value: Scores above it are anomalies.
        params: What the method used or found (quantile, k, distribution name and parameters,
            KS statistic, best F-beta ...), JSON-serializable.
    """

    method: str
    value: float
    params: dict = field(default_factory=dict)


def _clean(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("no finite scores to fit a threshold on")
    return s


def fit_quantile(scores: np.ndarray, q: float = 0.995) -> Threshold:
    """The q-quantile of the scores, shape (n,)."""
    if not 0 < q < 1:
        raise ValueError(f"quantile q must be in (0, 1), got {q}")
    return Threshold("quantile", float(np.quantile(_clean(scores), q)), {"q": q})


def fit_sigma(scores: np.ndarray, k: float = 3.0) -> Threshold:
    """mean + k * std of the scores, shape (n,)."""
    s = _clean(scores)
    mean, std = float(s.mean()), float(s.std())
    return Threshold("sigma", mean + k * std, {"k": k, "mean": mean, "std": std})


def fit_distribution(
    scores: np.ndarray, tail: float = 1e-3, candidates: tuple[str, ...] = CANDIDATES,
    max_fit: int = 20_000, seed: int = 0,
) -> Threshold:
    """Fit candidate laws to the scores; threshold at the chosen law's ``1 - tail`` quantile.

    Args:
        scores: Validation scores, shape (n,), n >= 20.
        tail: Tail probability P(score > threshold) under the fitted law.
        candidates: scipy.stats names among ``gamma``, ``lognorm``, ``nct``.
        max_fit: Fit on at most this many scores (a seeded sample) to bound the cost.
        seed: Seed of that sample.

    Returns:
        The threshold; ``params`` holds the chosen law, its parameters, the KS statistic of every
        candidate that could be fitted.
    """
    from scipy import stats

    s = _clean(scores)
    if s.size < 20:
        raise ValueError(f"distribution fitting needs at least 20 scores, got {s.size}")
    if not 0 < tail < 1:
        raise ValueError(f"tail must be in (0, 1), got {tail}")
    if s.size > max_fit:
        s = np.random.default_rng(seed).choice(s, max_fit, replace=False)
    fits: dict[str, tuple[float, tuple[float, ...]]] = {}
    for name in candidates:
        law = getattr(stats, name)
        try:
            with np.errstate(all="ignore"):
                params = law.fit(s, floc=0.0) if name in ("gamma", "lognorm") and s.min() > 0 else law.fit(s)
            ks = float(stats.kstest(s, name, args=params).statistic)
        except (ValueError, RuntimeError, FloatingPointError):
            continue
        if np.isfinite(ks) and all(np.isfinite(params)):
            fits[name] = (ks, tuple(float(p) for p in params))
    if not fits:
        raise ValueError(f"none of {candidates} could be fitted to the scores")
    best = min(fits, key=lambda n: fits[n][0])
    ks, params = fits[best]
    value = float(getattr(stats, best).isf(tail, *params))
    return Threshold(
        "distribution", value,
        {"tail": tail, "law": best, "law_params": list(params),
         "ks": {n: round(v[0], 6) for n, v in fits.items()}},
    )


def fit_pot(scores: np.ndarray, tail: float = 1e-3, level: float = 0.98) -> Threshold:
    """Peaks over threshold: a generalized Pareto law on the excesses over a high quantile.

    With ``u`` the ``level`` quantile, ``N_u`` the scores above it out of ``n`` and ``(xi, sigma)``
    the GPD fitted to the excesses ``s - u`` (location 0), the threshold is
    ``u + sigma / xi * ((tail * n / N_u) ** -xi - 1)`` (``u - sigma * log(tail * n / N_u)`` when
    ``xi`` is 0), i.e. P(score > threshold) = ``tail``.

    Args:
        scores: Validation scores, shape (n,); with fewer than 100 (or fewer than 10 distinct
            peaks) the empirical ``1 - tail`` quantile is returned (``params["fallback"]``).
        tail: Tail probability of the threshold, below ``1 - level``.
        level: Quantile above which scores are peaks (their excesses are fitted).

    Returns:
        The threshold; ``params`` holds ``u``, ``xi``, ``sigma``, the number of peaks.
    """
    from scipy import stats

    s = _clean(scores)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if not 0 < tail < 1 - level:
        raise ValueError(f"tail {tail} must be in (0, 1 - level = {1 - level:.6g})")
    u = float(np.quantile(s, level))
    excess = s[s > u] - u
    if s.size < 100 or excess.size < 10 or np.ptp(excess) == 0:
        # too few scores or distinct peaks to fit a tail: the empirical quantile is the honest answer
        value = float(np.quantile(s, 1 - tail))
        return Threshold("pot", value, {"tail": tail, "level": level, "u": u, "peaks": int(excess.size),
                                        "fallback": f"quantile ({s.size} scores, {excess.size} peaks)"})
    with np.errstate(all="ignore"):
        xi, _, sigma = stats.genpareto.fit(excess, floc=0.0)
    ratio = tail * s.size / excess.size
    if abs(xi) < 1e-9:
        value = u - sigma * np.log(ratio)
    else:
        value = u + sigma / xi * (ratio ** (-xi) - 1.0)
    return Threshold(
        "pot", float(value),
        {"tail": tail, "level": level, "u": u, "xi": float(xi), "sigma": float(sigma), "peaks": int(excess.size)},
    )


def fit_robust(scores: np.ndarray, k: float = 3.0) -> Threshold:
    """``median + k x 1.4826 x MAD``, on the log scale when every score is positive.

    Args:
        scores: Validation scores, shape (n,).
        k: Robust sigmas above the median.

    Returns:
        The threshold; ``params`` holds the scale used (``log`` or ``raw``), median and MAD.
    """
    s = _clean(scores)
    log = bool((s > 0).all())
    v = np.log(s) if log else s
    median = float(np.median(v))
    mad = robust_sigma(v) / MAD_SIGMA or 1e-12  # the MAD, or its equivalent from the std when it is 0
    cut = median + k * MAD_SIGMA * mad
    value = float(np.exp(cut)) if log else float(cut)
    return Threshold("robust", value, {"k": k, "scale": "log" if log else "raw", "median": median, "mad": mad})


def tail_probability(scores: np.ndarray, threshold: Threshold) -> np.ndarray:
    """P(score' > score) under a ``distribution`` threshold's law, shape (n,)."""
    from scipy import stats

    if threshold.method != "distribution":
        raise ValueError(f"tail probabilities need a distribution threshold, got {threshold.method}")
    law = getattr(stats, threshold.params["law"])
    return law.sf(np.asarray(scores, dtype=np.float64), *threshold.params["law_params"])


def fit_supervised(scores: np.ndarray, labels: np.ndarray, beta: float = 1.0) -> Threshold:
    """The threshold that maximizes F-beta on labeled scores.

    Args:
        scores: Shape (n,).
        labels: 1 = anomaly, 0 = normal, shape (n,).
        beta: Weight of recall (beta > 1 favours recall).

    Raises:
        ValueError: Without both classes.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores {s.shape} and labels {y.shape} differ in shape")
    keep = np.isfinite(s)
    s, y = s[keep], y[keep]
    if y.all() or not y.any():
        raise ValueError("supervised thresholds need both anomalous and normal labels")
    order = np.argsort(-s, kind="stable")
    s_sorted, y_sorted = s[order], y[order]
    tp = np.cumsum(y_sorted)
    fp = np.cumsum(~y_sorted)
    last_of_tie = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    tp, fp, cut = tp[last_of_tie], fp[last_of_tie], s_sorted[last_of_tie]
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    b2 = beta * beta
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(precision + recall > 0, (1 + b2) * precision * recall / (b2 * precision + recall), 0.0)
    i = int(np.argmax(f))
    below = s[s < cut[i]]
    value = float((cut[i] + below.max()) / 2) if below.size else float(np.nextafter(cut[i], -np.inf))
    return Threshold(
        "supervised", value,
        {"beta": beta, "f_beta": float(f[i]), "precision": float(precision[i]), "recall": float(recall[i])},
    )


def fit_threshold(
    scores: np.ndarray, method: Method, labels: np.ndarray | None = None, **options: Any
) -> Threshold:
    """Dispatch to the fitter of ``method`` (options: q, k, tail, level, beta)."""
    if method == "quantile":
        return fit_quantile(scores, **options)
    if method == "sigma":
        return fit_sigma(scores, **options)
    if method == "distribution":
        return fit_distribution(scores, **options)
    if method == "pot":
        return fit_pot(scores, **options)
    if method == "robust":
        return fit_robust(scores, **options)
    if method == "supervised":
        if labels is None:
            raise ValueError("the supervised method needs labels")
        return fit_supervised(scores, labels, **options)
    raise ValueError(f"unknown threshold method {method!r}; expected quantile, sigma, distribution, pot, robust or supervised")


def shrink(local: float, n: int, global_value: float, strength: float) -> float:
    """Shrink an entity's threshold towards the global one: weight n vs ``strength``."""
    if n <= 0:
        return global_value
    return (n * local + strength * global_value) / (n + strength)


def per_entity_thresholds(
    entities: np.ndarray, scores: np.ndarray, method: Method, global_threshold: Threshold,
    strength: float = 50.0, min_scores: int = 20, **options: Any,
) -> dict[str, float]:
    """Thresholds per entity from its own scores, shrunk towards the global threshold.

    Args:
        entities: Entity of each score, shape (n,).
        scores: Shape (n,).
        method: An unsupervised method.
        global_threshold: The global fit (used alone below ``min_scores``).
        strength: Pseudo-count of the global value in the shrinkage.
        min_scores: Fewer scores than this: the global value.

    Returns:
        ``{entity: threshold}``.
    """
    e = np.asarray(entities)
    s = np.asarray(scores, dtype=np.float64)
    out: dict[str, float] = {}
    for entity in np.unique(e):
        mine = s[e == entity]
        mine = mine[np.isfinite(mine)]
        if mine.size < min_scores:
            out[str(entity)] = global_threshold.value
            continue
        local = fit_threshold(mine, method, **options).value
        out[str(entity)] = shrink(local, mine.size, global_threshold.value, strength)
    return out
