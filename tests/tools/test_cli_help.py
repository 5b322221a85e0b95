"""Every CLI's --help: a help text and the default for every option; train.py's --help is
grouped by section and imports no torch; --super-taxonomy picks among several super-taxonomies.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from taxdet.detection.training.cli_options import SECTIONS, options
from taxdet.tools import (
    evaluate,
    evaluate_classifier,
    export,
    fit_anchors,
    make_demo_data,
    merge_datasets,
    predict,
    train,
    train_classifier,
    upgrade_checkpoint,
    validate_taxonomies,
)
from tests.factories import make_tiny_taxonomies
from tests.paths import DRIVING, REPO

TOOLS = {"train": train, "evaluate": evaluate, "merge_datasets": merge_datasets,
         "make_demo_data": make_demo_data, "validate_taxonomies": validate_taxonomies,
         "predict": predict, "export": export, "fit_anchors": fit_anchors,
         "upgrade_checkpoint": upgrade_checkpoint, "train_classifier": train_classifier,
         "evaluate_classifier": evaluate_classifier}
HEAVY = ("torch", "effdet", "timm", "cv2", "albumentations")
ZOO = "kind: super-taxonomy\nname: zoo\nclasses: [{name: duck}]\n"
FARM = "kind: taxonomy\nname: farm\nsuper_taxonomy: zoo\nlabels:\n  - {name: Duck, maps_to: duck}\n"


def run_python(code: str) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter at the repo root (nothing imported yet)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, check=True)


@pytest.mark.parametrize("name", sorted(TOOLS))
def test_every_option_has_help_and_shows_its_default(name):
    parser = TOOLS[name].build_parser()
    for action in parser._actions:
        flag = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"{name}: {flag} has no help"
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in action.help, f"{name}: {flag} does not show its default"


def test_every_train_option_shows_the_fields_default():
    fields = [a for a in train.build_parser()._actions if "." in a.dest]
    switches = {"--overwrite", "--no-taxonomy-mask"}  # on/off switches of a field: no value
    assert {a.dest for a in fields} == {o.name for o in options()}
    for action in fields:
        if not switches & set(action.option_strings):
            assert re.search(r"\(default: [^)]+\)$", action.help), action.option_strings


def test_train_help_lists_sections_defaults_and_the_related_options():
    out = subprocess.run([sys.executable, "tools/train.py", "--help"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    flat = " ".join(out.split())  # help text is wrapped at the terminal width
    for section, description in SECTIONS.items():
        assert f"{section} (--{section}.*): {description}" in flat
    for opt in options():
        assert f"--{opt.name} " in flat
    assert "--model.image_size N, --image-size N" in flat and "(default: 512)" in flat
    assert "--optim.epochs N, --epochs N" in flat and "(default: 300)" in flat
    assert "(default: taxonomies/driving)" in flat and "(default: [0.75, 1.25])" in flat
    assert "it follows --model.image_size" in flat  # augment.image_size
    assert "whichever of --epochs and --steps ends first" in flat
    assert "--data.super_taxonomy NAME, --super-taxonomy NAME" in flat


def test_building_the_train_parser_imports_no_torch():
    proc = run_python(f"""
        import sys
        from taxdet.tools.train import build_parser
        build_parser().format_help()
        print([m for m in {HEAVY!r} if m in sys.modules])
    """)
    assert proc.stdout.strip() == "[]"


def test_train_help_imports_no_torch():
    proc = run_python(f"""
        import sys
        from taxdet.tools.train import main
        try:
            main(["--help"])
        except SystemExit as exit_:
            assert exit_.code == 0
        print([m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)
    """)
    assert "--model.image_size" in proc.stdout
    assert proc.stderr.strip().splitlines()[-1] == "[]"


# -- --super-taxonomy ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def two_supers(tmp_path_factory) -> Path:
    """The tiny demo's driving taxonomies (with data) next to a second super-taxonomy, zoo."""
    folder = make_tiny_taxonomies(tmp_path_factory.mktemp("supers"), images_per_customer=2)
    (folder / "zoo.yaml").write_text(ZOO)
    (folder / "farm.yaml").write_text(FARM)
    return folder


def assert_asks_for_the_flag(err: str) -> None:
    assert err.startswith("error: ")
    assert "found: driving, zoo" in err and "use --super-taxonomy NAME" in err


def test_merge_needs_and_takes_super_taxonomy(two_supers, tmp_path, capsys):
    out = tmp_path / "super.json"
    assert merge_datasets.main(["--taxonomies", str(two_supers), "--out", str(out)]) == 1
    assert_asks_for_the_flag(capsys.readouterr().err)
    assert not out.exists()
    assert merge_datasets.main(["--taxonomies", str(two_supers), "--out", str(out),
                                "--super-taxonomy", "driving"]) == 0
    names = {c["name"] for c in json.loads(out.read_text())["categories"]}
    assert "car" in names and "duck" not in names


def test_make_demo_data_needs_and_takes_super_taxonomy(tmp_path, capsys):
    folder = tmp_path / "taxonomies"
    folder.mkdir()
    for src in DRIVING.glob("*.yaml"):
        (folder / src.name).write_bytes(src.read_bytes())
    (folder / "zoo.yaml").write_text(ZOO)
    (folder / "farm.yaml").write_text(FARM)
    argv = [str(tmp_path / "demo"), "--taxonomies", str(folder), "--images-per-customer", "1",
            "--test-images", "1", "--image-size", "64"]
    assert make_demo_data.main(argv) == 1
    assert_asks_for_the_flag(capsys.readouterr().err)
    assert make_demo_data.main(argv + ["--super-taxonomy", "zoo"]) == 0
    assert (tmp_path / "demo" / "farm" / "annotations.json").exists()


def test_evaluate_needs_and_takes_super_taxonomy(two_supers, tmp_path, capsys):
    gt = two_supers.parent / "demo" / "test" / "annotations.json"
    preds = tmp_path / "preds.json"
    preds.write_text("[]")
    argv = ["--gt", str(gt), "--predictions", str(preds), "--taxonomies", str(two_supers)]
    assert evaluate.main(argv) == 1
    assert_asks_for_the_flag(capsys.readouterr().err)
    assert evaluate.main(argv + ["--super-taxonomy", "driving"]) == 0


def test_evaluate_super_taxonomy_needs_taxonomies(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        evaluate.parse_args(["--gt", "gt.json", "--predictions", "p.json",
                             "--super-taxonomy", "driving"])
    assert exit_.value.code == 2
    assert "--super-taxonomy needs --taxonomies" in capsys.readouterr().err


def test_train_needs_super_taxonomy_and_saves_it(two_supers, tmp_path, capsys):
    assert train.main(["--taxonomies", str(two_supers), "--output", str(tmp_path / "run"),
                       "--device", "cpu"]) == 1
    assert_asks_for_the_flag(capsys.readouterr().err)
    args = train.build_parser().parse_args(["--taxonomies", str(two_supers),
                                            "--super-taxonomy", "driving"])
    cfg = train.resolve(args)
    assert cfg.data.super_taxonomy == "driving"
    assert cfg.to_dict()["data"]["super_taxonomy"] == "driving"
