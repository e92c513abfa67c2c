# make demo: install, then run the mini recipe end to end and print its per-exit table.
# make test: install, then run the test suite (what .ci/run runs).
VENV ?= .venv
PYTHON ?= python3
RECIPE ?= egs/mini_tts/conformer_ctc_ee

.PHONY: install system-deps demo test clean-demo

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.py utils/install_python.sh
	VENV=$(VENV) PYTHON=$(PYTHON) bash utils/install_python.sh

system-deps:
	bash utils/install_system.sh

demo: install system-deps
	cd $(RECIPE) && ./run.sh
	cat $(RECIPE)/exp/*/RESULTS.md

test: install system-deps
	$(VENV)/bin/python -m pytest -q tests

clean-demo:
	cd $(RECIPE) && rm -rf data dump exp downloads
