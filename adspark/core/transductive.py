"""A night's own threshold, from its scores next to the validation scores (pure numpy).

A threshold fitted on normal validation scores (a 1e-3 tail, say) sits above most anomalies when
anomalies are many and only moderately unusual: it controls false alarms and nothing else. When a
night holds clearly more high scores than the validation law predicts, the night itself says how
many anomalies there are and where they start. adspark reads the night's scores as a mixture

    F_night(s) = pi0 x F_val(s) + (1 - pi0) x F_anomalous(s)

of the normal law (known from the validation scores stored with the model) and an unknown law of
anomalies, assumed to score higher than most normal rows:

1. **Normal share** ``pi0`` (mixture proportion estimation, as in positive-unlabeled learning):
   below the validation quartiles hardly any anomaly scores, so ``F_night(Q_val(q)) / q`` is
   ``pi0`` plus a little; the smallest of it over ``q`` in :data:`LEVELS` is the estimate.
2. **Guard**: at one of those quantiles at least, the night's share below it must fall short of
   the validation's by more than ``z`` standard errors (binomial noise of the night's count and
   of the validation quantile); and the chosen threshold must keep an estimated precision of at
   least ``min_precision``. Otherwise the
   night is ordinary (a few anomalies among many rows: the usual nightly case), and the model's
   fitted threshold stays.
3. **Threshold**: for each candidate ``t`` (the night's quantiles), flagged ``N(t)`` rows hold an
   expected ``pi0 n (1 - F_val(t))`` normal ones; the estimated true positives are the rest, and
   ``t`` maximizes the estimated F1 ``2 TP / (N + n (1 - pi0))``.

Both sides are quantile summaries (equally spaced levels from 0 to 1), so the night's scores
never have to be collected: Spark's ``percentile_approx`` gives them.

When it applies: row mode (or bucket mode with the adaptive alerts off), on nights where a
sizeable share of rows is anomalous (an attack burst, a test set, a run of a faulty machine). It
assumes the normal rows of the night score like the validation rows; a night whose normal rows
drift upward passes the guard too, and then more rows are flagged than the model's threshold
would flag (the drift figures ``psi``/``ks`` of ``nightly`` show such nights).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVELS = (0.25, 0.5, 0.75)  # validation quantiles where the normal share is read


@dataclass(frozen=True)
class NightThreshold:
    """What the night's scores say.

    Attributes:
        applied: Whether the night's threshold replaces the model's.
        value: The threshold (scores above it are anomalies); NaN when not applied.
        normal_share: Estimated share of normal rows (``pi0``).
        z: The largest shortfall of the night's share below a validation quantile, in standard errors.
        precision: Estimated precision at ``value``.
        recall: Estimated recall at ``value``.
        reason: Why it was or was not applied (one line).
    """

    applied: bool
    value: float
    normal_share: float
    z: float
    precision: float
    recall: float
    reason: str

    def params(self) -> dict[str, float | str | bool]:
        """JSON-ready fields (for logs and the run message)."""
        return {"applied": self.applied, "normal_share": self.normal_share, "z": self.z,
                "precision": self.precision, "recall": self.recall, "reason": self.reason}


def _cdf(quantiles: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(score <= x) under a law given by quantiles at equally spaced levels (right-continuous at
    ties: a value repeated over several levels counts them all; :func:`adspark.core.drift._cdf`
    interpolates through ties, which is enough for drift figures but would count the rows tied at a
    candidate threshold as above it here)."""
    q = np.maximum.accumulate(np.asarray(quantiles, dtype=np.float64))
    levels = np.linspace(0.0, 1.0, len(q))
    x = np.asarray(x, dtype=np.float64)
    upper = np.searchsorted(q, x, side="right")  # quantiles <= x
    lo = np.clip(upper - 1, 0, len(q) - 1)
    hi = np.clip(upper, 0, len(q) - 1)
    span = q[hi] - q[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(span > 0, (x - q[lo]) / span, 0.0)
    inside = levels[lo] + np.clip(frac, 0.0, 1.0) * (levels[hi] - levels[lo])
    return np.where(upper == 0, 0.0, np.where(upper >= len(q), 1.0, inside))


def night_threshold(
    night_q: np.ndarray, n: int, reference_q: np.ndarray, n_reference: int,
    z: float = 4.0, min_precision: float = 0.5,
) -> NightThreshold:
    """The night's threshold from its score quantiles and the validation scores' quantiles.

    Args:
        night_q: The night's scores at equally spaced levels from 0 to 1, shape (L + 1,), L >= 10.
        n: Rows scored that night.
        reference_q: Validation scores at equally spaced levels from 0 to 1, shape (R + 1,).
        n_reference: Validation rows behind ``reference_q``.
        z: Standard errors the anomalous share must exceed.
        min_precision: Smallest estimated precision at the chosen threshold.

    Returns:
        The verdict; ``applied`` False leaves the model's threshold in force.
    """
    nq = np.maximum.accumulate(np.asarray(night_q, dtype=np.float64))
    rq = np.asarray(reference_q, dtype=np.float64)
    if nq.size < 11 or rq.size < 5 or n < 1 or n_reference < 1 or not (np.isfinite(nq).all() and np.isfinite(rq).all()):
        return NightThreshold(False, np.nan, 1.0, 0.0, np.nan, np.nan, "too few quantiles or rows")
    levels = np.asarray(LEVELS)
    at = np.interp(levels, np.linspace(0.0, 1.0, rq.size), np.maximum.accumulate(rq))
    below = _cdf(nq, at)
    pi0 = float(min(1.0, (below / levels).min()))
    # evidence of an excess of high scores: the night's share below a validation quantile q is
    # short of q by more than binomial noise (of the night's count and of the quantile itself)
    z_share = float(((levels - below) / np.sqrt(levels * (1 - levels) * (1.0 / n + 1.0 / n_reference))).max())
    if z_share < z:
        return NightThreshold(False, np.nan, pi0, z_share, np.nan, np.nan,
                              f"the night's scores are within {z:g} standard errors of the validation law")
    candidates = np.unique(nq)
    flagged = n * (1.0 - _cdf(nq, candidates))  # rows strictly above each candidate
    normal = pi0 * n * (1.0 - _cdf(rq, candidates))
    tp = np.clip(flagged - normal, 0.0, None)
    anomalous = n * (1.0 - pi0)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(flagged > 0, 2.0 * tp / (flagged + anomalous), 0.0)
    j = int(np.argmax(f1))
    precision = float(tp[j] / flagged[j]) if flagged[j] > 0 else 0.0
    recall = float(min(1.0, tp[j] / anomalous))
    if precision < min_precision:
        return NightThreshold(False, np.nan, pi0, z_share, precision, recall,
                              f"estimated precision {precision:.3g} below {min_precision:g}")
    return NightThreshold(True, float(candidates[j]), pi0, z_share, precision, recall,
                          f"anomalous share {1 - pi0:.3g} ({z_share:.1f} standard errors)")
