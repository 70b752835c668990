"""Each entity's own reference range (its "head"): the first stretch of its activity.

For short runs that start normal (experiments, machine cycles), calendar nights shared by every
entity are the wrong training range: each run has its own start. With
``window.scaling.entity_head`` an entity's reference is ``[first, first + head)``, ``first`` being
the start of its first non-empty bucket: its scaling is fitted on the buckets inside it, the model
trains on the windows that end inside its first ``1 - validation_fraction`` and validates on the
windows that end in the rest, and the alerts treat the model's scores of its training windows as
in-sample. These functions are that rule, written once.
"""

from __future__ import annotations

import numpy as np

TRAIN, VALIDATION, OUTSIDE = "train", "validation", "outside"


def head_bounds(
    first_s: np.ndarray, head_seconds: int, validation_fraction: float
) -> tuple[np.ndarray, np.ndarray]:
    """Where each entity's training part and head end.

    Args:
        first_s: Start of each entity's first non-empty bucket, epoch seconds, shape (E,).
        head_seconds: Length of the head.
        validation_fraction: Share of the head (its end) that validates, in (0, 1).

    Returns:
        (train_end, head_end), epoch seconds, shape (E,) each: windows ending at or before
        ``train_end`` train, those ending after it and at or before ``head_end`` validate.
    """
    first = np.asarray(first_s, np.float64)
    train_seconds = np.floor(head_seconds * (1.0 - validation_fraction))
    return first + train_seconds, first + float(head_seconds)


def in_head(bucket_s: np.ndarray, first_s: "float | np.ndarray", head_seconds: int) -> np.ndarray:
    """Which buckets (start times, epoch seconds, shape (n,)) lie in ``[first, first + head)``
    (``first_s`` one start, or each bucket's own entity's, shape (n,))."""
    b = np.asarray(bucket_s, np.float64)
    return (b >= first_s) & (b < first_s + head_seconds)


def head_rows(entity: np.ndarray, bucket_s: np.ndarray, padded: np.ndarray, head_seconds: int) -> np.ndarray:
    """Which feature rows lie in their own entity's head (many entities at once).

    Args:
        entity: Each row's entity, shape (n,).
        bucket_s: Each row's bucket start, epoch seconds, shape (n,).
        padded: Whether the row is a padded (empty) bucket, shape (n,).
        head_seconds: Length of the head.

    Returns:
        Mask, shape (n,): the row's bucket lies in ``[first, first + head)``, ``first`` its
        entity's first non-empty bucket; all False for an entity without one.
    """
    import pandas as pd

    b = np.asarray(bucket_s, np.float64)
    real = ~np.asarray(padded, bool)
    first = pd.Series(np.where(real, b, np.inf)).groupby(np.asarray(entity)).transform("min").to_numpy()
    with np.errstate(invalid="ignore"):
        return np.isfinite(first) & in_head(b, first, head_seconds)


def window_roles(
    window_end_s: np.ndarray, first_s: np.ndarray, head_seconds: int, validation_fraction: float
) -> np.ndarray:
    """Each window's role in training: :data:`TRAIN`, :data:`VALIDATION` or :data:`OUTSIDE`.

    Args:
        window_end_s: Window ends (exclusive end of the last bucket), epoch seconds, shape (n,).
        first_s: Its entity's first non-empty bucket start, epoch seconds, shape (n,) (NaN: the
            entity had no event in the fit range, so every window is outside).
        head_seconds: Length of the head.
        validation_fraction: Share of the head that validates.

    Returns:
        Roles, shape (n,), dtype object. A window ending at or before ``first`` holds no event of
        the head and is outside.
    """
    end = np.asarray(window_end_s, np.float64)
    first = np.asarray(first_s, np.float64)
    train_end, head_end = head_bounds(first, head_seconds, validation_fraction)
    with np.errstate(invalid="ignore"):
        started = end > first
        roles = np.where(started & (end <= train_end), TRAIN,
                         np.where(started & (end > train_end) & (end <= head_end), VALIDATION, OUTSIDE))
    return roles.astype(object)


def in_sample(window_end_s: np.ndarray, first_s: float | np.ndarray, train_seconds: float) -> np.ndarray:
    """Which windows the model was fitted on: those ending within ``train_seconds`` of the
    entity's first non-empty bucket (``first_s``: one for all windows, or one per window; never
    where it is unknown: NaN or -inf)."""
    end = np.asarray(window_end_s, np.float64)
    first = np.asarray(first_s, np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(first) & (end <= first + train_seconds)
