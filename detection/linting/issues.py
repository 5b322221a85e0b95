"""One suspected annotation error (``Issue``), their ranking, and per-image scores.

Issue types:

* ``missing_box``: the model is confident about an object of a class the customer labels (or
  labels coarsely, through an ancestor) and no ground-truth box covers it; ``box`` is the
  model's box, ``suggested`` the customer's label for it.
* ``wrong_class``: the model contradicts the class of a ground-truth box with a class the
  customer could have used; ``label`` is the box's label, ``suggested`` the model's.
* ``bad_box``: the model sees an object of the box's class near the box, but overlapping it
  poorly; ``model_box`` is where the model puts it.
* ``duplicate_box``: two ground-truth boxes of one class overlap almost entirely; ``ann_id``
  is the later annotation, ``other_ann_id`` the earlier.

Boxes are COCO ``[x, y, w, h]`` in the image's pixels; labels are the customer's own names.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

MISSING, WRONG_CLASS, BAD_BOX, DUPLICATE = "missing_box", "wrong_class", "bad_box", "duplicate_box"
ISSUE_TYPES = (MISSING, WRONG_CLASS, BAD_BOX, DUPLICATE)


@dataclass
class Issue:
    """A suspected annotation error; ``score`` in [0, 1], higher = more likely an error."""

    type: str
    score: float
    customer: str
    image_id: int                    # id in the super-dataset
    file_name: str                   # the image file
    box: list[float]                 # [x, y, w, h]
    message: str
    source_image_id: int = -1        # the image's id in the customer's annotation file
    source_file: str = ""            # the customer's annotation file
    ann_id: int | None = None        # the customer's annotation id of the box in question
    label: str | None = None         # the customer's label on that box
    suggested: str | None = None     # the customer's label the model suggests
    model_class: str | None = None   # the model's super-taxonomy class
    model_score: float | None = None
    model_box: list[float] | None = None
    iou: float | None = None         # of box and model_box (or of the duplicate pair)
    other_ann_id: int | None = None  # duplicate_box: the box it duplicates

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: dict) -> Issue:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def rank_issues(issues: list[Issue]) -> list[Issue]:
    """Highest score first; ties by customer, image, type and box (a stable, total order)."""
    return sorted(issues, key=lambda i: (-i.score, i.customer, i.image_id, i.type, i.box))


def image_scores(issues: list[Issue], image_ids: list[int]) -> dict[int, float]:
    """Per image: the probability that it holds at least one error if the issues were
    independent, ``1 - prod(1 - score)`` (0 for an image without issues)."""
    keep = {i: 1.0 for i in image_ids}
    for issue in issues:
        if issue.image_id in keep:
            keep[issue.image_id] *= 1.0 - min(max(issue.score, 0.0), 1.0)
    return {i: 1.0 - k for i, k in keep.items()}


def count_by(issues: list[Issue]) -> dict[str, dict[str, int]]:
    """``{customer: {type: count}}``, every type present (zeros included), customers sorted."""
    out: dict[str, dict[str, int]] = {}
    for issue in issues:
        row = out.setdefault(issue.customer, dict.fromkeys(ISSUE_TYPES, 0))
        row[issue.type] += 1
    return dict(sorted(out.items()))
