"""The super-taxonomy tree: columns, parents, children, ancestors."""

import numpy as np
import pytest

from taxdet.supertax.parse import parse_file
from taxdet.supertax.tree import NO_PARENT, SuperClass, SuperTaxonomy
from tests.supertax.yamlfiles import DRIVING, write


@pytest.fixture
def driving(tmp_path) -> SuperTaxonomy:
    sup, diagnostics = parse_file(write(tmp_path, "driving.yaml", DRIVING))
    assert diagnostics == []
    return sup


def test_one_column_per_node_in_declared_depth_first_order(driving):
    assert driving.names == ["person", "pedestrian_adult", "pedestrian_child", "vehicle", "car",
                             "truck", "traffic_light"]
    assert driving.num_classes == 7  # parents are columns too: 2 parents + 4 children + 1 root leaf
    assert driving.column == {name: j for j, name in enumerate(driving.names)}


def test_parent_and_children_columns(driving):
    assert driving.parent.tolist() == [NO_PARENT, 0, 0, NO_PARENT, 3, 3, NO_PARENT]
    assert driving.children == [[1, 2], [], [], [4, 5], [], [], []]
    assert driving.parent_name(4) == "vehicle" and driving.parent_name(3) is None
    assert driving.exhaustive.tolist() == [True, False, False, False, False, False, False]


def test_ancestor_rows_expand_a_box_to_its_class_and_every_ancestor(driving):
    anc = driving.ancestors
    assert anc.dtype == bool and anc.shape == (7, 7)
    assert anc[driving.column["car"]].tolist() == [0, 0, 0, 1, 1, 0, 0]  # car -> vehicle + car
    assert anc[driving.column["traffic_light"]].tolist() == [0, 0, 0, 0, 0, 0, 1]  # a root: itself
    one_hot = np.eye(7, dtype=int)[[1, 5]]  # a pedestrian_adult box and a truck box
    targets = one_hot @ anc.astype(int)
    assert targets.tolist() == [[1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 1, 0, 1, 0]]


def test_ancestors_reach_through_several_levels():
    leaf = SuperClass("leaf")
    sup = SuperTaxonomy("deep", [SuperClass("root", children=[SuperClass("mid", children=[leaf])]),
                                 SuperClass("other")])
    assert sup.names == ["root", "mid", "leaf", "other"]
    assert sup.ancestors[2].tolist() == [True, True, True, False]  # leaf: root, mid, itself
    assert [sup.depth(j) for j in range(4)] == [0, 1, 2, 0]


def test_to_dict_is_the_yaml_format_without_defaults(driving):
    d = driving.to_dict()
    assert d["kind"] == "super-taxonomy" and d["name"] == "driving"
    assert d["classes"][0] == {"name": "person", "exhaustive": True,
                               "children": [{"name": "pedestrian_adult"},
                                            {"name": "pedestrian_child"}]}
    assert d["classes"][2] == {"name": "traffic_light"}
