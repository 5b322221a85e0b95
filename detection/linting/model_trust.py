"""When the linter should not trust its own ranking: a model too weak to disagree with labels.

The linter ranks labels by how strongly its model's detections contradict them. A model with a
low validation AP contradicts good labels as often as bad ones, so its top issues are mostly
its own mistakes. The model's validation AP is the federated COCO AP@[.5:.95] on its run's
validation split (the ``AP`` that picks ``best.pt``), read from the checkpoint's training state
(``state.history``: the last validation at or before the checkpoint's step), else from the
``metrics.jsonl`` beside it. Below ``AP_FLOOR`` (0.2) the run warns, naming the AP and the
floor; without any recorded validation it says the quality is unknown.

    ap = validation_ap(Path("runs/x/last.pt"))     # ValidationAP or None
    warning = trust_warning(ap, "runs/x/last.pt")  # "" when the AP reaches the floor

``ModelReport`` collects, over the models a lint run predicts with (one checkpoint, or the
cross-fit folds), their validation APs, decoding and the degenerate boxes their predictors
dropped (``taxdet.detection.model.drawable_boxes``): the report's ``info`` and warnings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from taxdet.detection.engine import checkpoint
from taxdet.detection.model.drawable_boxes import DroppedBoxes

AP_FLOOR = 0.2
AP_NAME = "federated validation AP (COCO AP@[.5:.95])"


@dataclass(frozen=True)
class ValidationAP:
    """A model's validation AP at ``step`` and where it was read (``source``)."""

    value: float
    step: int
    source: str

    def to_dict(self) -> dict:
        return {"AP": self.value, "step": self.step, "source": self.source,
                "floor": AP_FLOOR, "which": AP_NAME}


def history_ap(state: dict, source: str) -> ValidationAP | None:
    """The last validation AP of a checkpoint's training ``state`` at or before its step."""
    step = int(state.get("step", 0))
    entries = [h for h in state.get("history") or []
               if isinstance(h, dict) and h.get("AP") is not None and h.get("step", 0) <= step]
    if not entries:
        return None
    last = entries[-1]
    return ValidationAP(float(last["AP"]), int(last["step"]), source)


def metrics_ap(path: Path, step: int) -> ValidationAP | None:
    """The last ``val`` AP at or before ``step`` in a run's ``metrics.jsonl``."""
    if not path.is_file():
        return None
    found = None
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        val = record.get("val") if isinstance(record, dict) else None
        if isinstance(val, dict) and val.get("AP") is not None and record.get("step", 0) <= step:
            found = ValidationAP(float(val["AP"]), int(record["step"]), str(path))
    return found


def validation_ap(ckpt_path: str | Path) -> ValidationAP | None:
    """The checkpoint's validation AP (module docstring); None when none was recorded."""
    path = Path(ckpt_path)
    state = checkpoint.load(path).get("state") or {}
    found = history_ap(state, f"{path} (training state)")
    if found is None:
        found = metrics_ap(path.parent / "metrics.jsonl", int(state.get("step", 1 << 62)))
    return found


def trust_warning(ap: ValidationAP | None, model: str) -> str:
    """The warning for linting with ``model`` whose validation AP is ``ap``; "" when it
    reaches ``AP_FLOOR``."""
    if ap is None:
        return (f"{model}: no validation AP recorded (no history in the checkpoint, no "
                f"metrics.jsonl beside it); the ranking is only as good as the model, and below "
                f"a {AP_NAME} of {AP_FLOOR:g} it means little")
    if ap.value >= AP_FLOOR:
        return ""
    return (f"{model}: {AP_NAME} {ap.value:.3f} at step {ap.step} is below {AP_FLOOR:g}: its "
            "detections disagree with good labels about as often as with bad ones, so the "
            "ranking means little; train longer (docs/linting.md#when-not-to-trust-it)")


@dataclass
class ModelReport:
    """What the lint run's models were: per model its validation AP; their decoding; the
    degenerate boxes their predictors dropped."""

    aps: dict[str, ValidationAP | None] = field(default_factory=dict)
    decoding: str = ""
    dropped: DroppedBoxes = field(default_factory=DroppedBoxes)

    def add(self, model: str | Path, predictor) -> None:
        """After ``predictor`` (a ``PredictBench`` of checkpoint ``model``) predicted."""
        self.aps[str(model)] = validation_ap(model)
        self.decoding = predictor.decoding
        self.dropped.merge(predictor.dropped)

    def warnings(self) -> list[str]:
        return [w for model, ap in self.aps.items() if (w := trust_warning(ap, model))]

    def info(self) -> dict:
        """``{"decoding", "validation_ap": {model: {...} or None}, "degenerate_boxes_dropped"}``
        for the report."""
        return {"decoding": self.decoding,
                "validation_ap": {m: ap.to_dict() if ap else None for m, ap in self.aps.items()},
                **self.dropped.info()}
