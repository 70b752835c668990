# Databricks notebook source
# MAGIC %md
# MAGIC # 3. Investigate anomalies
# MAGIC Run the nightly job for the nights after the history, then query the anomaly intervals with
# MAGIC SQL, look at the most severe one's figures inline (zoom on its score over time) and open the
# MAGIC HTML report: one alert-like panel per top interval.

# COMMAND ----------

import datetime as dt

from adspark.config import NightlyJobConfig, ScoreJobConfig, build_job_config
from adspark.core.report import panel_figures, render_report, run_figures
from adspark.notebook import open_notebook
from adspark.pipeline.nightly import run_nights
from adspark.pipeline.report import build_report

nb = open_notebook(globals())
conf = nb.conf
start = dt.date.fromisoformat(str(conf["generate"]["start"]))
first = start + dt.timedelta(days=int(conf["generate"]["anomaly_free_days"]))
last = start + dt.timedelta(days=int(conf["generate"]["days"]) - 1)

# COMMAND ----------

cfg = build_job_config(NightlyJobConfig, conf)
# the nights in order, the nights between two retrains scored in one pass (the same tables as
# one night after another)
for result in run_nights(nb.store, cfg, first, last):
    print(result.message)

# COMMAND ----------

# MAGIC %md ## The intervals, by severity

# COMMAND ----------

nb.sql("select entity, start, `end`, n_windows, round(peak_score, 3) as peak, round(severity, 2) as severity, "
       "top_features, status from adspark.intervals order by severity desc")

# COMMAND ----------

# MAGIC %md ## The most severe interval, and the run's scores

# COMMAND ----------

report = build_report(nb.store, build_job_config(ScoreJobConfig, conf), first, last, top=3)
nb.figure(run_figures(report)["scores"], "notebook-scores")
for kind, fig in (panel_figures(report.panels[0], report.scores).items() if report.panels else ()):
    nb.figure(fig, f"notebook-top-interval-{kind}")

# COMMAND ----------

# MAGIC %md ## The report (one panel per top interval, the same figures)

# COMMAND ----------

nb.html(render_report(report), f"notebook-report-{first}-{last}.html")
