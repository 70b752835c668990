# Databricks notebook source
# MAGIC %md
# MAGIC # 2. Train and inspect a model
# MAGIC Train the configured detector on the windowed history (notebook 1), then look at its
# MAGIC threshold, its validation score distribution and how well it reconstructs a window.

# COMMAND ----------

import datetime as dt

import numpy as np

from adspark.config import TrainJobConfig, build_job_config
from adspark.core.drift import QUANTILE_LEVELS
from adspark.core.report import ReportData, run_figures
from adspark.models.lookup import load_detector
from adspark.notebook import open_notebook
from adspark.pipeline.train import run_train

nb = open_notebook(globals())
conf = nb.conf
start = dt.date.fromisoformat(str(conf["generate"]["start"]))
history_end = start + dt.timedelta(days=int(conf["generate"]["anomaly_free_days"]) - 1)

# COMMAND ----------

run, model = run_train(nb.store, build_job_config(TrainJobConfig, conf), start, history_end)
print(run.message)
nb.sql("select model_id, detector, threshold_method, round(threshold, 4) as threshold, train_from, train_to "
       "from adspark.models order by created_at desc")

# COMMAND ----------

# MAGIC %md ## Reconstruction of the validation windows

# COMMAND ----------

windows = nb.store.read("windows").where(f"date > '{model.train_to - dt.timedelta(days=1)}'").limit(500).toPandas()
x = np.stack(windows["values"]).reshape(len(windows), model.n_steps, model.n_features).astype(np.float32)
detector = load_detector(model)
scores = detector.score(x)
print(f"{len(x)} windows: score median {np.median(scores):.3f}, 99th percentile {np.quantile(scores, 0.99):.3f}, "
      f"threshold {model.threshold.value:.3f} ({(scores > model.threshold.value).mean():.1%} above)")

# COMMAND ----------

quantiles = tuple(model.metrics.get("val_score_quantiles") or ())
figures = run_figures(ReportData(
    title=f"model {model.model_id}: validation scores", summary={"model": model.model_id, "windows": str(len(x))},
    scores=scores, threshold=model.threshold.value, val_quantiles=quantiles,
    quantile_levels=tuple(QUANTILE_LEVELS.tolist()) if quantiles else (),
))
nb.figure(figures["scores"], "notebook-model-scores")
