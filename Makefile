# adspark: `make demo` and `make test` set up whatever is missing first.
PY := .venv/bin/python
CONF ?= conf/demo.yaml

.PHONY: setup lint demo test test-slow test-all test-fast lock bench-featurize bench-train bench-score bench-nightly bench-scale bench-quality bench-runs bench-alerts bench-alert-state clean-warehouse

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh $(CONF)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m mypy

test: lint
	$(PY) -m pytest -q -p no:cacheprovider --durations=15 -n 2 --dist loadfile -m "not slow" tests

test-slow: setup
	$(PY) -m pytest -q -p no:cacheprovider -m slow tests

test-all: setup
	$(PY) -m pytest -q -p no:cacheprovider tests

test-fast: setup
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

lock: setup
	@{ echo "# Exact versions of every package in the virtualenv (constraints for make setup)."; \
	  echo "# Regenerate with: make lock   (after changing requirements/*.in)"; \
	  .venv/bin/pip freeze --exclude-editable | sed 's|^horovod @ .*|horovod==0.28.1|' \
	  | grep -v -i '^adspark'; } > requirements/lock.txt

bench-featurize: setup
	$(PY) benchmarks/featurize.py

clean-warehouse:
	rm -rf warehouse

bench-train: setup
	$(PY) benchmarks/train.py

bench-score: setup
	$(PY) benchmarks/score.py

bench-nightly: setup
	$(PY) benchmarks/nightly.py

bench-scale: setup
	$(PY) benchmarks/scale.py

bench-quality: setup
	$(PY) -m benchmarks.quality

bench-runs: setup
	$(PY) -m benchmarks.quality_runs

bench-alert-state: setup
	$(PY) -m benchmarks.alert_state

bench-alerts: setup
	$(PY) -m benchmarks.alerts_speed
