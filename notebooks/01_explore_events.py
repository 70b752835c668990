# Databricks notebook source
# MAGIC %md
# MAGIC # 1. Explore events and features
# MAGIC Generate (or read) the events table, validate and discretize a few nights, and look at what
# MAGIC was accepted, what was rejected and why, and the per-entity buckets the models learn from.
# MAGIC Runs on Databricks (set the `conf` widget) or as plain Python on the embedded default
# MAGIC (`ADSPARK_CONF=conf/demo.yaml python notebooks/01_explore_events.py`).

# COMMAND ----------

import datetime as dt

from adspark.config import DiscretizeJobConfig, GenerateJobConfig, WindowJobConfig, build_job_config
from adspark.notebook import open_notebook
from adspark.pipeline.discretize import run_discretize
from adspark.pipeline.generate import run_generate
from adspark.pipeline.window import run_window

nb = open_notebook(globals())
conf = nb.conf
start = dt.date.fromisoformat(str(conf["generate"]["start"]))
history_end = start + dt.timedelta(days=int(conf["generate"]["anomaly_free_days"]) - 1)

# COMMAND ----------

# MAGIC %md ## Events (generated when the table is missing)

# COMMAND ----------

if not nb.store.exists("events"):
    print(run_generate(nb.store, build_job_config(GenerateJobConfig, conf)).message)
nb.sql("select event_date, count(*) as events, count(distinct user_id) as users "
       "from adspark.events group by event_date order by event_date")

# COMMAND ----------

# MAGIC %md ## Validate and discretize the history

# COMMAND ----------

print(run_discretize(nb.store, build_job_config(DiscretizeJobConfig, conf), start, history_end).message)
nb.sql("select reason, `column`, count(*) as rows, min(detail) as example from adspark.rejects "
       "group by reason, `column` order by rows desc")

# COMMAND ----------

# MAGIC %md ## Buckets per entity: what a normal day looks like

# COMMAND ----------

nb.sql("select hour(bucket_start) as hour, round(avg(event_count), 2) as events, round(avg(amount_sum), 1) as amount "
       "from adspark.features group by hour(bucket_start) order by hour", limit=24)

# COMMAND ----------

print(run_window(nb.store, build_job_config(WindowJobConfig, conf), start, history_end).message)
nb.sql("select date, count(*) as windows, min(n_steps) as steps, min(n_features) as features "
       "from adspark.windows group by date order by date")
