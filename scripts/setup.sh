#!/usr/bin/env bash
# make setup: idempotent environment for adspark (seconds when nothing changed).
#   - checks Java 17+ and Python 3.11-3.12
#   - .venv with every package pinned by requirements/lock.txt
#   - horovod 0.28.1 built once from source against the pinned TensorFlow (wheel cached in
#     $ADSPARK_WHEEL_CACHE, default ~/.cache/adspark/wheels) and installed without its [spark] extra
#   - the Delta jars resolved with Maven into .jars/ (never at job run time)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
JARS=.jars
DELTA_VERSION=4.0.1
SCALA=2.13
HOROVOD_VERSION=0.28.1
WHEELS=${ADSPARK_WHEEL_CACHE:-$HOME/.cache/adspark/wheels}

die() { echo "setup: error: $*" >&2; exit 1; }

# --- Java ---------------------------------------------------------------------------------
command -v java >/dev/null 2>&1 || die "Java not found: Spark 4 needs Java 17 or 21 (Debian: apt-get install openjdk-17-jdk-headless)"
java_major=$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)
[[ "$java_major" == 17 || "$java_major" == 21 ]] || die "Java $java_major found; Spark 4 needs Java 17 or 21 (set JAVA_HOME / PATH)"

# --- Python + virtualenv ------------------------------------------------------------------
command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (need Python 3.11-3.12)"
"$PYTHON" -c 'import sys; sys.exit(not ((3,11) <= sys.version_info[:2] <= (3,12)))' \
  || die "$($PYTHON --version) found; need Python 3.11-3.12 (the pinned Keras, SciPy and scikit-learn need 3.11+, TensorFlow 2.18 wheels stop at 3.12)"
[[ -x $VENV/bin/python ]] || "$PYTHON" -m venv $VENV
PIP="$VENV/bin/python -m pip --disable-pip-version-check"

stamp=$VENV/.adspark-setup
want=$(cat requirements/lock.txt requirements/*.in setup.py scripts/setup.sh | sha256sum | cut -c1-16)
if [[ "$(cat $stamp 2>/dev/null)" != "$want" ]]; then
  echo "setup: installing pinned packages into $VENV"
  $PIP install -q "setuptools==69.5.1" "wheel==0.48.0"
  $PIP install -q -c requirements/lock.txt -r requirements/base.in -r requirements/dev.in
  if ! $VENV/bin/python -c "import horovod, sys; sys.exit(horovod.__version__ != '$HOROVOD_VERSION')" 2>/dev/null; then
    whl=$(ls "$WHEELS"/horovod-$HOROVOD_VERSION-*.whl 2>/dev/null | head -1 || true)
    if [[ -z "$whl" ]]; then
      echo "setup: building horovod $HOROVOD_VERSION against the pinned TensorFlow (one time, ~3-7 min)"
      mkdir -p "$WHEELS"
      HOROVOD_WITH_TENSORFLOW=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
      HOROVOD_WITHOUT_PYTORCH=1 HOROVOD_WITHOUT_MXNET=1 MAKEFLAGS=-j"$(nproc)" \
        $PIP wheel -q --no-build-isolation --no-deps -w "$WHEELS" "horovod==$HOROVOD_VERSION"
      whl=$(ls "$WHEELS"/horovod-$HOROVOD_VERSION-*.whl | head -1)
    fi
    # no [spark] extra: it pins pyarrow<11, which breaks Spark 4 pandas UDFs
    $PIP install -q -c requirements/lock.txt "$whl"
  fi
  $PIP install -q --no-deps --no-build-isolation -e .
  $PIP check
  echo "$want" > $stamp
fi

# --- Delta jars ----------------------------------------------------------------------------
mkdir -p $JARS
for artifact in "io.delta:delta-spark_$SCALA:$DELTA_VERSION" "io.delta:delta-storage:$DELTA_VERSION"; do
  name=$(echo "$artifact" | cut -d: -f2)
  if [[ ! -s $JARS/$name-$DELTA_VERSION.jar ]]; then
    command -v mvn >/dev/null 2>&1 || die "Maven (mvn) not found: needed once to fetch $artifact"
    echo "setup: resolving $artifact with Maven"
    mvn -q -B org.apache.maven.plugins:maven-dependency-plugin:3.6.1:copy \
      -Dartifact="$artifact" -DoutputDirectory=$JARS >/dev/null \
      || die "Maven could not fetch $artifact"
  fi
done
# --- Chromium (headless: the report rendering test takes a screenshot) ---------------------------
if ! command -v chromium >/dev/null 2>&1 && [[ -z "${ADSPARK_SKIP_CHROMIUM:-}" ]]; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian chromium (headless report screenshots)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } \
      || echo "setup: warning: chromium could not be installed; the report screenshot test will be skipped"
  else
    echo "setup: note: chromium not found (apt-get install chromium); the report screenshot test will be skipped"
  fi
fi
echo "setup: ok ($($VENV/bin/python --version), Java $java_major, Delta $DELTA_VERSION, horovod $HOROVOD_VERSION)"
