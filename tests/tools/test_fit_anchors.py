"""tools/fit_anchors.py: best-possible recall of the current anchors, better settings, a
config snippet train.py accepts."""

from __future__ import annotations

import argparse

import pytest

from taxdet.detection.training.cli_options import resolve
from tests.factories import make_tiny_taxonomies


@pytest.fixture(scope="module")
def tax(tmp_path_factory):
    return make_tiny_taxonomies(tmp_path_factory.mktemp("fit"), images_per_customer=2)


def test_prints_the_current_bpr_and_writes_the_best_as_a_config_snippet(tax, run_tool, tmp_path):
    out = tmp_path / "anchors.yaml"
    code, text, err = run_tool("fit_anchors", "--taxonomies", tax, "--image-size", "128",
                               "--out", out, "--top", "2")
    assert code == 0, err
    current, best = [line for line in text.splitlines() if line.startswith(("current", "best"))][:2]
    bpr = [float(line.split("BPR ")[1].split()[0]) for line in (current, best)]
    assert bpr[1] >= bpr[0]                      # the search includes the current anchors
    cfg = resolve(argparse.Namespace(config=str(out)))
    assert cfg.model.anchor_scale == float(best.split("anchor_scale ")[1].split()[0])


def test_refuses_to_write_over_a_taxonomy_file(tax, run_tool):
    target = tax / "customer_a.yaml"
    before = target.read_text()
    code, _, err = run_tool("fit_anchors", "--taxonomies", tax, "--out", target)
    assert code == 1 and "is an input of this command" in err
    assert target.read_text() == before


def test_the_printed_train_command_works_as_printed(tax, run_tool, tmp_path):
    """The command's flags parse and resolve to the fitted anchors, the same taxonomies and
    image size, with a --config given to fit_anchors.py merged under the snippet."""
    import shlex

    from taxdet.detection.training.cli_options import parse_args
    from taxdet.tools import train
    base = tmp_path / "base.yaml"
    base.write_text("optim: {lr: 0.02}\nmodel: {anchor_scale: 9.0}\n")
    out = tmp_path / "my anchors.yaml"
    code, text, err = run_tool("fit_anchors", "--taxonomies", tax, "--image-size", "256",
                               "--config", base, "--out", out, "--top", "1")
    assert code == 0, err
    command = text.splitlines()[text.splitlines().index(next(
        line for line in text.splitlines() if line.startswith("wrote"))) + 1].strip()
    words = shlex.split(command)
    assert words[:2] == ["python", "tools/train.py"]
    cfg = resolve(parse_args(train.build_parser(), words[2:]))
    best = text.split("best 1")[1]
    assert cfg.model.anchor_scale == float(best.split("anchor_scale ")[1].split()[0]) != 9.0
    assert cfg.optim.lr == 0.02 and cfg.model.image_size == 256
    assert cfg.data.taxonomies == [str(tax)]
    assert cfg.run.config_files == [str(base), str(out)]
