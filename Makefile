# make demo: install, then run the mini recipe end to end and print its per-exit table.
# make test: install, then ruff and the whole test suite (what .ci/run runs);
# make quick-test: the same without the tests marked slow (recipes, clusters, long trainings).
VENV ?= .venv
PYTHON ?= python3
RECIPE ?= egs/mini_tts/conformer_ctc_ee

.PHONY: install system-deps demo test quick-test lint clean-demo gpu-check

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.py utils/install_python.sh
	VENV=$(VENV) PYTHON=$(PYTHON) bash utils/install_python.sh

system-deps:
	bash utils/install_system.sh

demo: install system-deps
	cd $(RECIPE) && ./run.sh
	cat $(RECIPE)/exp/*/RESULTS.md

lint: install
	$(VENV)/bin/ruff check ee_asr tests

test: install system-deps lint
	$(VENV)/bin/python -m pytest -q tests

quick-test: install system-deps lint
	$(VENV)/bin/python -m pytest -q -m "not slow" tests

# every GPU measurement of training at scale (sized for about 8 minutes, capped at 11; not yet run on a GPU), into gpu_check/gpu_check.json
gpu-check: install system-deps
	bash utils/gpu_check.sh

clean-demo:
	cd $(RECIPE) && rm -rf exp ../data ../dump ../downloads  # the corpus's data, shared by its recipes
