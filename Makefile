# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DATA := data/demo
DEMO_RUN := runs/demo

.PHONY: demo test install lint bench clean

$(STAMP): setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) tools/validate_taxonomies.py taxonomies/driving

lint: $(STAMP)
	$(PY) -m flake8 supertax datasets losses detection tools benchmarks tests

clean:
	rm -rf $(VENV) $(DEMO_DATA) $(DEMO_RUN) *.egg-info
