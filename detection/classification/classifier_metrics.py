"""Classification metrics in numpy: rankings, confusion, calibration (ECE), OOD scores and
their AUROC / FPR at 95 % TPR.

Shapes: N images, C scored classes. Scores are "higher = more of that class" (logits); an OOD
score is "higher = more in-distribution" (so the in-distribution images are the positives).
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15
OOD_TPR = 0.95


def softmax(logits: np.ndarray) -> np.ndarray:
    """[N, C] -> [N, C] probabilities (rows sum to 1), computed stably in float64."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def logsumexp(logits: np.ndarray) -> np.ndarray:
    """[N, C] -> [N] ``log(sum(exp(logits)))``, stably."""
    z = np.asarray(logits, np.float64)
    top = z.max(axis=1)
    return top + np.log(np.exp(z - top[:, None]).sum(axis=1))


def ranking(scores: np.ndarray) -> np.ndarray:
    """[N, C] -> [N, C] column indices from the highest score down (ties: the lower index
    first)."""
    return np.argsort(-np.asarray(scores, np.float64), axis=1, kind="stable")


def confusion(target: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """[C, C] int64 counts: row = true class, column = predicted class."""
    out = np.zeros((classes, classes), np.int64)
    np.add.at(out, (np.asarray(target, np.int64), np.asarray(predicted, np.int64)), 1)
    return out


def calibration(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS
                ) -> tuple[float, dict]:
    """Expected calibration error and the reliability diagram's bins.

    ``confidence`` [N] in [0, 1], ``correct`` [N] bool. Bin b holds the confidences in
    ``(b / bins, (b + 1) / bins]`` (0 goes to the first bin). ECE = sum over bins of
    ``count_b / N * |accuracy_b - mean confidence_b|`` (0 for no images). The dict holds per
    bin ``edges`` [bins + 1], ``count``, ``confidence`` and ``accuracy`` (NaN where empty).
    """
    conf = np.clip(np.asarray(confidence, np.float64), 0.0, 1.0)
    right = np.asarray(correct, bool)
    which = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, conf, bins) / count
        accuracy = np.bincount(which, right.astype(np.float64), bins) / count
    gaps = np.where(count > 0, np.abs(accuracy - mean_conf), 0.0)
    ece = float((count * gaps).sum() / max(len(conf), 1))
    return ece, {"edges": np.linspace(0, 1, bins + 1).tolist(), "count": count.tolist(),
                 "confidence": mean_conf.tolist(), "accuracy": accuracy.tolist()}


def ood_scores(logits: np.ndarray) -> dict[str, np.ndarray]:
    """The three OOD scores of ``logits`` [N, C], each [N], higher = more in-distribution:
    ``max_softmax`` (the largest softmax probability), ``max_logit`` and ``energy`` (the
    negative free energy ``logsumexp(logits)``)."""
    return {"max_softmax": softmax(logits).max(axis=1),
            "max_logit": np.asarray(logits, np.float64).max(axis=1),
            "energy": logsumexp(logits)}


def auroc(id_scores: np.ndarray, ood_scores_: np.ndarray) -> float | None:
    """Area under the ROC curve with the in-distribution images as positives: the chance that
    a random ID image scores above a random OOD one (ties count one half). None if either set
    is empty."""
    pos, neg = np.asarray(id_scores, np.float64), np.asarray(ood_scores_, np.float64)
    if not len(pos) or not len(neg):
        return None
    _, inverse, counts = np.unique(np.concatenate([pos, neg]), return_inverse=True,
                                   return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2)[inverse]  # 1-based; ties share their mean rank
    return float((ranks[:len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def fpr_at_tpr(id_scores: np.ndarray, ood_scores_: np.ndarray, tpr: float = OOD_TPR
               ) -> float | None:
    """Share of OOD images accepted at the threshold that accepts ``tpr`` of the ID images:
    the threshold is the ``ceil(tpr * N_id)``-th highest ID score, an image is accepted when
    its score is >= it. None if either set is empty."""
    pos, neg = np.sort(np.asarray(id_scores, np.float64))[::-1], np.asarray(ood_scores_)
    if not len(pos) or not len(neg):
        return None
    threshold = pos[int(np.ceil(tpr * len(pos))) - 1]
    return float((neg >= threshold).mean())
