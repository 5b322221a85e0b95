"""The seed ablation scores one training three ways (flat, hierarchy, coverage) from one
forward pass; coverage applies the checkpoint's decoding plan, as the predictor does."""

import pytest

from benchmarks.ablation import score_decodings
from benchmarks.seed_ablation import MODES
from taxdet.detection.engine.checkpoint import save_atomic
from taxdet.detection.evaluation import evaluate
from taxdet.detection.model.detector_config import TrainConfig
from taxdet.detection.prediction.predictor import load_predictor, predict_images
from tests.detection.prediction.test_coverage_decoding import PLAN
from tests.factories import TINY_SIZE, make_checkpoint, make_demo

pytestmark = pytest.mark.usefixtures("one_thread")


def test_three_decodings_of_one_checkpoint_match_the_predictor(taxset, tmp_path):
    assert MODES == ("flat", "hierarchy", "coverage")
    demo = make_demo(tmp_path / "demo", taxset)
    state = make_checkpoint(tmp_path / "ckpt.pt", taxset)
    save_atomic({**state, "decoding_plan": PLAN}, tmp_path / "ckpt.pt")
    test_gt = demo / "test" / "annotations.json"
    cfg = TrainConfig.from_dict({"model": {"image_size": TINY_SIZE}, "optim": {"batch_size": 2}})
    scored = score_decodings(tmp_path / "ckpt.pt", test_gt, taxset, cfg, MODES)
    assert list(scored) == list(MODES)
    for mode, decoding in (("flat", "own"), ("coverage", None)):
        predictor, _, _ = load_predictor(tmp_path / "ckpt.pt", hierarchy_decoding=decoding)
        results = predict_images(predictor, test_gt, test_gt.parent / "images", taxset=taxset,
                                 image_size=TINY_SIZE, batch_size=2, progress=False)
        assert all(r["category_id"] != 7 for r in results) or mode == "flat"   # light excluded
        alone = evaluate(str(test_gt), results, taxset=taxset)
        assert scored[mode].stats == pytest.approx(alone.stats, nan_ok=True)
