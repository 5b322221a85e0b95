"""TrainConfig: defaults < YAML (--config) < flags, aliases, strict keys and types, round trip."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import yaml

from taxdet.detection.engine.config_sections import coerce
from taxdet.detection.model.detector_config import TrainConfig
from taxdet.detection.training import cli_options
from taxdet.detection.training.cli_options import add_arguments, resolve


def parse(argv: list[str]) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return resolve(parser.parse_args(argv))


def write(tmp_path, text: str):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    return str(path)


def test_defaults_then_yaml_then_flags(tmp_path):
    config = write(tmp_path, "model: {name: efficientdet_d1, image_size: 384}\n"
                             "optim: {lr: 0.05, batch_size: 4}\n")
    cfg = parse(["--config", config, "--lr", "0.2"])
    assert cfg.optim.lr == 0.2                     # flag beats YAML
    assert cfg.model.name == "efficientdet_d1"     # YAML beats default
    assert cfg.optim.batch_size == 4
    assert cfg.optim.epochs == 300                 # default where neither says anything
    assert cfg.model.image_size == 384


def test_aliases_set_the_same_fields_as_the_dotted_flags():
    short = parse(["--lr", "0.5", "--steps", "7", "--image-size", "256", "--batch-size", "3",
                   "--epochs", "2", "--model", "efficientdet_d2", "--seed", "5",
                   "--taxonomies", "a", "b", "--output", "runs/x", "--val-every", "4"])
    dotted = parse(["--optim.lr", "0.5", "--optim.steps", "7", "--model.image_size", "256",
                    "--optim.batch_size", "3", "--optim.epochs", "2",
                    "--model.name", "efficientdet_d2", "--run.seed", "5",
                    "--data.taxonomies", "a", "b", "--run.output", "runs/x",
                    "--run.val_every", "4"])
    assert short == dotted
    assert (short.optim.lr, short.optim.steps, short.model.image_size) == (0.5, 7, 256)
    assert short.data.taxonomies == ["a", "b"]


def test_no_taxonomy_mask_switch():
    assert parse([]).run.taxonomy_mask is True
    assert parse(["--no-taxonomy-mask"]).run.taxonomy_mask is False


@pytest.mark.parametrize("text, message", [
    ("optim:\n  lr: 0.1\n  learning_rate: 0.1\n",
     r"exp\.yaml\.optim: unknown key\(s\) \['learning_rate'\]"),
    ("optimiser: {lr: 0.1}\n", r"exp\.yaml: unknown key\(s\) \['optimiser'\]"),
    ("optim: {lr: fast}\n", r"exp\.yaml\.optim\.lr: expected float, got 'fast'"),
    ("run: {progress: 1}\n", r"exp\.yaml\.run\.progress: expected bool, got 1"),
    ("labeler: {pos_iou: 0.3, neg_iou: 0.4}\n", r"exp\.yaml\.labeler: need 0 < neg_iou <= pos_iou"),
], ids=["unknown-key", "unknown-section", "wrong-type", "int-for-bool", "section-check"])
def test_bad_yaml_is_an_error_naming_the_file_and_the_field(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        parse(["--config", write(tmp_path, text)])


def test_flags_take_yaml_syntax_and_string_fields_keep_their_text():
    cfg = parse(["--augment.scale_jitter", "[0.5, 2]", "--run.output", "2024",
                 "--resume", "null", "--optim.amp", "false", "--lr", "1"])
    assert cfg.augment.scale_jitter == (0.5, 2.0)
    assert cfg.run.output == "2024" and cfg.run.resume is None
    assert cfg.optim.amp is False and cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    # YAML 1.1 reads "1e-3" (no dot) as a string; float fields still take it, flag or file
    assert parse(["--lr", "1e-3"]).optim.lr == 0.001


def test_yaml_exponent_without_a_dot_is_a_float(tmp_path):
    assert parse(["--config", write(tmp_path, "optim: {lr: 5e-4}\n")]).optim.lr == 0.0005


def test_augment_image_size_follows_the_model():
    assert parse(["--image-size", "384"]).augment.image_size == 384
    with pytest.raises(ValueError,
                       match="augment.image_size 320 differs from model.image_size 384"):
        TrainConfig.from_dict({"model": {"image_size": 384}, "augment": {"image_size": 320}})


def test_resolved_config_round_trips_through_dict_and_yaml(tmp_path):
    config = write(tmp_path, "augment: {scale_jitter: [0.5, 1.5]}\nsplit: {by: filename}\n")
    cfg = parse(["--config", config, "--image-size", "256", "--no-taxonomy-mask",
                 "--init-checkpoint", "runs/a/last.pt"])
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    # config.yaml in the run folder is a valid --config file for the same run
    saved = write(tmp_path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    assert parse(["--config", saved]) == cfg


def test_options_are_the_config_fields_with_their_help_and_defaults():
    # one source of truth: the parser lists the dataclass fields, with their own help text
    opts = {o.name: o for o in cli_options.options()}
    cfg = TrainConfig()
    for section in dataclasses.fields(TrainConfig):
        for f in dataclasses.fields(getattr(cfg, section.name)):
            opt = opts.pop(f"{section.name}.{f.name}")
            assert opt.help and opt.help == f.metadata["help"], opt.name
            if opt.name != "augment.image_size":  # follows model.image_size
                assert opt.default == getattr(getattr(cfg, section.name), f.name), opt.name
    assert not opts


def test_super_taxonomy_flag_is_saved_in_the_config():
    assert parse([]).data.super_taxonomy is None
    cfg = parse(["--super-taxonomy", "zoo"])
    assert cfg == parse(["--data.super_taxonomy", "zoo"])
    assert cfg.to_dict()["data"]["super_taxonomy"] == "zoo"
    # configs saved before the field existed still load
    old = cfg.to_dict()
    del old["data"]["super_taxonomy"]
    assert TrainConfig.from_dict(old).data.super_taxonomy is None


ANCHORS = ("model: {anchor_scale: 2.5, aspect_ratios: [[1.0, 1.0], [1.4, 0.7], [0.7, 1.4]], "
           "num_scales: 3}\n")


def test_anchor_settings_default_to_the_models_own():
    model = TrainConfig().model
    assert (model.anchor_scale, model.aspect_ratios, model.num_scales) == (None, None, None)
    assert model.anchor_overrides() == {}


def test_anchor_settings_from_the_train_cli_config_file(tmp_path):
    from taxdet.tools import train
    args = train.build_parser().parse_args(["--config", write(tmp_path, ANCHORS)])
    model = train.resolve(args).model
    assert model.anchor_scale == 2.5 and model.num_scales == 3
    assert model.aspect_ratios == [(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]
    assert model.anchor_overrides() == {"anchor_scale": 2.5, "num_scales": 3,
                                        "aspect_ratios": [(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]}


def test_anchor_settings_from_flags():
    cfg = parse(["--model.aspect_ratios", "[[1, 1], [2, 0.5]]", "--model.num_scales", "2",
                 "--model.anchor_scale", "3"])
    assert cfg.model.aspect_ratios == [(1.0, 1.0), (2.0, 0.5)]
    assert cfg.model.num_scales == 2 and cfg.model.anchor_scale == 3.0


def test_anchor_settings_round_trip_through_dict_yaml_and_checkpoint(tmp_path):
    from taxdet.detection.engine import checkpoint
    cfg = parse(["--config", write(tmp_path, ANCHORS)])
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    saved = write(tmp_path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    assert parse(["--config", saved]) == cfg
    checkpoint.save_atomic({"config": cfg.to_dict()}, tmp_path / "c.pt")
    stored = checkpoint.load(tmp_path / "c.pt")["config"]
    assert TrainConfig.from_dict(stored) == cfg
    assert stored["model"]["aspect_ratios"] == [(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]


@pytest.mark.parametrize("text, message", [
    ("model: {anchor_scale: 0}\n", r"model: anchor_scale must be > 0, got 0.0"),
    ("model: {num_scales: 0}\n", r"model: num_scales must be >= 1, got 0"),
    ("model: {num_scales: 1.5}\n", r"model\.num_scales: expected int, got 1.5"),
    ("model: {aspect_ratios: [[1.0, -1.0]]}\n", r"model: aspect_ratios must be a non-empty "
     r"list of positive \[x, y\] pairs"),
    ("model: {aspect_ratios: []}\n", r"model: aspect_ratios must be a non-empty"),
    ("model: {aspect_ratios: [[1.0, 1.0, 1.0]]}\n", r"model\.aspect_ratios\[0\]: expected "),
    ("model: {aspect_ratios: [1.0, 2.0]}\n", r"model\.aspect_ratios\[0\]: expected "),
], ids=["scale", "num-scales", "num-scales-type", "negative", "empty", "triple", "scalars"])
def test_bad_anchor_settings_name_the_field(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        parse(["--config", write(tmp_path, text)])


def test_coerce_list_of_pairs():
    t = list[tuple[float, float]] | None
    assert coerce([[1, 2], (3.5, 4)], t, "x") == [(1.0, 2.0), (3.5, 4.0)]
    assert coerce(None, t, "x") is None
    with pytest.raises(ValueError, match=r"x\[1\]: expected"):
        coerce([[1, 2], [3]], t, "x")
