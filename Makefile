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

.PHONY: demo demo-classifier test install lint bench lint-benchmark ablation \
	classification-ablation clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

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
	$(PY) benchmarks/bench_loss.py
	$(PY) benchmarks/bench_labeler.py
	$(PY) benchmarks/bench_train_step.py
	$(PY) benchmarks/bench_eval.py
	$(PY) benchmarks/bench_loader.py
	$(PY) benchmarks/bench_merge.py
	$(PY) benchmarks/bench_export.py

# the label linter vs cleanlab on injected errors (docs/linting.md); needs a checkpoint trained
# on the demo data (make demo)
lint-benchmark: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) benchmarks/lint_benchmark.py

ablation: $(STAMP) $(DEMO_DATA)/test/annotations.json
	$(PY) benchmarks/taxonomy_ablation.py --config $(DEMO_RECIPE) --taxonomies taxonomies/driving \
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
	$(PY) benchmarks/classification_ablation.py --output runs/classification_ablation

lint: $(STAMP)
	$(PY) -m flake8 supertax datasets losses detection tools benchmarks tests

clean:
	rm -rf $(VENV) $(DEMO_DATA) $(DEMO_RUN) $(DEMO_CLS_DATA) $(DEMO_CLS_RUN) *.egg-info
