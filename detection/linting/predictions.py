"""The images to lint and a checkpoint's detections on them.

* ``load_dataset``: the customers' datasets merged (as training merges them), or a prepared
  ``super.json``;
* ``select_customer`` / ``select_split``: one customer's images; the images a run's
  ``split.json`` puts on one side (matched by content hash, else by the customer's file and
  image id, else by super-dataset id);
* ``in_sample_warning``: what to tell when a checkpoint's detections are on images it trained
  on (they hide the errors it learned);
* ``predict_samples``: a loaded predictor's detections, resized like validation.
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import DataLoader
from tqdm import tqdm

from taxdet.core.errors import ConfigError
from taxdet.datasets import MergeConfig, SuperDataset, merge
from taxdet.datasets.sample import Sample
from taxdet.datasets.torch_dataset import DetectionDataset, collate
from taxdet.datasets.transforms import AugmentConfig, eval_transform
from taxdet.detection.evaluation.run_split import RunSplit, SplitEntry, read_split
from taxdet.detection.linting.matching import ImagePredictions, predictions_by_image
from taxdet.detection.model.detector_wrappers import PredictBench
from taxdet.detection.prediction.predictor import predict
from taxdet.supertax import TaxonomySet


def load_dataset(taxset: TaxonomySet, super_json: str | Path | None = None,
                 allow_unmapped: bool = False) -> SuperDataset:
    """Every image of the taxonomies' ``data:`` entries, merged; or of a ``super.json``."""
    if super_json:
        return SuperDataset.load(super_json, taxset)
    dataset, _ = merge(taxset, MergeConfig(allow_unmapped=allow_unmapped))
    return dataset


def select_customer(samples: list[Sample], taxset: TaxonomySet, name: str | None
                    ) -> list[Sample]:
    """The samples of taxonomy ``name`` (all when None); an unknown name is an error naming
    the known ones."""
    if name is None:
        return samples
    taxset.taxonomy(name)
    return [s for s in samples if s.taxonomy == name]


def _entry_key(e: SplitEntry) -> tuple[str, int] | None:
    if e.source_file and e.source_image_id is not None:
        return str(Path(e.source_file).resolve()), e.source_image_id
    return None


def matching_samples(samples: list[Sample], entries: list[SplitEntry]) -> list[Sample]:
    """The samples that ``entries`` of a ``split.json`` name, in sample order: matched by
    content hash when every entry and sample has one; else by the customer's annotation file
    and image id when every entry has them; else by super-dataset id."""
    if all(e.content_hash for e in entries) and all(s.content_hash for s in samples):
        wanted = {e.content_hash for e in entries}
        return [s for s in samples if s.content_hash in wanted]
    if entries and all(_entry_key(e) for e in entries):
        keys = {_entry_key(e) for e in entries}
        return [s for s in samples
                if (str(Path(s.source_file).resolve()), s.source_image_id) in keys]
    ids = {e.id for e in entries}
    return [s for s in samples if s.image_id in ids]


def select_split(samples: list[Sample], split: RunSplit, side: str) -> list[Sample]:
    """The samples ``split`` puts on ``side`` (``train``, ``val`` or ``all``); a side none of
    whose images is among the samples is an error naming the split file."""
    entries = split.side(side)
    chosen = matching_samples(samples, entries)
    if entries and not chosen:
        raise ConfigError(f"{split.path}: none of the {len(entries)} {side} images is among the "
                          f"{len(samples)} images of the taxonomies' data; lint with the "
                          "taxonomies the run trained on")
    return chosen


def in_sample_warning(checkpoint: str | Path, samples: list[Sample]) -> str:
    """The warning for linting ``samples`` with ``checkpoint``'s detections: how many of them
    its run's ``split.json`` (beside the checkpoint) says it trained on, when that is known."""
    path = Path(checkpoint).parent / "split.json"
    advice = ("use --run RUN --split val (images the run did not train on) or --cross-fit K "
              "for out-of-sample detections")
    if not path.is_file():
        return (f"{checkpoint}: cannot tell which images it trained on (no split.json beside "
                "it); detections on images a model trained on hide the errors it learned "
                f"(in-sample); {advice}")
    trained = matching_samples(samples, read_split(path).train)
    if not trained:
        return ""
    return (f"{len(trained)} of {len(samples)} images were in the training split of "
            f"{checkpoint} ({path}): its detections on them are in-sample and hide the errors "
            f"it learned; {advice}")


def predict_samples(predictor: PredictBench, samples: list[Sample], taxset: TaxonomySet,
                    image_size: int, batch_size: int = 8, workers: int = 0,
                    progress: bool = True) -> dict[int, ImagePredictions]:
    """The predictor's detections on every sample, by image id (boxes in original pixels)."""
    if not samples:
        return {}
    transform = eval_transform(AugmentConfig(image_size=image_size))
    dataset = DetectionDataset(samples, taxset, transform)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=collate)
    device = next(predictor.parameters()).device
    with tqdm(total=len(samples), unit="img", desc="predict", disable=not progress) as bar:
        results = predict(predictor, loader, device, on_batch=bar.update)
    return predictions_by_image(results)
