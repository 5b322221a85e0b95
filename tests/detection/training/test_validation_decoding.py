"""One decoding: training validation (which picks best.pt) and evaluate.py --checkpoint decode
the same way by default and say which; degenerate boxes are dropped and counted in both."""

from __future__ import annotations

import json
import logging

import pytest
import torch

from taxdet.detection.evaluation.evaluation_run import (
    EvaluateOptions,
    run_evaluation,
    write_outputs,
)
from taxdet.detection.model.drawable_boxes import INFO_KEY
from taxdet.detection.prediction.predictor import load_predictor
from taxdet.detection.training.trainer import Trainer
from tests.factories import make_tiny_taxonomies, read_metrics, tiny_train_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def two_step_run(tmp_path_factory):
    """(trainer, run folder, taxonomies) of a 2-step run on the tiny demo."""
    root = tmp_path_factory.mktemp("decoding")
    tax = make_tiny_taxonomies(root)
    trainer = Trainer(tiny_train_config(tax, root / "run", optim={"steps": 2}))
    trainer.fit()
    return trainer, root / "run", tax


def test_validation_and_evaluate_use_the_same_decoding_and_say_so(two_step_run, tmp_path):
    trainer, run, tax = two_step_run
    val = [r["val"] for r in read_metrics(run) if "val" in r][-1]
    default = load_predictor(run / "last.pt")[0].decoding
    assert val["decoding"] == default == "coverage"
    assert val[INFO_KEY]["boxes"] == 0 and "1 px" in val[INFO_KEY]["rule"]
    gt = tmp_path / "val_gt.json"
    gt.write_text(json.dumps(trainer.data.val_gt))
    opts = EvaluateOptions(gt=gt, checkpoint=run / "last.pt", taxonomies=[str(tax)],
                           workers=0, json_out=tmp_path / "e.json",
                           markdown_out=tmp_path / "e.md")
    evaluation = run_evaluation(opts)
    write_outputs(evaluation, opts)
    written = json.loads((tmp_path / "e.json").read_text())
    assert written["info"]["decoding"] == val["decoding"]
    assert written["info"][INFO_KEY]["boxes"] == 0
    assert written["AP"] == pytest.approx(val["AP"])
    assert ({c: r["predictions"] for c, r in written["per_class"].items()}
            == {c: r["predictions"] for c, r in val["per_class"].items()})
    assert "decoding coverage" in (tmp_path / "e.md").read_text().splitlines()[0]


def test_validation_drops_and_counts_degenerate_boxes(two_step_run, caplog):
    trainer = two_step_run[0]
    model = trainer.ema.module if trainer.ema is not None else trainer.model
    conv = model.box_net.predict.conv_pw
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.fill_(1e4)  # every box far outside its image
    with caplog.at_level(logging.WARNING):
        first, second = trainer.validate(), trainer.validate()
    dropped = first[INFO_KEY]
    assert dropped["boxes"] > 0 and dropped["images"] == len(trainer.data.val_gt["images"])
    assert second[INFO_KEY] == dropped
    warned = [r for r in caplog.records if "degenerate boxes" in r.getMessage()]
    assert len(warned) == 1 and "validation at step 2" in warned[0].getMessage()
    assert all(r["predictions"] == 0 for r in first["per_class"].values())

