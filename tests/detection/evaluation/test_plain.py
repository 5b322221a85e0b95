"""Plain COCO evaluation equals pycocotools' COCOeval: hand-built and random cases, both engines."""

import copy

import numpy as np
import pytest

from taxdet.detection.evaluation import NO_GT, evaluate, load_ground_truth
from tests.detection.evaluation.eval_cases import (
    coco_gt,
    det,
    random_case,
    reference_eval,
    stats_array,
)

IMAGES = [(1, 640, 480), (2, 640, 480)]
CATS = [(1, "car"), (2, "person")]
# medium boxes (area 60*60 = 3600, between 32^2 and 96^2) and one large (120*120 = 14400)
GT_BOXES = [(1, 1, (10, 10, 60, 60)), (1, 2, (200, 100, 60, 60)), (2, 1, (300, 200, 120, 120))]


def test_perfect_predictions_give_ap_one(engine):
    gt = coco_gt(IMAGES, CATS, GT_BOXES)
    preds = [det(i, c, box, 0.9) for i, c, box in GT_BOXES]
    r = evaluate(gt, preds, engine=engine)
    # pycocotools' precision is tp / (tp + fp + eps): 1 / (1 + 2.2e-16) rounds just below 1
    for key in ("AP", "AP50", "AP75", "AR100"):
        assert r.stats[key] == pytest.approx(1.0, abs=1e-15)
    assert r.stats["APs"] == -1.0  # no small objects: undefined, as pycocotools says
    assert [c.ap for c in r.per_class] == pytest.approx([1.0, 1.0], abs=1e-15)


def test_no_predictions_give_ap_zero_not_a_crash(engine):
    gt = coco_gt(IMAGES, CATS, GT_BOXES)
    r = evaluate(gt, [], engine=engine)
    assert r.stats["AP"] == 0.0 and r.stats["AR100"] == 0.0
    assert [(c.ap, c.note) for c in r.per_class] == [(0.0, None), (0.0, None)]
    assert np.allclose(stats_array(r.stats), [0, 0, 0, -1, 0, 0, 0, 0, 0, -1, 0, 0])


def test_hand_computed_mixture(engine):
    # One image, one class, GT boxes A and B. Detections by score: d1 = A exactly (TP),
    # d2 elsewhere (FP), d3 = B exactly (TP).
    # cumulative: d1 P=1/1 R=1/2; d2 P=1/2 R=1/2; d3 P=2/3 R=2/2.
    # interpolated (max to the right): 1 for R <= 0.5, 2/3 for R in (0.5, 1].
    # COCO's 101 recall points: 0.00..0.50 are 51 points at 1, 0.51..1.00 are 50 at 2/3:
    # AP = (51 * 1 + 50 * 2/3) / 101 = 84.333 / 101 = 0.834983; equal at every IoU (exact boxes).
    # AR1: one detection per image -> recall 1/2; AR10 = AR100 = 1.
    a, b = (10, 10, 60, 60), (200, 100, 60, 60)
    gt = coco_gt([(1, 640, 480)], [(1, "car")], [(1, 1, a), (1, 1, b)])
    preds = [det(1, 1, a, 0.9), det(1, 1, (400, 300, 50, 50), 0.8), det(1, 1, b, 0.7)]
    r = evaluate(gt, preds, engine=engine)
    expected = (51 + 50 * 2 / 3) / 101
    assert r.stats["AP"] == pytest.approx(expected, abs=1e-12)
    assert r.stats["AP50"] == r.stats["AP75"] == pytest.approx(expected, abs=1e-12)
    assert (r.stats["AR1"], r.stats["AR10"], r.stats["AR100"]) == (0.5, 1.0, 1.0)
    assert np.abs(stats_array(r.stats) - reference_eval(gt, preds).stats).max() <= 1e-9


@pytest.mark.parametrize("seed", range(5))
def test_random_cases_equal_cocoeval(engine, seed):
    gt, preds = random_case(seed, crowd=0.15 if seed % 2 else 0.0)
    ref = reference_eval(gt, preds)
    r = evaluate(gt, preds, engine=engine)
    assert np.abs(stats_array(r.stats) - ref.stats).max() <= 1e-9
    # per class: mean of precision / recall over IoU thresholds, area all, maxDets 100, > -1
    for k, c in enumerate(r.per_class):
        p = ref.eval["precision"][:, :, k, 0, 2]
        rc = ref.eval["recall"][:, k, 0, 2]
        assert c.category_id == ref.params.catIds[k]
        assert c.ap == pytest.approx(p[p > -1].mean(), abs=1e-9)
        assert c.ar100 == pytest.approx(rc[rc > -1].mean(), abs=1e-9)
        assert c.ap50 == pytest.approx(p[0][p[0] > -1].mean(), abs=1e-9)


def test_many_detections_per_image_respect_max_dets(engine):
    gt, preds = random_case(7, n_images=4)
    rng = np.random.default_rng(1)
    preds += [det(1, 2, rng.uniform(0, 300, 4), float(rng.random())) for _ in range(150)]
    ref = reference_eval(gt, preds)
    assert np.abs(stats_array(evaluate(gt, preds, engine=engine).stats) - ref.stats).max() <= 1e-9


def test_class_without_ground_truth_is_reported_not_zero(engine):
    gt = coco_gt(IMAGES, CATS + [(3, "truck")], GT_BOXES)
    preds = [det(i, c, box, 0.9) for i, c, box in GT_BOXES] + [det(1, 3, (0, 0, 30, 30), 0.5)]
    r = evaluate(gt, preds, engine=engine)
    truck = r.per_class[2]
    assert (truck.name, truck.ap, truck.ar100, truck.note) == ("truck", None, None, NO_GT)
    assert truck.predictions == 1 and truck.gt_boxes == 0
    assert r.stats["AP"] == 1.0  # excluded from the mean, as COCO does
    assert r.to_dict()["per_class"]["truck"]["AP"] is None


def test_inputs_are_not_modified(engine):
    gt, preds = random_case(3)
    gt0, preds0 = copy.deepcopy(gt), copy.deepcopy(preds)
    evaluate(gt, preds, engine=engine)
    assert gt == gt0 and preds == preds0


def test_evaluation_prints_nothing(engine, capsys):
    gt, preds = random_case(4)
    evaluate(gt, preds, engine=engine)
    assert capsys.readouterr() == ("", "")


def test_prepared_ground_truth_gives_same_numbers_on_reuse(engine):
    gt, preds = random_case(5)
    truth = load_ground_truth(gt)
    first = evaluate(truth, preds, engine=engine).stats
    again = evaluate(truth, preds[: len(preds) // 2], engine=engine).stats
    assert evaluate(truth, preds, engine=engine).stats == first
    ref_half = reference_eval(gt, preds[: len(preds) // 2]).stats
    assert np.abs(stats_array(again) - ref_half).max() <= 1e-9


def test_engines_agree_on_every_array():
    gt, preds = random_case(11, crowd=0.2)
    a = evaluate(gt, preds, engine="pycocotools").arrays
    b = evaluate(gt, preds, engine="faster").arrays
    assert np.abs(a.precision - b.precision).max() <= 1e-12
    assert np.abs(a.recall - b.recall).max() <= 1e-12
