"""The classifier's losses on the driving tree: which columns each one trains for which sample."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from taxdet.detection.classification.classifier_config import ClassifierLossConfig
from taxdet.detection.classification.classifier_wrapper import (
    classification_loss,
    softmax_competitors,
)


def setup(taxset, customer: str, target: str):
    col = taxset.super.column
    anc = torch.as_tensor(taxset.ancestors)
    mask = torch.as_tensor(taxset.label_mask(customer))[None]
    return torch.tensor([col[target]]), mask, anc


def names(taxset, row) -> set[str]:
    return {taxset.names[j] for j in torch.nonzero(row).flatten().tolist()}


def test_the_softmax_weighs_the_target_against_labeled_off_path_classes_only(taxset):
    target, mask, anc = setup(taxset, "customer_b", "pedestrian_child")
    # b labels person (exhaustive: both children labeled), adults, children, cars, trucks;
    # person is the child's ancestor: not an alternative to it
    assert names(taxset, softmax_competitors(target, mask, anc)[0]) == {
        "pedestrian_child", "pedestrian_adult", "car", "truck"}
    target, mask, anc = setup(taxset, "customer_a", "person")
    assert names(taxset, softmax_competitors(target, mask, anc)[0]) == {"person"}


def gradient(taxset, customer, target_name, loss, masked=True) -> set[str]:
    """The columns whose logit gets a gradient."""
    target, mask, anc = setup(taxset, customer, target_name)
    logits = torch.randn(1, taxset.num_classes, requires_grad=True)
    classification_loss(logits, target, mask if masked else None, anc,
                        ClassifierLossConfig(loss)).backward()
    return names(taxset, logits.grad[0] != 0)


def test_which_columns_each_loss_trains_for_a_customer_a_human(taxset):
    # A labels only person: a softmax over one class teaches nothing, bce / focal train the
    # labeled column, hierarchical also the certain off-path negatives
    assert gradient(taxset, "customer_a", "person", "softmax") == set()
    assert gradient(taxset, "customer_a", "person", "bce") == {"person"}
    assert gradient(taxset, "customer_a", "person", "focal") == {"person"}
    assert gradient(taxset, "customer_a", "person", "hierarchical") == {
        "person", "vehicle", "car", "truck", "traffic_light"}
    assert gradient(taxset, "customer_a", "person", "softmax", masked=False) == set(
        taxset.names)


def test_bce_targets_carry_the_ancestors(taxset):
    target, mask, anc = setup(taxset, "customer_b", "pedestrian_child")
    logits = torch.zeros(1, taxset.num_classes)
    loss = classification_loss(logits, target, mask, anc, ClassifierLossConfig("bce"))
    # b's 5 labeled columns at logit 0: every cell costs log 2, the targets do not matter
    assert torch.isclose(loss, torch.log(torch.tensor(2.0)))
    logits[0, taxset.super.column["person"]] = 10.0   # right: a child is a person
    lower = classification_loss(logits, target, mask, anc, ClassifierLossConfig("bce"))
    assert lower < loss


def test_the_naive_softmax_is_the_plain_cross_entropy(taxset):
    logits = torch.randn(4, taxset.num_classes)
    target = torch.tensor([0, 2, 4, 6])
    anc = torch.as_tensor(taxset.ancestors)
    naive = classification_loss(logits, target, None, anc, ClassifierLossConfig("softmax"))
    assert torch.isclose(naive, F.cross_entropy(logits, target))
    # all columns labeled but masking on: the target's ancestors / descendants are left out
    # of its softmax, which can only lower each sample's loss
    mask = torch.ones(4, taxset.num_classes, dtype=torch.bool)
    assert classification_loss(logits, target, mask, anc, ClassifierLossConfig("softmax")) < naive
