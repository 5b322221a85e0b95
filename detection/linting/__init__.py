"""The label linter: likely annotation errors per customer, from a model's detections, asked
only about the classes each customer's taxonomy labels.

| module | job |
| --- | --- |
| ``customer_view.py`` | what a customer labels: asked class, path compatibility, own label names |
| ``matching.py`` | per-image ground truth and detections; IoU / IoA in NumPy |
| ``scoring.py`` | ``LintConfig`` and the four checks of one image |
| ``issues.py`` | ``Issue``, ranking, per-image scores |
| ``linter.py`` | ``lint_samples``: every image checked, issues ranked (``LintResult``) |
| ``predictions.py`` | the images to lint (merge, customer, split side); a checkpoint's detections |
| ``crossfit.py`` | out-of-sample detections: K models, each predicting its held-out fold |
| ``lint_report.py`` | JSON and Markdown reports |
| ``issue_grid.py`` | the PNG grid of the top issues |

``tools/lint_labels.py`` is the command line; ``docs/linting.md`` the manual.
"""

from taxdet.detection.linting.customer_view import CustomerView, customer_views
from taxdet.detection.linting.issues import ISSUE_TYPES, Issue, image_scores, rank_issues
from taxdet.detection.linting.linter import LintResult, lint_samples
from taxdet.detection.linting.matching import ImageLabels, ImagePredictions, predictions_by_image
from taxdet.detection.linting.scoring import ImageCase, ImageInfo, LintConfig, check_image

__all__ = ["CustomerView", "customer_views", "ISSUE_TYPES", "Issue", "image_scores",
           "rank_issues", "LintResult", "lint_samples", "ImageLabels", "ImagePredictions",
           "predictions_by_image", "ImageCase", "ImageInfo", "LintConfig", "check_image"]
