#!/usr/bin/env bash
# Submit an adspark job with spark-submit, to a cluster or (no --master) the embedded local default.
#
#   ./spark-submit.sh JOB [job args] [spark options]
#   ./spark-submit.sh nightly --conf conf/demo.yaml --date 2026-02-10 \
#       --master spark://host:7077 --executor-memory 4g --total-executor-cores 8
#
# JOB is one of jobs/*.py (generate, discretize, window, train, score, nightly).
# Spark options passed through: --master --deploy-mode --name --queue --driver-memory
# --driver-cores --executor-memory --executor-cores --num-executors --total-executor-cores
# --archives, and --spark-conf KEY=VALUE for any Spark setting (--conf is the job's YAML file).
# Shipped: the package as a zip (--py-files), the Delta jars from .jars/ (resolved by Maven at
# `make setup`, never at run time) and the YAML config (--files; in cluster deploy mode the job
# reads it by its base name). Executors run PYSPARK_PYTHON (default: this checkout's .venv python;
# on a real cluster ship an environment with --archives env.tar.gz#env and PYSPARK_PYTHON=./env/bin/python).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")" && pwd)"
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[[ $# -ge 1 ]] || usage
JOB=$1; shift
[[ "$JOB" == "-h" || "$JOB" == "--help" ]] && usage
ENTRY="$ROOT/jobs/$JOB.py"
if [[ ! -f "$ENTRY" ]]; then
  echo "spark-submit.sh: unknown job '$JOB' (expected one of: $(cd "$ROOT/jobs" && ls *.py | sed 's/\.py$//' | tr '\n' ' '))" >&2
  exit 2
fi

SPARK_ARGS=() JOB_ARGS=() CONF="" MASTER="" DEPLOY_MODE="client"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --master) MASTER=$2; shift 2 ;;
    --deploy-mode) DEPLOY_MODE=$2; SPARK_ARGS+=("$1" "$2"); shift 2 ;;
    --name|--queue|--driver-memory|--driver-cores|--executor-memory|--executor-cores|--num-executors|--total-executor-cores|--archives)
      [[ $# -ge 2 ]] || { echo "spark-submit.sh: $1 needs a value" >&2; exit 2; }
      SPARK_ARGS+=("$1" "$2"); shift 2 ;;
    --spark-conf) SPARK_ARGS+=(--conf "$2"); shift 2 ;;
    --conf) CONF=$2; shift 2 ;;
    *) JOB_ARGS+=("$1"); shift ;;
  esac
done
CONF=${CONF:-conf/demo.yaml}
[[ -f "$CONF" ]] || { echo "spark-submit.sh: config file '$CONF' not found" >&2; exit 2; }

PY="${PYSPARK_PYTHON:-$ROOT/.venv/bin/python}"
SUBMIT="${SPARK_SUBMIT:-$ROOT/.venv/bin/spark-submit}"
[[ -x "$SUBMIT" ]] || { echo "spark-submit.sh: $SUBMIT not found: run 'make setup' (or set SPARK_SUBMIT)" >&2; exit 2; }
JARS=$(ls "${ADSPARK_JARS:-$ROOT/.jars}"/delta-*.jar 2>/dev/null | tr '\n' ',' | sed 's/,$//')
[[ -n "$JARS" ]] || { echo "spark-submit.sh: no Delta jars in ${ADSPARK_JARS:-$ROOT/.jars}: run 'make setup'" >&2; exit 2; }

# the package as a zip for --py-files (rebuilt when a source file is newer)
ZIP="$ROOT/dist/adspark-pyfiles.zip"
if [[ ! -f "$ZIP" ]] || [[ -n "$(find "$ROOT/adspark" "$ROOT/schemas" -name '*.py' -newer "$ZIP" | head -1)" ]]; then
  mkdir -p "$ROOT/dist"
  (cd "$ROOT" && "$PY" - "$ZIP" <<'PYZIP'
import sys, zipfile, pathlib
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as zf:
    for pkg in ("adspark", "schemas"):
        for p in sorted(pathlib.Path(pkg).rglob("*.py")):
            zf.write(p, p.as_posix())
PYZIP
  )
fi

JOB_CONF="$CONF"
[[ "$DEPLOY_MODE" == "cluster" ]] && JOB_CONF="$(basename "$CONF")"
export PYSPARK_PYTHON="$PY"
exec "$SUBMIT" \
  --master "${MASTER:-local[*]}" \
  --name "adspark-$JOB" \
  --py-files "$ZIP" \
  --jars "$JARS" \
  --files "$CONF" \
  --conf spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension \
  --conf spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog \
  --conf spark.sql.session.timeZone=UTC \
  --conf spark.driver.extraJavaOptions=-Duser.timezone=UTC \
  --conf spark.executor.extraJavaOptions=-Duser.timezone=UTC \
  --conf spark.sql.execution.arrow.pyspark.enabled=true \
  --conf spark.ui.showConsoleProgress=false \
  --conf "spark.pyspark.python=$PY" \
  --conf "spark.pyspark.driver.python=$PY" \
  ${SPARK_ARGS[@]+"${SPARK_ARGS[@]}"} \
  "$ENTRY" --conf "$JOB_CONF" ${JOB_ARGS[@]+"${JOB_ARGS[@]}"}
