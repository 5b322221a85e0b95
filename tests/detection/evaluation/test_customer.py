"""Customer view: super-column predictions scored in a customer's own label names."""

import numpy as np
import pytest

from taxdet.detection.evaluation import NOT_PREDICTED, EvalInputError, evaluate
from taxdet.supertax import TaxonomySet
from tests.detection.evaluation.eval_cases import coco_gt, det, reference_eval, stats_array

PERSON, ADULT, VEHICLE, CAR = 1, 2, 4, 5   # column + 1 in the driving super-taxonomy
H1, H2, DOG, CAR_BOX = (10, 10, 40, 90), (200, 50, 40, 90), (300, 300, 60, 40), (400, 100, 120, 60)


def customer_a_gt():
    """customer_a's own file: Human (-> person) and Dog (-> null), its own category ids."""
    return coco_gt([(1, 640, 480), (2, 640, 480)], [(7, "Human"), (9, "Dog")],
                   [(1, 7, H1), (2, 7, H2), (2, 9, DOG)])


def super_predictions():
    return [det(1, PERSON, H1, 0.9), det(2, PERSON, H2, 0.4), det(2, PERSON, DOG, 0.6),
            det(1, ADULT, H1, 0.95),        # customer_a has no adult label: not scored
            det(2, CAR, CAR_BOX, 0.8), det(2, VEHICLE, CAR_BOX, 0.8)]


def test_customer_labels_get_their_columns_detections(driving, engine):
    r = evaluate(customer_a_gt(), super_predictions(), taxset=driving, engine=engine)
    assert (r.mode, r.customer) == ("customer", "customer_a")  # inferred from Human, Dog
    human = r.per_class[0]
    # Human <- person: 0.9 TP (H1), 0.6 FP (dog box), 0.4 TP (H2): P 1, 1/2, 2/3 at R 1/2, 1/2, 1
    # AP = (51 * 1 + 50 * 2/3) / 101 = 0.834983 at every IoU (exact boxes)
    assert (human.name, human.category_id, human.predictions) == ("Human", 7, 3)
    assert human.ap == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-12)
    assert r.counts["predictions_of_unmapped_classes"] == 3  # adult, car, vehicle


def test_unmapped_customer_label_is_not_predicted_and_left_out_of_means(driving, engine):
    r = evaluate(customer_a_gt(), super_predictions(), taxset=driving, engine=engine)
    dog = r.per_class[1]
    assert (dog.name, dog.ap, dog.note, dog.gt_boxes) == ("Dog", None, NOT_PREDICTED, 1)
    # the means equal pycocotools on the mapped detections, over Human only
    mapped = [det(1, 7, H1, 0.9), det(2, 7, H2, 0.4), det(2, 7, DOG, 0.6)]
    ref = reference_eval(customer_a_gt(), mapped, cat_ids=[7])
    assert np.abs(stats_array(r.stats) - ref.stats).max() <= 1e-9


def test_customer_can_be_named_explicitly(driving, engine):
    r = evaluate(customer_a_gt(), super_predictions(), taxset=driving, customer="customer_a",
                 engine=engine)
    assert r.customer == "customer_a"


def test_coarse_customer_label_scores_the_ancestor_column(driving, engine):
    # customer_c's Vehicle maps to the vehicle column (training fills it from car/truck boxes)
    gt = coco_gt([(1, 640, 480)], [(1, "Vehicle"), (2, "Traffic_light")], [(1, 1, CAR_BOX)])
    preds = [det(1, VEHICLE, CAR_BOX, 0.7), det(1, CAR, CAR_BOX, 0.9)]
    r = evaluate(gt, preds, taxset=driving, engine=engine)
    assert r.customer == "customer_c"
    assert r.per_class[0].ap == pytest.approx(1.0, abs=1e-15) and r.per_class[0].predictions == 1
    assert r.per_class[1].note == "no ground truth"


def with_customer_d(driving) -> TaxonomySet:
    d = driving.to_dict()
    d["taxonomies"].append({"name": "customer_d", "super_taxonomy": "driving",
                            "sampling_weight": 1.0,
                            "labels": [{"name": "Car", "maps_to": "car", "box_weight": 1.0},
                                       {"name": "Auto", "maps_to": "car", "box_weight": 1.0}]})
    return TaxonomySet.from_dict(d)


def test_two_labels_on_one_column_both_get_its_detections_and_are_reported(driving, engine):
    gt = coco_gt([(1, 640, 480)], [(1, "Car"), (2, "Auto")], [(1, 1, CAR_BOX), (1, 2, CAR_BOX)])
    r = evaluate(gt, [det(1, CAR, CAR_BOX, 0.9)], taxset=with_customer_d(driving),
                 customer="customer_d", engine=engine)
    assert [c.predictions for c in r.per_class] == [1, 1]
    assert any("all map to super class 'car'" in w for w in r.warnings)


def test_customer_names_fitting_several_taxonomies_need_customer(driving):
    gt = coco_gt([(1, 640, 480)], [(1, "Car")], [])  # customer_b and customer_d both have Car
    with pytest.raises(EvalInputError, match="several taxonomies.*--customer"):
        evaluate(gt, [], taxset=with_customer_d(driving))


def test_names_of_no_taxonomy_are_an_error(driving):
    gt = coco_gt([(1, 640, 480)], [(1, "Bicycle")], [])
    with pytest.raises(EvalInputError, match="neither super-taxonomy classes"):
        evaluate(gt, [], taxset=driving)


def test_unknown_customer_and_foreign_labels_are_errors(driving):
    with pytest.raises(EvalInputError, match="unknown customer taxonomy 'customer_z'"):
        evaluate(customer_a_gt(), [], taxset=driving, customer="customer_z")
    with pytest.raises(EvalInputError, match=r"\['Human', 'Dog'\] are not labels of taxonomy"):
        evaluate(customer_a_gt(), [], taxset=driving, customer="customer_b")


def test_unknown_names_get_case_insensitive_suggestions(driving):
    with pytest.raises(EvalInputError, match=r"unknown customer taxonomy 'Customer_A'; known: "
                                             r"customer_a, customer_b, customer_c; did you mean "
                                             r"'customer_a'\?"):
        evaluate(customer_a_gt(), [], taxset=driving, customer="Customer_A")
    gt = coco_gt([(1, 640, 480)], [(1, "human"), (2, "Dog")], [(1, 1, H1)])
    with pytest.raises(EvalInputError, match=r"categories \['human'\] are not labels of taxonomy "
                                             r"'customer_a' \(Human, Dog\); 'human': did you "
                                             r"mean 'Human'\?"):
        evaluate(gt, [], taxset=driving, customer="customer_a")
    with pytest.raises(EvalInputError, match=r"nor the labels of one taxonomy .*; 'human': did "
                                             r"you mean 'Human'\?$"):
        evaluate(gt, [], taxset=driving)                      # customer inferred: none fits
