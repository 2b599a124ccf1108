# Common actions. `make test` on a fresh machine sets everything up first (scripts/setup_env.sh).
VENV ?= .venv
PY := $(VENV)/bin/python
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export AMENT_PREFIX_PATH := $(abspath $(VENV))

.PHONY: setup test lint format bench demo train-demo clean

setup:
	bash scripts/setup_env.sh

test: setup lint
	$(PY) -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "no tests collected"; rc=0; fi; exit $$rc

lint: setup
	$(PY) -m ruff check .

format: setup
	$(PY) -m ruff format . && $(PY) -m ruff check --fix .

bench: setup
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

demo: setup
	bash scripts/demo.sh

train-demo: setup
	bash scripts/train_demo.sh

clean:
	rm -rf $(VENV) build install log *.egg-info
