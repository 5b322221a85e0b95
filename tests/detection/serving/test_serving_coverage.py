"""The service's heads apply the checkpoint's decoding plan: a customer's descendant-decoded
output is scored from its descendant columns only, an excluded one is never detected."""

from __future__ import annotations

import numpy as np

from taxdet.detection.export.shared_trunk import customer_head
from taxdet.detection.model.hierarchy_scores import coverage_matrix
from tests.detection.prediction.test_coverage_decoding import PLAN


def test_a_customer_head_decodes_with_the_plan(taxset):
    col = {n: j for j, n in enumerate(taxset.names)}
    m = coverage_matrix(taxset.ancestors, taxset.names, PLAN)
    head = customer_head(None, taxset, "customer_c", m)
    assert head.columns == (col["vehicle"], col["traffic_light"], col["car"], col["truck"])
    assert head.hierarchy == ((0, 2, 3),)
    assert (head.descendant_decoded, head.excluded) == ((0,), (1,))
    logits = np.random.default_rng(0).normal(0, 3, (50, 4)).astype(np.float32)
    out = head.logits(logits)
    np.testing.assert_array_equal(out[:, 0], logits[:, 2:].max(1))   # own column ignored
    assert np.isneginf(out[:, 1]).all()
    # the older bool still means hierarchy decoding
    old = customer_head(None, taxset, "customer_c", True)
    assert (old.hierarchy, old.descendant_decoded, old.excluded) == (((0, 2, 3),), (), ())
