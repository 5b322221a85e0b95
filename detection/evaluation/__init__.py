"""COCO bbox evaluation: plain (= pycocotools), federated over missing labels, customer view.

Typical use::

    from taxdet.detection.evaluation import evaluate
    result = evaluate("gt.json", "predictions.json")            # plain COCO
    result.stats["AP"], result.per_class, result.format_table()
    evaluate(gt, preds, taxset=supertax.load(["taxonomies/driving"]))  # federated / customer
"""

from taxdet.detection.evaluation.backends import (
                                          ENGINES,
                                          STAT_KEYS,
                                          CocoArrays,
                                          resolve_engine,
                                          summarize,
)
from taxdet.detection.evaluation.evaluator import evaluate, load_ground_truth
from taxdet.detection.evaluation.groundtruth import GroundTruth
from taxdet.detection.evaluation.inputs import EvalInputError
from taxdet.detection.evaluation.results import (
                                          NO_GT,
                                          NOT_PREDICTED,
                                          ClassResult,
                                          EvalResult,
                                          TaxonomyResult,
)

__all__ = [
    "ENGINES", "STAT_KEYS", "CocoArrays", "resolve_engine", "summarize", "evaluate",
    "load_ground_truth", "GroundTruth", "NO_GT", "NOT_PREDICTED", "ClassResult", "EvalResult",
    "TaxonomyResult", "EvalInputError",
]
