#!/usr/bin/env bash
# make demo: the whole path on the embedded default (local Spark + local Delta tables under
# ./warehouse): generate events -> nightly over the last two weeks (on the new warehouse it also
# discretizes the three weeks of history before them; the first night finds no model and trains
# one on that history first, windowing it; every night is validated, discretized, scored, merged
# into intervals, and retrains when due, the nights between two retrains in one scoring pass) ->
# top anomaly intervals and how many of the generator's labeled anomalies were caught.
set -euo pipefail
cd "$(dirname "$0")/.."
CONF=${1:-conf/demo.yaml}
ADSPARK=".venv/bin/adspark"
read -r _FROM _TRAIN_TO FIRST_NIGHT TO < <(.venv/bin/python - "$CONF" <<'PY'
import datetime as dt, sys, yaml
g = yaml.safe_load(open(sys.argv[1]))["generate"]
start = dt.date.fromisoformat(str(g["start"]))
train_to = start + dt.timedelta(days=int(g["anomaly_free_days"]) - 1)
print(start, train_to, train_to + dt.timedelta(days=1), start + dt.timedelta(days=int(g["days"]) - 1))
PY
)
step() { echo; echo "== $*"; }
t0=$SECONDS
# the embedded default's tables are generated: start from an empty warehouse, so that a second
# `make demo` reports the same figures (models and intervals of an earlier demo would mix in)
if [ "$CONF" = "conf/demo.yaml" ] && [ -d warehouse/adspark ]; then
  echo "demo: starting from an empty warehouse (removing the earlier demo's tables and MLflow store)"
  rm -rf warehouse/adspark warehouse/mlflow.db warehouse/mlartifacts
fi
step "generate ($CONF)";                       $ADSPARK generate --conf "$CONF"
step "nightly $FIRST_NIGHT..$TO (a new warehouse: the nightly.train_days nights of history before it are discretized with the nights, in one pass; the first night trains the model on it; the nights between two retrains are scored in one pass)"
$ADSPARK nightly --conf "$CONF" --date "$FIRST_NIGHT" --to "$TO"
step "results"
$ADSPARK sql --conf "$CONF" --limit 10 \
  "select date, status, model_id, events_read, events_rejected, windows, anomalies, intervals_open, psi, retrained, retrain_reason, total_s from adspark.nightly_summary order by date" \
  "select i.entity, i.start, i.\`end\`, i.status, round(i.peak_score, 3) as peak, round(i.threshold, 3) as threshold, round(i.severity, 2) as severity, i.top_features, l.kind as labeled_as from adspark.intervals i left join adspark.labels l on l.entity = i.entity and l.start < i.\`end\` and l.\`end\` > i.start order by i.severity desc" \
  "select count(*) as intervals, sum(case when exists (select 1 from adspark.labels l where l.entity = i.entity and l.start < i.\`end\` and l.\`end\` > i.start) then 1 else 0 end) as matching_a_label, round(avg(case when exists (select 1 from adspark.labels l where l.entity = i.entity and l.start < i.\`end\` and l.\`end\` > i.start) then 1.0 else 0.0 end), 3) as interval_precision from adspark.intervals i" \
  "select count(*) as labeled_anomalies, sum(case when exists (select 1 from adspark.intervals i where i.entity = l.entity and i.start < l.\`end\` and i.\`end\` > l.start) then 1 else 0 end) as caught, round(avg(case when exists (select 1 from adspark.intervals i where i.entity = l.entity and i.start < l.\`end\` and i.\`end\` > l.start) then 1.0 else 0.0 end), 3) as interval_recall from adspark.labels l where l.start >= timestamp'$FIRST_NIGHT'" \
  "select l.kind, count(*) as labeled, sum(case when exists (select 1 from adspark.intervals i where i.entity = l.entity and i.start < l.\`end\` and i.\`end\` > l.start) then 1 else 0 end) as caught from adspark.labels l where l.start >= timestamp'$FIRST_NIGHT' group by l.kind order by l.kind" \
  "select model_id, detector, threshold_method, round(threshold, 4) as threshold, train_from, train_to, get_json_object(metrics, '$.val_loss') as val_loss, created_at from adspark.models order by created_at"
echo; echo "demo finished in $((SECONDS - t0)) s; query the tables with: $ADSPARK sql \"select ... from adspark.<table>\" (views: open_anomalies, anomalies_by_severity, entity_history, nightly_summary)"
