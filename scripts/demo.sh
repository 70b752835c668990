#!/usr/bin/env bash
# make demo: generate events -> discretize -> window on the embedded default (local Spark +
# local Delta tables under ./warehouse), then print the tables and a sample.
set -euo pipefail
cd "$(dirname "$0")/.."
CONF=${1:-conf/demo.yaml}
ADSPARK=".venv/bin/adspark"
FROM=2026-01-05
TO=$(.venv/bin/python - "$CONF" <<'PY'
import datetime as dt, sys, yaml
g = yaml.safe_load(open(sys.argv[1]))["generate"]
print(dt.date.fromisoformat(str(g["start"])) + dt.timedelta(days=int(g["days"]) - 1))
PY
)
step() { echo; echo "== $*"; }
t0=$SECONDS
step "generate ($CONF)";            $ADSPARK generate --conf "$CONF"
step "discretize $FROM..$TO";      $ADSPARK discretize --conf "$CONF" --from $FROM --to "$TO"
step "window $FROM..$TO";          $ADSPARK window --conf "$CONF" --from $FROM --to "$TO"
step "train 2026-01-05..2026-01-25 (the first three weeks)"
$ADSPARK train --conf "$CONF" --from 2026-01-05 --to 2026-01-25
step "tables";                     $ADSPARK tables --conf "$CONF"
step "runs, rejects, features, labels, windows, models"
$ADSPARK sql --conf "$CONF" --limit 6 \
  "select job, status, date_from, date_to, duration_s, rows_read, rows_accepted, rows_rejected, rows_written from adspark.runs order by started_at desc" \
  "select reason, \`column\`, count(*) as n, first(detail) as example from adspark.rejects group by reason, \`column\` order by n desc" \
  "select entity, bucket_start, event_count, amount_sum, amount_max, category__crypto from adspark.features order by event_count desc" \
  "select kind, count(*) as n, min(start) as first, max(\`end\`) as last from adspark.labels group by kind order by kind" \
  "select w.entity, w.window_start, w.window_end, w.n_steps, w.n_features, slice(w.values, 1, 6) as first_values from adspark.windows w order by w.window_start desc, w.entity" \
  "select model_id, detector, spec_id, threshold_method, round(threshold, 4) as threshold, train_from, train_to, get_json_object(metrics, '$.val_loss') as val_loss, get_json_object(metrics, '$.epochs') as epochs from adspark.models order by created_at desc"
echo; echo "demo finished in $((SECONDS - t0)) s; query the tables with: $ADSPARK sql \"select ... from adspark.<table>\""
