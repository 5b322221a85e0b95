"""How a predictor turns class logits into scores: ``own``, ``hierarchy`` or ``coverage``.

* ``own``: each column its own score.
* ``hierarchy``: before top-k and NMS, each parent column's score at each anchor becomes the
  max of its own score and the scores of all its descendants
  (``taxdet.detection.model.hierarchy_scores``, which ``PredictBench`` applies when its
  ``hierarchy`` is set).
* ``coverage`` (the default): hierarchy decoding with the checkpoint's decoding plan
  (``checkpoint["decoding_plan"]``, from the training's coverage counts): a column that got
  (almost) no background negatives is scored from its trusted descendants only, its own column
  ignored; one with no background negative and no descendant is never predicted
  (``taxdet.supertax.decoding_rule``). A checkpoint without a plan decodes as ``hierarchy``
  (``own`` for a flat taxonomy).

An option is one of those names, or the older booleans of ``--[no-]hierarchy-decoding``:
True = ``hierarchy``, False = ``own``, None = the default (``coverage``).

    matrix = decoding_matrix("coverage", taxset, plan)        # [K, K] bool, or None: own
    set_hierarchy_decoding(predictor, taxset, "own")            # a PredictBench, any way

``ancestors`` [K, K] bool is ``supertax.TaxonomySet.ancestors``: ``ancestors[j, i]`` is True iff
``i`` is ``j`` or an ancestor of ``j``. ``taxdet.detection.export.postprocess`` applies the same
decoding in NumPy to the outputs of an exported model.
"""

from __future__ import annotations

import numpy as np
import torch

from taxdet.core.errors import ConfigError
from taxdet.detection.model.detector_wrappers import PredictBench
from taxdet.detection.model.hierarchy_scores import (
    coverage_matrix,
    decoding_groups,
    has_hierarchy,
)
from taxdet.supertax import TaxonomySet

DECODINGS = ("own", "hierarchy", "coverage")
DEFAULT_DECODING = "coverage"
Decoding = bool | str | None   # a name of DECODINGS; True / False / None: hierarchy / own / default


def decoding_mode(option: Decoding) -> str:
    """The decoding's name for ``option`` (module docstring); ``ConfigError`` for another."""
    if option is None:
        return DEFAULT_DECODING
    if isinstance(option, bool):
        return "hierarchy" if option else "own"
    if option not in DECODINGS:
        raise ConfigError(f"decoding {option!r}: expected one of {', '.join(DECODINGS)}")
    return str(option)


def resolve_hierarchy_decoding(option: Decoding, taxset: TaxonomySet) -> bool:
    """Whether any column takes its descendants' scores: ``hierarchy`` always, ``own`` never,
    ``coverage`` (None) iff the super-taxonomy has any parent/child relation."""
    mode = decoding_mode(option)
    return mode == "hierarchy" or (mode == "coverage" and has_hierarchy(taxset.ancestors))


def decoding_matrix(option: Decoding, taxset: TaxonomySet, plan: dict | None = None
                    ) -> np.ndarray | None:
    """The decoding matrix [K, K] bool of ``option`` (``hierarchy_scores``), None when every
    column keeps its own score. ``plan``: the checkpoint's decoding plan (coverage only)."""
    mode = decoding_mode(option)
    if mode == "own":
        return None
    if mode == "hierarchy":
        return np.asarray(taxset.ancestors, dtype=bool)
    matrix = coverage_matrix(taxset.ancestors, list(taxset.names), plan)
    return matrix if decoding_groups(matrix) else None


def set_hierarchy_decoding(predictor: PredictBench, taxset: TaxonomySet,
                           option: Decoding = None, plan: dict | None = None) -> bool:
    """Switch ``predictor``'s decoding to ``option`` in place, e.g. to score one loaded
    checkpoint several ways; returns whether any column's score changes. ``plan`` (the
    checkpoint's decoding plan) is kept on the predictor (``predictor.decoding_plan``) for
    later switches; ``predictor.decoding`` names the decoding."""
    if plan is not None or not hasattr(predictor, "decoding_plan"):
        predictor.decoding_plan = plan
    matrix = decoding_matrix(option, taxset, predictor.decoding_plan)
    predictor.decoding = decoding_mode(option)
    predictor.hierarchy = None if matrix is None else torch.as_tensor(matrix, dtype=torch.bool)
    return matrix is not None
