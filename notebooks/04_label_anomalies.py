# Databricks notebook source
# MAGIC %md
# MAGIC # 4. Label anomalies
# MAGIC Judge the top intervals (true anomaly, false alarm, unsure), see the precision so far,
# MAGIC recalibrate the threshold from the verdicts, and evaluate against the labels table.
# MAGIC In SQL the same verdict is: `INSERT INTO adspark.feedback VALUES ('<interval id>', 'true', 'comment', 'me', current_timestamp())`.

# COMMAND ----------

import datetime as dt

from adspark.config import EvaluateJobConfig, TrainJobConfig, build_job_config
from adspark.errors import EmptyInputError
from adspark.models.lookup import model_in_force
from adspark.notebook import open_notebook
from adspark.pipeline.evaluate import run_evaluate
from adspark.pipeline.feedback import add_feedback, feedback_summary, recalibrate

nb = open_notebook(globals())
conf = nb.conf
start = dt.date.fromisoformat(str(conf["generate"]["start"]))
first = start + dt.timedelta(days=int(conf["generate"]["anomaly_free_days"]))
last = start + dt.timedelta(days=int(conf["generate"]["days"]) - 1)

# COMMAND ----------

# MAGIC %md ## Judge the top intervals
# MAGIC Here the generated ground truth stands in for the analyst: an interval overlapping a
# MAGIC generated anomaly of its entity is judged true, any other false.

# COMMAND ----------

top = nb.spark.sql(
    "select i.interval_id, max(case when l.entity is not null then 1 else 0 end) as real "
    "from adspark.intervals i left join adspark.labels l "
    "on l.entity = i.entity and l.start < i.`end` and l.`end` > i.start "
    "group by i.interval_id, i.severity order by i.severity desc limit 6"
).collect()
for row in top:
    print(add_feedback(nb.store, row.interval_id, "true" if row.real else "false", "notebook", "from the ground truth"))
print(feedback_summary(nb.store))

# COMMAND ----------

# MAGIC %md ## Recalibrate the threshold from the verdicts

# COMMAND ----------

cfg = build_job_config(TrainJobConfig, conf)
try:
    new = recalibrate(nb.store, model_in_force(nb.store, cfg), cfg.train.threshold.beta,
                      cfg.train.threshold.feedback_strength)
    print(f"threshold {new.threshold.params['unsupervised']:.4g} -> {new.threshold.value:.4g} ({new.model_id})")
except EmptyInputError as exc:  # no interval judged true yet
    print(f"not recalibrated: {exc}")

# COMMAND ----------

# MAGIC %md ## Evaluate against the labels table

# COMMAND ----------

print(run_evaluate(nb.store, build_job_config(EvaluateJobConfig, conf), first, last).message)
nb.sql("select * from adspark.evaluations order by created_at desc", limit=5)
