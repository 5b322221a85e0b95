# Two commands do all the set-up: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DATA := data/demo
DEMO_RUN := runs/demo
# The demo's recipe and training budget: EfficientDet-D0 at 256 px on the CPU.
DEMO_RECIPE := benchmarks/recipes/demo.yaml
DEMO_STEPS ?= 300
DEMO_BATCH ?= 8
# the installed import names (taxdet.*) as a tree of symlinks, for mypy and lint-imports
IMPORT_TREE := build/typecheck

.PHONY: demo demo-classifier test test-fast install lint typecheck imports bench lint-benchmark \
	ablation classification-ablation clean label-studio-check

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# two pytest workers, one torch thread each (the machine's 2 cores); a test file stays on one
# worker so its module fixtures are built once
PYTEST := OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --dist loadfile

test: $(STAMP)
	$(PYTEST)

# everything but the end-to-end tests marked slow
test-fast: $(STAMP)
	$(PYTEST) -m "not slow"

$(DEMO_DATA)/test/annotations.json: | $(STAMP)
	$(PY) tools/make_demo_data.py $(DEMO_DATA)

demo: $(STAMP) $(DEMO_DATA)/test/annotations.json
	$(PY) tools/validate_taxonomies.py taxonomies/driving
	rm -rf $(DEMO_RUN)
	$(PY) tools/train.py --config $(DEMO_RECIPE) --taxonomies taxonomies/driving \
		--output $(DEMO_RUN) --batch-size $(DEMO_BATCH) --steps $(DEMO_STEPS) \
		--val-every $(DEMO_STEPS)
	$(PY) tools/evaluate.py --gt $(DEMO_DATA)/test/annotations.json \
		--checkpoint $(DEMO_RUN)/last.pt --images $(DEMO_DATA)/test/images --taxonomies taxonomies/driving \
		--json $(DEMO_RUN)/test_eval.json --markdown $(DEMO_RUN)/test_eval.md \
		--draw $(DEMO_RUN)
	@echo "demo done: $(DEMO_RUN)/test_eval.md, $(DEMO_RUN)/predictions.png"

bench: $(STAMP)
	$(PY) -m benchmarks.bench_loss
	$(PY) -m benchmarks.bench_labeler
	$(PY) -m benchmarks.bench_train_step
	$(PY) -m benchmarks.bench_eval
	$(PY) -m benchmarks.bench_loader
	$(PY) -m benchmarks.bench_merge
	$(PY) -m benchmarks.bench_export

# the label linter vs cleanlab on injected errors (docs/linting.md); needs a checkpoint trained
# on the demo data (make demo)
lint-benchmark: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m benchmarks.lint_benchmark

# tools/serve.py and predict.py --format label-studio against a real Label Studio
# (docs/serving.md): installs it from PyPI into .ls-venv on the first run, then checks the
# predictions the service stores against predict.py's, and imports predict.py's tasks file and
# labeling config as they are and reads back the same tasks, predictions, regions and scores
label-studio-check: $(STAMP)
	$(PY) -m benchmarks.label_studio_check

ablation: $(STAMP) $(DEMO_DATA)/test/annotations.json
	$(PY) -m benchmarks.taxonomy_ablation --config $(DEMO_RECIPE) --taxonomies taxonomies/driving \
		--output runs/ablation

# the image classifier on the demo's object crops (docs/classification.md): data, train, evaluate
DEMO_CLS_DATA := data/demo_classifier
DEMO_CLS_RUN := runs/demo_classifier

$(DEMO_CLS_DATA)/crops.json: | $(STAMP)
	$(PY) tools/make_demo_data.py $(DEMO_CLS_DATA) --classification

demo-classifier: $(STAMP) $(DEMO_CLS_DATA)/crops.json
	rm -rf $(DEMO_CLS_RUN)
	$(PY) tools/train_classifier.py --config benchmarks/recipes/classifier_demo.yaml \
		--taxonomies taxonomies/driving --output $(DEMO_CLS_RUN)
	$(PY) tools/evaluate_classifier.py --checkpoint $(DEMO_CLS_RUN)/last.pt --data taxonomies/driving \
		--json $(DEMO_CLS_RUN)/eval.json --markdown $(DEMO_CLS_RUN)/eval.md --plots $(DEMO_CLS_RUN)
	@echo "classifier demo done: $(DEMO_CLS_RUN)/eval.md, confusion.png, reliability.png"

classification-ablation: $(STAMP)
	$(PY) -m benchmarks.classification_ablation --output runs/classification_ablation

# the checks CI runs before the tests (.ci/run): ruff (with import sorting), mypy (strict on
# taxdet.core, supertax, losses and the engine), the import contracts of setup.cfg
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(MAKE) --no-print-directory typecheck imports

typecheck: $(STAMP)
	$(PY) .ci/import_tree.py $(IMPORT_TREE)
	$(VENV)/bin/mypy

imports: $(STAMP)
	$(PY) .ci/import_tree.py $(IMPORT_TREE)
	PYTHONPATH=$(IMPORT_TREE):.ci $(VENV)/bin/lint-imports

clean:
	rm -rf $(VENV) $(IMPORT_TREE) .mypy_cache .ruff_cache $(DEMO_DATA) $(DEMO_RUN) $(DEMO_CLS_DATA) $(DEMO_CLS_RUN) *.egg-info
