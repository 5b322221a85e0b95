"""Score a classifier's logits: accuracy per taxonomy and class (customer and super views),
top-n, calibration, and OOD rejection.

Views of the same logits [N, K]:

* **customer view** (per taxonomy): the scores of the columns the taxonomy's labels map to,
  in the customer's own names; top-n accuracy (n = 1 .. ``MAX_N``, at most its number of
  classes), accuracy per label, a confusion matrix and calibration. The confidence of a
  prediction is its softmax probability among those columns, or for a sigmoid-trained model
  (bce / focal / hierarchical) the sigmoid of its logit.
* **super view**: the model's ranking of the trained columns (those some taxonomy of the model
  labels); a top-n hit is a target column or one of its descendants among the n best (a finer
  answer than the customer gave is right: ``pedestrian_child`` for a ``Human`` image).
* **OOD**: the images of labels with ``maps_to: null`` (never trained on) against the scored
  in-distribution images, by max-softmax, max-logit and energy over the trained columns, each
  with AUROC and the FPR at 95 % TPR; overall and per taxonomy (that taxonomy's images as ID).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from taxdet.datasets.classification_data import ClassificationSample
from taxdet.detection.classification import classifier_metrics as metrics
from taxdet.detection.evaluation.results import EvalResult, number
from taxdet.supertax import TaxonomySet

MAX_N = 5
OOD_SCORES = ("max_softmax", "max_logit", "energy")


@torch.no_grad()
def predict_logits(model: torch.nn.Module, loader, device: torch.device,
                   num_classes: int) -> np.ndarray:
    """[N, K] float32 logits of every image of ``loader``, in order (the model in eval mode)."""
    model.eval()
    out = [model(batch["image"].to(device)).float().cpu().numpy() for batch in loader]
    return np.concatenate(out) if out else np.zeros((0, num_classes), np.float32)


@dataclass
class CustomerView:
    """A taxonomy's scored columns: distinct super columns of its mapped labels, in label order,
    and each column's name(s) in the customer's labels (``"A/B"`` when two labels share one)."""

    taxonomy: str
    columns: list[int]
    names: list[str]

    @classmethod
    def of(cls, taxset: TaxonomySet, name: str) -> CustomerView:
        names: dict[int, list[str]] = {}
        for label, column in taxset.label_columns(name).items():
            if column is not None:
                names.setdefault(column, []).append(label)
        return cls(name, list(names), ["/".join(v) for v in names.values()])


@dataclass
class TaskResult:
    """One taxonomy's images in its own names."""

    taxonomy: str
    images: int
    classes: list[str]
    top_n: dict[int, float]
    per_class: dict[str, dict]        # label -> {"images", "top_n": {n: accuracy}}
    ece: float
    reliability: dict
    confusion: list[list[int]]        # [C, C], rows true labels
    confidence: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))
    correct: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, bool))

    def to_dict(self) -> dict:
        return {"images": self.images, "classes": self.classes,
                "top_n": {str(n): v for n, v in self.top_n.items()},
                "per_class": self.per_class, "ECE": self.ece, "reliability": self.reliability,
                "confusion": self.confusion}


@dataclass
class ClassifierEvaluation:
    """Everything one evaluation produced (module docstring)."""

    tasks: list[TaskResult]
    super_top_n: dict[int, float]
    super_per_class: dict[str, dict]
    ece: float
    reliability: dict
    ood: dict                         # score -> {"AUROC", "FPR95"}, plus "per_taxonomy"
    counts: dict
    warnings: list[str] = field(default_factory=list)

    def headline(self) -> dict:
        """The numbers a summary line or an ablation table shows."""
        return {"accuracy": _mean([t.top_n[1] for t in self.tasks]),
                "top2_super": self.super_top_n.get(2), "ECE": self.ece,
                "AUROC_max_logit": self.ood.get("max_logit", {}).get("AUROC")}

    def to_dict(self) -> dict:
        return {**self.headline(), "per_taxonomy": {t.taxonomy: t.to_dict() for t in self.tasks},
                "super": {"top_n": {str(n): v for n, v in self.super_top_n.items()},
                          "per_class": self.super_per_class},
                "calibration": {"ECE": self.ece, "reliability": self.reliability},
                "ood": self.ood, "counts": self.counts, "warnings": self.warnings}

    def tables(self) -> list[tuple[str, list[list[str]]]]:
        """(title, rows with a header row first) for every table of the report."""
        ns = range(1, MAX_N + 1)
        rows = [["taxonomy", "images", "classes", *(f"top-{n}" for n in ns), "ECE"]]
        rows += [[t.taxonomy, str(t.images), str(len(t.classes)),
                  *(number(t.top_n.get(n)) for n in ns), number(t.ece)] for t in self.tasks]
        out = [("Accuracy per taxonomy (customer view: its own labels)", rows)]
        tops = [f"top-{n}" for n in ns]
        rows = [["taxonomy", "label", "images", *tops]]
        rows += [[t.taxonomy, name, str(c["images"]), *(number(c["top_n"].get(n)) for n in ns)]
                 for t in self.tasks for name, c in t.per_class.items()]
        out.append(("Accuracy per class (customer view)", rows))
        rows = [["class", "images", *tops]]
        rows += [[name, str(c["images"]), *(number(c["top_n"].get(n)) for n in ns)]
                 for name, c in self.super_per_class.items()]
        rows.append(["all", str(self.counts.get("images", 0)),
                     *(number(self.super_top_n.get(n)) for n in ns)])
        out.append(("Super-taxonomy view (a descendant of the target counts as right)", rows))
        rows = [["score", "AUROC", "FPR@95TPR"]]
        rows += [[s, number(self.ood[s]["AUROC"]), number(self.ood[s]["FPR95"])]
                 for s in OOD_SCORES if s in self.ood]
        out.append((f"OOD: {self.counts.get('ood_images', 0)} OOD images against "
                    f"{self.counts.get('images', 0)} in-distribution ones", rows))
        return out

    # text and Markdown of ``tables()`` and ``warnings``, as the detector's results print them
    format_table = EvalResult.format_table
    to_markdown = EvalResult.to_markdown


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def _confidence(scores: np.ndarray, sigmoid: bool) -> np.ndarray:
    """[N] confidence of the top class of ``scores`` [N, C] (module docstring)."""
    if sigmoid:
        return 1.0 / (1.0 + np.exp(-np.asarray(scores, np.float64).max(axis=1)))
    return metrics.softmax(scores).max(axis=1)


def top_n_by_class(first: np.ndarray, classes: np.ndarray, names: dict[int, str], most: int
                   ) -> tuple[dict[int, float | None], dict[str, dict]]:
    """Top-n accuracy (n = 1 .. ``most``) from the rank of each image's first hit ``first`` [N]
    (0 = the best score): overall, and per class of ``classes`` [N] (``names``: class ->
    name, in the order shown) as ``{"images", "top_n"}``."""
    def top_n(rows: np.ndarray) -> dict[int, float | None]:
        return {n: float((first[rows] < n).mean()) if rows.any() else None
                for n in range(1, most + 1)}
    per_class = {name: {"images": int((classes == c).sum()), "top_n": top_n(classes == c)}
                 for c, name in names.items()}
    return top_n(np.ones(len(first), bool)), per_class


def task_result(view: CustomerView, logits: np.ndarray, columns: np.ndarray, sigmoid: bool,
                bins: int = metrics.ECE_BINS) -> TaskResult:
    """The customer view of one taxonomy's images: ``logits`` [N, K], ``columns`` [N] their
    target super columns (each one of ``view.columns``)."""
    scores = logits[:, view.columns]                                    # [N, C]
    index = {column: i for i, column in enumerate(view.columns)}
    target = np.array([index[c] for c in columns.tolist()], np.int64)   # [N] index in C
    C = len(view.columns)
    ranked = metrics.ranking(scores)                                    # [N, C]
    first = (ranked == target[:, None]).argmax(axis=1)                  # [N] rank of the target
    top_n, per_class = top_n_by_class(first, target, dict(enumerate(view.names)), min(MAX_N, C))
    predicted = ranked[:, 0] if len(target) else target
    correct = predicted == target
    confidence = _confidence(scores, sigmoid) if len(target) else np.zeros(0)
    ece, reliability = metrics.calibration(confidence, correct, bins)
    return TaskResult(view.taxonomy, len(target), view.names, top_n, per_class, ece, reliability,
                      metrics.confusion(target, predicted, C).tolist(), confidence, correct)


def super_view(logits: np.ndarray, columns: np.ndarray, trained: np.ndarray,
               taxset: TaxonomySet) -> tuple[dict[int, float], dict[str, dict]]:
    """Top-n hits in the super view (module docstring) over the ``trained`` [K] bool columns:
    ``{n: accuracy}`` and per target class ``{"images", "top_n"}``."""
    cols = np.flatnonzero(trained)
    ranked = cols[metrics.ranking(logits[:, cols])]                      # [N, C'] columns
    below = taxset.ancestors.T[columns]            # [N, K]: the target or a descendant of it
    good = np.take_along_axis(below, ranked, axis=1)                     # [N, C']
    first = np.where(good.any(axis=1), good.argmax(axis=1), len(cols))   # rank of the 1st hit
    names = {c: taxset.names[c] for c in np.unique(columns).tolist()}
    return top_n_by_class(first, columns, names, min(MAX_N, len(cols)))


def ood_result(logits: np.ndarray, ood_logits: np.ndarray, trained: np.ndarray,
               groups: dict[str, np.ndarray]) -> dict:
    """``{score: {"AUROC", "FPR95"}}`` of the in-distribution ``logits`` [N, K] against
    ``ood_logits`` [M, K] over the ``trained`` columns, and ``"per_taxonomy"``: the same with
    only the images of each group (name -> [N] bool) as in-distribution."""
    cols = np.flatnonzero(trained)
    ids = metrics.ood_scores(logits[:, cols]) if len(logits) else {}
    oods = metrics.ood_scores(ood_logits[:, cols]) if len(ood_logits) else {}

    def scored(rows: np.ndarray) -> dict:
        return {s: {"AUROC": metrics.auroc(ids[s][rows], oods[s]),
                    "FPR95": metrics.fpr_at_tpr(ids[s][rows], oods[s])}
                for s in OOD_SCORES} if ids and oods else {}

    out = scored(np.ones(len(logits), bool))
    out["per_taxonomy"] = {name: scored(rows) for name, rows in groups.items()}
    return out


def evaluate_logits(logits: np.ndarray, samples: list[ClassificationSample],
                    ood_logits: np.ndarray, taxset: TaxonomySet, trained: np.ndarray,
                    sigmoid: bool, taxonomies: list[str] | None = None) -> ClassifierEvaluation:
    """Every view of ``logits`` [N, K] of ``samples`` and ``ood_logits`` [M, K] of the OOD
    images. ``trained`` [K] bool: the model's columns; ``taxonomies``: the ones to report (all
    with samples by default); ``sigmoid``: the model was trained with a sigmoid loss."""
    names = np.array([s.taxonomy for s in samples], object)
    columns = np.array([s.column for s in samples], np.int64)
    wanted = taxonomies or [t.name for t in taxset.taxonomies if (names == t.name).any()]
    groups = {t: names == t for t in wanted}
    tasks = [task_result(CustomerView.of(taxset, t), logits[rows], columns[rows], sigmoid)
             for t, rows in groups.items()]
    confidence = np.concatenate([t.confidence for t in tasks] + [np.zeros(0)])
    correct = np.concatenate([t.correct for t in tasks] + [np.zeros(0, bool)])
    ece, reliability = metrics.calibration(confidence, correct)
    scored = np.any(list(groups.values()), axis=0) if groups else np.zeros(len(samples), bool)
    top_n, per_class = super_view(logits[scored], columns[scored], trained, taxset)
    warnings = [f"taxonomy {t}: no images to score" for t, rows in groups.items()
                if not rows.any()]
    if not len(ood_logits):
        warnings.append("no OOD images (labels with maps_to: null): OOD scores not computed")
    return ClassifierEvaluation(
        tasks, top_n, per_class, ece, reliability,
        ood_result(logits[scored], ood_logits, trained,
                   {t: rows[scored] for t, rows in groups.items()}),
        {"images": int(scored.sum()), "ood_images": len(ood_logits)}, warnings)
