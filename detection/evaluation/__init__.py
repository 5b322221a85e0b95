"""COCO bbox evaluation: plain (= pycocotools), federated over missing labels, customer view.

Typical use::

    from detection.evaluation import evaluate
    result = evaluate("gt.json", "predictions.json")            # plain COCO
    result.stats["AP"], result.per_class, result.format_table()
    evaluate(gt, preds, taxset=supertax.load(["taxonomies/driving"]))  # federated / customer
"""

from detection.evaluation.backends import ENGINES, STAT_KEYS, CocoArrays, resolve_engine, summarize
from detection.evaluation.evaluator import evaluate, load_ground_truth
from detection.evaluation.groundtruth import GroundTruth
from detection.evaluation.results import (NO_GT, NOT_PREDICTED, ClassResult, EvalResult,
                                          TaxonomyResult)
from detection.evaluation.inputs import EvalInputError

__all__ = [
    "ENGINES", "STAT_KEYS", "CocoArrays", "resolve_engine", "summarize", "evaluate",
    "load_ground_truth", "GroundTruth", "NO_GT", "NOT_PREDICTED", "ClassResult", "EvalResult",
    "TaxonomyResult", "EvalInputError",
]
