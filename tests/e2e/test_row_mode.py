"""Row mode through the CLI: window -> train -> score, with the night's own threshold.

Two normal nights train and validate a small autoencoder on sensor-like rows (one event = one
sample); a third night holds 30% anomalous rows (a broken relation between two measures). The
model's validation-tail threshold alone would flag few of them; the night's scores, read next to
the validation scores, get their own threshold (``score.night_threshold``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

D5, D6, D7 = dt.date(2026, 1, 5), dt.date(2026, 1, 6), dt.date(2026, 1, 7)


def _events(rng: np.random.Generator, night: dt.date, n: int, anomalous: int) -> pd.DataFrame:
    x = rng.normal(10.0, 1.0, n)
    y = 2.0 * x + rng.normal(0.0, 0.3, n)
    z = rng.normal(5.0, 0.5, n)
    bad = np.zeros(n, dtype=bool)
    bad[rng.choice(n, anomalous, replace=False)] = True
    y = np.where(bad, y + rng.choice([-1.0, 1.0], n) * rng.uniform(6.0, 10.0, n), y)
    seconds = np.arange(n) * 60
    return pd.DataFrame({
        "event_id": [f"{night}-{i}" for i in range(n)], "entity": "press-1",
        "event_time": pd.Timestamp(night) + pd.to_timedelta(seconds, unit="s"),
        "x": x, "y": y, "z": z, "event_date": night, "anomalous": bad,
    })


def _project(warehouse: Path) -> dict:
    return {
        "storage": {"warehouse": str(warehouse), "schema": "adspark"},
        "spark": {"master": "local[2]", "shuffle_partitions": 2},
        "source": {"table": "events", "timestamp": {"column": "event_time"}, "date_column": "event_date",
                   "entity": ["entity"], "event_id": "event_id", "late_days": 0,
                   "measures": [{"name": "x"}, {"name": "y"}, {"name": "z"}]},
        "discretize": {"bucket": "1h", "calendar": False},
        "window": {"mode": "rows", "size": 1, "stride": 1,
                   "scaling": {"method": "minmax", "fit_from": str(D5), "fit_to": str(D6)}},
        "train": {"backend": "local", "validation_fraction": 0.5, "exclude_labeled": False,
                  "detector": {"type": "dense_ae", "hidden": [8], "bottleneck": 2, "epochs": 80, "batch_size": 32,
                               "patience": 10, "seed": 0, "learning_rate": 0.003},
                  "threshold": {"method": "pot", "tail": 1e-3}},
        "intervals": {"gap": "0s", "lookback_days": 0},
    }


def test_a_night_with_many_anomalies_gets_its_own_threshold(spark, tmp_path, capsys):
    from pyspark.sql import functions as F

    from adspark.cli import main
    from adspark.config import StorageConfig
    from adspark.storage import TableStore

    rng = np.random.default_rng(0)
    events = pd.concat([_events(rng, D5, 800, 0), _events(rng, D6, 800, 0), _events(rng, D7, 1000, 300)],
                       ignore_index=True)
    store = TableStore(spark, StorageConfig(warehouse=str(tmp_path / "wh"), schema="adspark"))
    spark.createDataFrame(events.drop(columns="anomalous")).write.format("delta").partitionBy("event_date").save(
        store.path("events"))
    conf = tmp_path / "conf.yaml"
    conf.write_text(yaml.safe_dump(_project(tmp_path / "wh")))

    def cli(*args: str) -> str:
        capsys.readouterr()
        code = main([args[0], "--conf", str(conf), *args[1:]])
        out = capsys.readouterr()
        assert code == 0, out.err[-3000:]
        return out.out

    cli("window", "--from", str(D5), "--to", str(D7))
    cli("train", "--from", str(D5), "--to", str(D6))
    model = store.read("models").first()
    first = cli("score", "--from", str(D6), "--to", str(D7))
    nights = first.split("night thresholds:")[1].split(")):")[0]
    assert nights.strip().startswith(str(D7)) and str(D6) not in nights

    scores = store.read("scores").select("window_id", "date", "score", "threshold", "is_anomaly").toPandas()
    normal_night = scores[scores.date == D6]
    assert (normal_night.threshold == model.threshold).all()  # an ordinary night keeps the model's
    night = scores[scores.date == D7].merge(
        events[["event_id", "anomalous"]], left_on="window_id", right_on="event_id")
    assert len(night) == 1000 and night.threshold.nunique() == 1
    assert night.threshold.iloc[0] < model.threshold
    truth, flag = night.anomalous.to_numpy(), night.is_anomaly.to_numpy()
    recall, precision = flag[truth].mean(), truth[flag].mean()
    at_model = (night.score > model.threshold).to_numpy()
    assert recall > 0.8 and precision > 0.8, (recall, precision)
    assert recall > at_model[truth].mean() + 0.2  # what the model's threshold alone would catch

    cli("score", "--from", str(D6), "--to", str(D7))  # a rerun gives the same verdicts
    again = store.read("scores").select("window_id", "threshold", "is_anomaly").toPandas()
    pd.testing.assert_frame_equal(
        again.sort_values("window_id").reset_index(drop=True),
        scores[["window_id", "threshold", "is_anomaly"]].sort_values("window_id").reset_index(drop=True))
    methods = {r.threshold_method for r in store.read("intervals").select("threshold_method").distinct().collect()}
    assert methods == {"night mixture"}
    assert store.read("scores").where(F.col("is_anomaly") & (F.col("date") == D7)).count() == int(flag.sum())
