"""Hierarchy-consistent decoding of a predictor: on or off, and auto.

Before top-k and NMS, each parent column's score at each anchor becomes the max of its own score
and the scores of all its descendants (``taxdet.detection.model.hierarchy_scores``, which
``PredictBench`` applies when its ``hierarchy`` is set).

    on = resolve_hierarchy_decoding(None, taxset)            # auto: on iff any parent/child
    set_hierarchy_decoding(predictor, taxset, False)          # a PredictBench, both ways

``ancestors`` [K, K] bool is ``supertax.TaxonomySet.ancestors``: ``ancestors[j, i]`` is True iff
``i`` is ``j`` or an ancestor of ``j``; the descendants of ``i`` are the ``j`` with
``ancestors[j, i]``. ``taxdet.detection.export.postprocess`` applies the same rule in NumPy to the
outputs of an exported model (``hierarchy_groups`` gives it the columns).
"""

from __future__ import annotations

import numpy as np
import torch

from taxdet.detection.model.detector_wrappers import PredictBench
from taxdet.detection.model.hierarchy_scores import has_hierarchy
from taxdet.supertax import TaxonomySet


def resolve_hierarchy_decoding(option: bool | None, taxset: TaxonomySet) -> bool:
    """The decoding to use: ``option`` when given, else (None, auto) on iff the
    super-taxonomy has any parent/child relation."""
    return has_hierarchy(taxset.ancestors) if option is None else bool(option)


def set_hierarchy_decoding(predictor: PredictBench, taxset: TaxonomySet,
                           option: bool | None = None) -> bool:
    """Switch ``predictor``'s hierarchy-consistent decoding (``option``: True, False or None =
    auto) in place, e.g. to score one loaded checkpoint both ways; returns whether it is on."""
    on = resolve_hierarchy_decoding(option, taxset)
    predictor.hierarchy = (torch.as_tensor(np.asarray(taxset.ancestors), dtype=torch.bool)
                           if on else None)
    return on
