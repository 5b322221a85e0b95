"""Out-of-sample detections by cross-fitting: K models, each trained without one fold of the
images and predicting that fold.

An image's fold is ``floor(K * u)``, with ``u`` the split hash of ``taxdet.datasets.split``
(``hash_unit(split_key(sample, by), salt)``, the training config's ``split.by`` and
``split.salt``): it depends on the image alone, and with K = 10 and the default salt, fold 0
is exactly the default validation split (``u < 0.1``).

Fold ``f`` trains in ``<out>/fold<f>/`` on ``<out>/fold<f>_train.json`` (a ``super.json`` of
the other folds, no validation split), with the given training config otherwise, then its
``last.pt`` predicts fold ``f``'s images.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from pathlib import Path

from taxdet.core.errors import ConfigError
from taxdet.datasets import SuperDataset
from taxdet.datasets.sample import Sample
from taxdet.datasets.split import SplitConfig, hash_unit, split_key
from taxdet.detection.engine.command_line import merge_trees
from taxdet.detection.linting.matching import ImagePredictions
from taxdet.detection.linting.model_trust import ModelReport
from taxdet.detection.linting.predictions import predict_samples
from taxdet.detection.model.detector_config import TrainConfig
from taxdet.supertax import TaxonomySet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CrossFitConfig:
    """``folds`` models; their runs go to ``output``; ``steps`` > 0 overrides the training
    config's step budget; ``overwrite`` replaces fold runs already there."""

    folds: int
    output: str
    steps: int = 0
    overwrite: bool = False
    batch_size: int = 8      # images per prediction batch
    workers: int = 0         # prediction loader processes
    progress: bool = True

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ConfigError(f"--cross-fit needs at least 2 folds, got {self.folds}")
        if self.steps < 0:
            raise ConfigError(f"--steps must be >= 0, got {self.steps}")


def fold_of(sample: Sample, folds: int, split: SplitConfig) -> int:
    """The fold (0..folds-1) of one image, from its split hash."""
    return min(int(hash_unit(split_key(sample, split.by), split.salt) * folds), folds - 1)


def assign_folds(samples: list[Sample], folds: int, split: SplitConfig) -> list[list[Sample]]:
    """The samples of each fold, in input order."""
    out: list[list[Sample]] = [[] for _ in range(folds)]
    for s in samples:
        out[fold_of(s, folds, split)].append(s)
    return out


def fold_config(base: dict, taxonomies: list[str], train_json: Path, run_dir: Path,
                cfg: CrossFitConfig) -> TrainConfig:
    """The ``TrainConfig`` of one fold: ``base`` (a config tree, e.g. a recipe YAML) training
    on ``train_json`` without validation split, into ``run_dir``."""
    over: dict = {"data": {"taxonomies": list(taxonomies), "super_json": str(train_json)},
                  "split": {"val_fraction": 0.0},
                  "run": {"output": str(run_dir), "overwrite": cfg.overwrite, "resume": None,
                          "progress": cfg.progress}}
    if cfg.steps:
        over["optim"] = {"steps": cfg.steps}
        over["run"]["val_every"] = cfg.steps          # one checkpoint, at the end
    return TrainConfig.from_dict(merge_trees(copy.deepcopy(base), over),
                                 where="cross-fit training config")


def train_fold(base: dict, taxonomies: list[str], dataset: SuperDataset, train: list[Sample],
               fold: int, cfg: CrossFitConfig) -> Path:
    """Train fold ``fold``'s model on ``train``; return its ``last.pt``."""
    from taxdet.detection.training.trainer import Trainer  # torch + the whole training stack
    out = Path(cfg.output)
    train_json = out / f"fold{fold}_train.json"
    dataset.subset([s.image_id for s in train]).write(train_json)
    train_cfg = fold_config(base, taxonomies, train_json, out / f"fold{fold}", cfg)
    log.info(f"cross-fit: fold {fold + 1} of {cfg.folds}: training on {len(train)} images "
             f"into {train_cfg.run.output}")
    Trainer(train_cfg).fit()
    return Path(train_cfg.run.output) / "last.pt"


def cross_fit_predictions(dataset: SuperDataset, samples: list[Sample], base: dict,
                          taxonomies: list[str], cfg: CrossFitConfig,
                          report: ModelReport | None = None) -> dict[int, ImagePredictions]:
    """Out-of-sample detections for ``samples`` (a subset of ``dataset``): each fold's model
    trains on every image of ``dataset`` outside the fold and predicts the fold's samples.
    Folds without samples to predict are not trained. ``report`` collects each fold model's
    validation AP and dropped boxes."""
    from taxdet.detection.prediction.predictor import load_predictor
    split = TrainConfig.from_dict(base, where="cross-fit training config").split
    taxset: TaxonomySet = dataset.taxset
    folds = assign_folds(dataset.samples, cfg.folds, split)
    wanted = {s.image_id for s in samples}
    out: dict[int, ImagePredictions] = {}
    for f, held in enumerate(folds):
        targets = [s for s in held if s.image_id in wanted]
        if not targets:
            continue
        train = [s for g, fold in enumerate(folds) if g != f for s in fold]
        if not train:
            raise ConfigError(f"cross-fit fold {f}: every image falls in it; lint more images "
                              "or use fewer folds")
        ckpt = train_fold(base, taxonomies, dataset, train, f, cfg)
        predictor, _, train_cfg = load_predictor(ckpt, taxset=taxset)
        out.update(predict_samples(predictor, targets, taxset, train_cfg.model.image_size,
                                   cfg.batch_size, cfg.workers, cfg.progress))
        if report is not None:
            report.add(ckpt, predictor)
    return out
