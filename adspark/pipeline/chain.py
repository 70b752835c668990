"""``adspark run``: discretize -> window -> train -> score -> evaluate in one Spark session.

For a user iterating on a config over their own data: every step of a range in one process (one
JVM start, one Delta start), each stage handing the next what it made (the trained model goes to
scoring by object, not looked up again). Training reads ``[start, train_to]``; scoring and
evaluation ``[train_to + 1, end]`` (with ``window.scaling.entity_head``: training reads each
entity's head, scoring and evaluation the whole range); evaluation runs when the labels table
exists.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from adspark.config import (
    DiscretizeJobConfig,
    EvaluateJobConfig,
    ScoreJobConfig,
    TrainJobConfig,
    WindowJobConfig,
)
from adspark.errors import ConfigError
from adspark.progress import progress
from adspark.storage import TableStore


@dataclass(frozen=True)
class ChainConfigs:
    """The job configs of the chain's stages (built from one YAML file)."""

    discretize: DiscretizeJobConfig
    window: WindowJobConfig
    train: TrainJobConfig
    score: ScoreJobConfig
    evaluate: EvaluateJobConfig


@dataclass(frozen=True)
class ChainResult:
    """What the chain did: one line per stage, and the model it trained."""

    lines: tuple[str, ...]
    model_id: str


def chain_ranges(
    cfgs: ChainConfigs, start: dt.date, end: dt.date, train_to: dt.date | None
) -> tuple[dt.date, dt.date]:
    """The last training night and the first scored night of a chain over ``[start, end]``
    (checked before Spark starts).

    Raises:
        ConfigError: See :func:`run_chain`.
    """
    heads = cfgs.window.window.scaling.entity_head
    if heads is not None:
        if train_to is not None:
            raise ConfigError(
                f"--train-to {train_to}: with window.scaling.entity_head {heads} each entity trains on its "
                "own first stretch and the whole range is scored; leave --train-to out"
            )
        return end, start
    train_to = train_to or cfgs.window.window.scaling.fit_to
    if not start <= train_to < end:
        raise ConfigError(f"--train-to {train_to} must be on or after --from {start} and before --to {end}")
    return train_to, train_to + dt.timedelta(days=1)


def run_chain(
    store: TableStore, cfgs: ChainConfigs, start: dt.date, end: dt.date, train_to: dt.date | None = None,
) -> ChainResult:
    """Run every stage over ``[start, end]``, training on ``[start, train_to]`` (default
    ``window.scaling.fit_to``) and scoring the nights after it; with
    ``window.scaling.entity_head`` training on each entity's head and scoring the whole range.

    Raises:
        ConfigError: ``train_to`` is not inside ``[start, end)`` (nothing would be left to score),
            or given with ``entity_head`` (each entity's head is its training range).
    """
    from adspark.pipeline.discretize import run_discretize
    from adspark.pipeline.evaluate import run_evaluate
    from adspark.pipeline.score import run_score
    from adspark.pipeline.train import run_train
    from adspark.pipeline.window import run_window

    train_to, first = chain_ranges(cfgs, start, end, train_to)
    evaluate = store.exists(cfgs.evaluate.evaluate.labels_table)
    lines: list[str] = []
    with progress(f"run {start}..{end}", 5 if evaluate else 4) as step:

        def timed(name: str, message: str, t0: float) -> None:
            lines.append(f"[{name} {time.perf_counter() - t0:.0f} s] {message}")
            step(name)

        t0 = time.perf_counter()
        timed("discretize", run_discretize(store, cfgs.discretize, start, end).message, t0)
        t0 = time.perf_counter()
        timed("window", run_window(store, cfgs.window, start, end).message, t0)
        t0 = time.perf_counter()
        run, model = run_train(store, cfgs.train, start, train_to)
        timed("train", run.message, t0)
        t0 = time.perf_counter()
        timed("score", run_score(store, cfgs.score, first, end, model=model).message, t0)
        if evaluate:
            eval_cfg = cfgs.evaluate.model_copy(
                update={"evaluate": cfgs.evaluate.evaluate.model_copy(update={"model_id": model.model_id})}
            )
            t0 = time.perf_counter()
            timed("evaluate", run_evaluate(store, eval_cfg, first, end).message, t0)
    return ChainResult(tuple(lines), model.model_id)
