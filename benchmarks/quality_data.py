"""Labeled datasets of the quality benchmark, as plain pandas frames (no Spark).

Files live in ``benchmarks/data/`` (gzip'd copies of ``../shared/data``; sources and licences in
``benchmarks/data/README.md``). Each loader returns a :class:`Dataset`: normal training rows,
test rows with a 0/1 label and a group (attack category, beat class), the column contract and
the published figures to compare with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parent / "data"

# Attack types of KDDTest+ absent from attack_types.csv, by the usual NSL-KDD grouping.
_TEST_ONLY_CATEGORIES = {
    "apache2": "dos", "mailbomb": "dos", "processtable": "dos", "udpstorm": "dos",
    "mscan": "probe", "saint": "probe",
    "named": "r2l", "sendmail": "r2l", "snmpgetattack": "r2l", "snmpguess": "r2l", "xlock": "r2l",
    "xsnoop": "r2l", "worm": "r2l",
    "httptunnel": "u2r", "ps": "u2r", "sqlattack": "u2r", "xterm": "u2r",
}


@dataclass(frozen=True)
class Dataset:
    """One labeled dataset, split for training on normal rows only.

    Attributes:
        name: Short name (also the benchmark's ``--datasets`` key).
        train: Normal rows to train and validate on (measures + categoricals), shape (n, F).
        test: Test rows, same columns, shape (m, F).
        label: 1 = anomaly for each test row, shape (m,).
        group: A category per test row (attack category, beat class), shape (m,).
        measures: Numeric columns.
        categoricals: Categorical columns (one-hot in row mode, vocabulary from training rows).
        published: Published figures, ``{detector: {"roc_auc": ..., "f1": ...}}``.
        note: How the split differs from the published protocol.
        scaling: ``window.scaling.method`` (``none`` for data normalized at the source).
    """

    name: str
    train: pd.DataFrame
    test: pd.DataFrame
    label: np.ndarray
    group: np.ndarray
    measures: list[str]
    categoricals: list[str] = field(default_factory=list)
    published: dict[str, dict[str, float]] = field(default_factory=dict)
    note: str = ""
    scaling: str = "minmax"


def kdd_deepad() -> Dataset:
    """KDD Cup 99 as prepared for the deepad comparison: 18 continuous features.

    Trains on ``val_inliers.csv`` (15,864 normal connections; the full 63k training file is not
    public); tests on the exact published test set (8,000 normal + 2,000 attacks).
    """
    folder = DATA / "kdd-deepad"
    train = pd.read_csv(folder / "val_inliers.csv.gz").drop(columns="target")
    inliers = pd.read_csv(folder / "test_inliers.csv.gz")
    outliers = pd.read_csv(folder / "test_outliers.csv.gz")
    test = pd.concat([inliers, outliers], ignore_index=True)
    label = test.pop("target").to_numpy(np.int8)
    return Dataset(
        name="kdd",
        train=train,
        test=test,
        label=label,
        group=np.where(label == 1, "attack", "normal"),
        measures=list(train.columns),
        published={
            "AE (deepad)": {"roc_auc": 0.956, "f1": 0.515},
            "VAE (deepad)": {"roc_auc": 0.947, "f1": 0.829},
            "BiGAN (deepad)": {"roc_auc": 0.947},
            "OCSVM (deepad)": {"roc_auc": 0.958, "f1": 0.868},
            "PCA (deepad)": {"roc_auc": 0.754},
        },
        note="trained on val_inliers.csv (15,864 rows), not the full 63k training pool; "
        "published F1 at the best-accuracy threshold",
    )


def ecg5000(seed: int = 0, train_share: float = 0.6) -> Dataset:
    """ECG5000 heartbeats (140 points each), the 500-beat split.

    A seeded ``train_share`` of the 292 normal beats (class 1) trains; the other normal beats and
    all 208 abnormal beats (classes 2-5) test.
    """
    raw = np.loadtxt(DATA / "ecg5000" / "ECG5000_TRAIN.txt.gz")
    cls = raw[:, 0].astype(int)
    values = pd.DataFrame(raw[:, 1:], columns=[f"v{i:03d}" for i in range(raw.shape[1] - 1)])
    normal = np.flatnonzero(cls == 1)
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(normal, int(round(train_share * len(normal))), replace=False))
    rest = np.setdiff1d(np.arange(len(cls)), picked)
    return Dataset(
        name="ecg",
        train=values.iloc[picked].reset_index(drop=True),
        test=values.iloc[rest].reset_index(drop=True),
        label=(cls[rest] != 1).astype(np.int8),
        group=np.array([f"class {c}" for c in cls[rest]]),
        measures=list(values.columns),
        published={"AE (published, full ECG5000)": {"roc_auc": 0.96}},
        scaling="none",  # UCR beats are z-normalized one by one already
        note=f"500-beat split; {len(picked)} normal beats train (seed {seed}), "
        f"{len(rest)} beats test ({int((cls[rest] != 1).sum())} abnormal)",
    )


def nsl_kdd() -> Dataset:
    """NSL-KDD: normal rows of ``KDDTrain+_20Percent`` train, ``KDDTest+`` tests.

    41 features (3 categorical: protocol_type, service, flag); the test set holds attack types
    never seen in training (group ``unseen:<category>``).
    """
    folder = DATA / "nsl-kdd"
    fields = pd.read_csv(folder / "field_names.csv", header=None, names=["name", "kind"])
    names = [*fields["name"], "label", "difficulty"]
    train = pd.read_csv(folder / "KDDTrain+_20Percent.txt.gz", header=None, names=names)
    test = pd.read_csv(folder / "KDDTest+.txt.gz", header=None, names=names)
    lines = (folder / "attack_types.csv").read_text().splitlines()
    category = {**_TEST_ONLY_CATEGORIES, **dict(line.split(",", 1) for line in lines if "," in line)}
    seen = set(train["label"])
    groups = np.array([
        "normal" if a == "normal" else (category.get(a, "other") if a in seen else f"unseen:{category.get(a, 'other')}")
        for a in test["label"]
    ])
    categoricals = list(fields.loc[fields["kind"] == "symbolic", "name"])
    measures = [n for n in fields["name"] if n not in categoricals]
    label = (test["label"] != "normal").to_numpy(np.int8)
    normal_train = train[train["label"] == "normal"].drop(columns=["label", "difficulty"]).reset_index(drop=True)
    return Dataset(
        name="nslkdd",
        train=normal_train,
        test=test.drop(columns=["label", "difficulty"]),
        label=label,
        group=groups,
        measures=measures,
        categoricals=categoricals,
        note=f"{len(normal_train)} normal rows of KDDTrain+_20Percent train; KDDTest+ "
        f"({int(label.sum())} attacks, {int((np.char.startswith(groups, 'unseen')).sum())} of unseen types)",
    )


LOADERS = {"kdd": kdd_deepad, "ecg": ecg5000, "nslkdd": nsl_kdd}
