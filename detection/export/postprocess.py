"""Detections from an exported model's outputs, in NumPy: what effdet's post-processing does
after the network (``taxdet.detection.model.detector_wrappers.PredictBench``), outside the graph.

    dets = detect(boxes[i], class_logits[i], scale[i], (orig_h, orig_w))

Per image, with ``boxes`` [A, 4] and ``class_logits`` [A, K] from ``ExportNet``:

0. with ``hierarchy`` (hierarchy-consistent decoding, written by the exporter when on): each
   parent output's logit becomes the max over itself and its descendant outputs; with coverage
   decoding (the checkpoint's decoding plan) a ``descendant_decoded`` output takes the max over
   its descendant outputs only (its own logit ignored) and an ``excluded`` output is -inf,
   never detected (``apply_hierarchy``; ``taxdet.detection.prediction.hierarchy_decoding`` does
   the same in torch);
1. the ``max_detection_points`` (default 5000) highest logits over all A x K (anchor, output)
   pairs;
2. their boxes divided by ``scale`` (original pixels), clipped to the image, and the
   degenerate ones dropped: not finite, or under 1 px wide or high
   (``taxdet.detection.model.drawable_boxes``, the rule ``PredictBench`` applies; the graph
   already clamps the size regressions);
3. score = sigmoid(logit); greedy NMS per output class (IoU > ``iou_threshold`` suppressed,
   torchvision's rule), highest score first, stopping at ``max_det_per_image`` kept;
4. the ``max_det_per_image`` best kept with score > ``score_threshold`` returned, with how
   many dropped boxes would have been among them (``ImageDetections.dropped``).

Only NumPy is needed, so a deployment can run the ONNX file with onnxruntime and this module
(or a port of its ~90 lines) without torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from taxdet.detection.model.drawable_boxes import degenerate_in_top, drawable_numpy


@dataclass(frozen=True)
class PostprocessConfig:
    """effdet's and ``PredictBench``'s defaults. ``hierarchy``: one tuple per parent output,
    the parent first, then its descendant outputs; the parent's logit becomes the max over the
    tuple (empty: no hierarchy-consistent decoding). ``descendant_decoded``: outputs whose
    tuple's max leaves out their own logit; ``excluded``: outputs never detected (both from
    the checkpoint's decoding plan; empty in label maps written before it)."""

    max_detection_points: int = 5000
    max_det_per_image: int = 100
    iou_threshold: float = 0.5
    score_threshold: float = 0.001
    hierarchy: tuple[tuple[int, ...], ...] = ()
    descendant_decoded: tuple[int, ...] = ()
    excluded: tuple[int, ...] = ()

    def __post_init__(self) -> None:  # lists from a label map's JSON -> tuples
        object.__setattr__(self, "hierarchy", tuple(tuple(g) for g in self.hierarchy))
        for key in ("descendant_decoded", "excluded"):
            object.__setattr__(self, key, tuple(getattr(self, key)))

    def to_dict(self) -> dict:
        out = asdict(self)
        out["hierarchy"] = [list(g) for g in self.hierarchy]
        out["descendant_decoded"], out["excluded"] = list(self.descendant_decoded), \
            list(self.excluded)
        return out

    def decode(self, logits: np.ndarray) -> np.ndarray:
        """logits [A, K] -> [A, K] scored as configured (``apply_hierarchy``)."""
        return apply_hierarchy(logits, self.hierarchy, self.descendant_decoded, self.excluded)


def hierarchy_problem(hierarchy: object, num_outputs: int) -> str | None:
    """Why ``hierarchy`` (a label map's ``postprocess.hierarchy``) is not a list of lists of
    two or more distinct output indices in ``0 .. num_outputs - 1``; None when it is."""
    if not isinstance(hierarchy, (list, tuple)):
        return f"must be a list, got {type(hierarchy).__name__}"
    for group in hierarchy:
        ok = (isinstance(group, (list, tuple)) and len(group) >= 2
              and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < num_outputs
                      for i in group) and len(set(group)) == len(group))
        if not ok:
            return (f"entry {group!r} is not a list of 2 or more distinct output indices in "
                    f"0..{num_outputs - 1} (a parent, then its descendants)")
    return None


def plan_problem(post: dict, num_outputs: int) -> tuple[str, str] | None:
    """``(key, why)`` when a label map's ``postprocess.descendant_decoded`` or ``excluded`` is
    not a list of distinct output indices in ``0 .. num_outputs - 1`` (a descendant-decoded
    output must also head a ``hierarchy`` group); None when both are fine or absent."""
    heads = {g[0] for g in post.get("hierarchy", []) if isinstance(g, (list, tuple)) and g}
    for key in ("descendant_decoded", "excluded"):
        value = post.get(key, [])
        ok = (isinstance(value, (list, tuple)) and len(set(value)) == len(value)
              and all(isinstance(i, int) and not isinstance(i, bool) and 0 <= i < num_outputs
                      for i in value))
        if not ok:
            return key, (f"must be a list of distinct output indices in 0..{num_outputs - 1}, "
                         f"got {value!r}")
        if key == "descendant_decoded" and not set(value) <= heads:
            return key, (f"lists outputs {sorted(set(value) - heads)} that head no "
                         "'hierarchy' group (nothing to decode them from)")
    return None


def apply_hierarchy(logits: np.ndarray, hierarchy: tuple[tuple[int, ...], ...],
                    descendant_decoded: tuple[int, ...] = (), excluded: tuple[int, ...] = ()
                    ) -> np.ndarray:
    """logits [A, K] -> [A, K]: each group's first (parent) column replaced by the max over the
    group's columns (itself and its descendants; its descendants only when it is in
    ``descendant_decoded``); ``excluded`` columns -inf; the other columns unchanged."""
    if not hierarchy and not excluded:
        return logits
    out = logits.copy()
    for group in hierarchy:
        members = group[1:] if group[0] in descendant_decoded else group
        out[:, group[0]] = logits[:, list(members)].max(axis=1)
    out[:, list(excluded)] = -np.inf
    return out


@dataclass
class ImageDetections:
    """One image's detections: boxes [N, 4] x1 y1 x2 y2 original pixels, scores [N], classes
    [N] output indices (label map ``outputs[i]``), best first; ``anchors`` [N]: the anchor
    each came from (None when not known); ``dropped``: degenerate boxes that would have been
    among them."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    anchors: np.ndarray | None = None
    dropped: int = 0


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (1.0 / (1.0 + np.exp(-x.astype(np.float32)))).astype(np.float32)


def top_candidates(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(anchor [k], class [k]) of the k highest of logits [A, K], best first."""
    flat = logits.reshape(-1)
    k = min(k, flat.size)
    part = np.argpartition(-flat, k - 1)[:k] if k < flat.size else np.arange(flat.size)
    top = part[np.argsort(-flat[part], kind="stable")]
    return top // logits.shape[1], top % logits.shape[1]


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of box [4] with boxes [N, 4], x1 y1 x2 y2 (areas without +1, as torchvision)."""
    lt = np.maximum(box[:2], boxes[:, :2])
    rb = np.minimum(box[2:], boxes[:, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=1)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)


def per_class_nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                  iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Indices kept by greedy NMS within each class, highest score first (torchvision's
    ``batched_nms``). Candidates are visited best first over all classes, a kept box removing
    the boxes of its class that overlap it by IoU > ``iou_threshold``; with ``max_keep`` the
    visit stops after that many kept (the same first ``max_keep`` as a full run)."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size and (max_keep is None or len(keep) < max_keep):
        i, rest = order[0], order[1:]
        keep.append(i)
        same = np.flatnonzero(classes[rest] == classes[i])
        with np.errstate(invalid="ignore", divide="ignore"):  # 0 / 0 of empty boxes: kept
            overlap = iou_one_to_many(boxes[i], boxes[rest[same]]) > iou_threshold
        drop = np.zeros(rest.size, bool)
        drop[same[overlap]] = True
        order = rest[~drop]
    return np.asarray(keep, dtype=np.int64)


def detect(boxes: np.ndarray, class_logits: np.ndarray, scale: float,
           orig_size: tuple[int, int], cfg: PostprocessConfig = PostprocessConfig()
           ) -> ImageDetections:
    """One image's detections (module docstring). ``boxes`` [A, 4] model-input pixels;
    ``class_logits`` [A, K]; ``scale``: model-input pixels per original pixel; ``orig_size``:
    (height, width) of the original image."""
    class_logits = cfg.decode(np.asarray(class_logits, np.float32))
    anchor, cls = top_candidates(class_logits, cfg.max_detection_points)
    img_scale = np.float32(1.0) / np.float32(scale)
    cand, ok = drawable_numpy(np.asarray(boxes, np.float32)[anchor] * img_scale, *orig_size)
    scores = sigmoid(class_logits[anchor, cls])
    bad_scores = scores[~ok]
    cand, scores, cls, anchor = cand[ok], scores[ok], cls[ok], anchor[ok]
    keep = per_class_nms(cand, scores, cls, cfg.iou_threshold, cfg.max_det_per_image)
    keep = keep[scores[keep] > cfg.score_threshold]
    dropped = degenerate_in_top(scores[keep], bad_scores, cfg.max_det_per_image,
                                cfg.score_threshold)
    return ImageDetections(cand[keep], scores[keep], cls[keep].astype(np.int64), anchor[keep],
                           dropped)


def detect_batch(boxes: np.ndarray, class_logits: np.ndarray, scales, orig_sizes,
                 cfg: PostprocessConfig = PostprocessConfig()) -> list[ImageDetections]:
    """``detect`` for each image of boxes [B, A, 4], class_logits [B, A, K], scales [B],
    orig_sizes [B, 2] (h, w)."""
    return [detect(b, c, float(s), (int(hw[0]), int(hw[1])), cfg)
            for b, c, s, hw in zip(boxes, class_logits, scales, orig_sizes)]
