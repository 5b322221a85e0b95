"""Lint a super-dataset's samples against a model's detections: every image's checks, ranked.

    result = lint_samples(samples, predictions, taxset, LintConfig())
    result.issues[:10]        # highest score first

``predictions`` maps a sample's ``image_id`` to its ``ImagePredictions`` (an image without an
entry has no detections). Each sample is checked in the terms of its own taxonomy
(``CustomerView``): the linter never asks a customer about a class it does not label.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from taxdet.datasets.sample import Sample
from taxdet.detection.linting.customer_view import customer_views
from taxdet.detection.linting.issues import Issue, image_scores, rank_issues
from taxdet.detection.linting.matching import ImageLabels, ImagePredictions
from taxdet.detection.linting.scoring import ImageCase, ImageInfo, LintConfig, check_image
from taxdet.supertax import TaxonomySet


@dataclass
class LintResult:
    """Ranked issues of the linted images, and how the predictions were made."""

    issues: list[Issue]
    images: dict[str, int]            # customer -> images linted
    image_ids: list[int]
    config: LintConfig
    predictions: str = ""             # where the detections came from, for the report
    warnings: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)  # the models: validation AP, decoding, boxes dropped

    def image_scores(self) -> dict[int, float]:
        """Per image id: the chance it holds an error (``issues.image_scores``)."""
        return image_scores(self.issues, self.image_ids)


def image_info(sample: Sample) -> ImageInfo:
    return ImageInfo(sample.taxonomy, int(sample.image_id), str(sample.file),
                     int(sample.source_image_id), str(sample.source_file))


def lint_samples(samples: list[Sample], predictions: dict[int, ImagePredictions],
                 taxset: TaxonomySet, cfg: LintConfig | None = None) -> LintResult:
    """Check every sample against its detections; issues ranked by score."""
    cfg = cfg or LintConfig()
    views = customer_views(taxset)
    empty = ImagePredictions.empty()
    issues: list[Issue] = []
    for s in samples:
        case = ImageCase(ImageLabels.of(s), predictions.get(s.image_id, empty),
                         views[s.taxonomy], image_info(s))
        issues += check_image(case, cfg)
    images = dict(sorted(Counter(s.taxonomy for s in samples).items()))
    return LintResult(rank_issues(issues), images, [s.image_id for s in samples], cfg)
