"""A training run's train / val split (``split.json``) and which ground-truth images it names.

``split.json`` (written by training into its output folder)::

    {"format": 1, "val_fraction": 0.1, "salt": "split-v1", "by": "content" | "filename",
     "train": [{"id": 1, "file_name": "...", "content_hash": "...",
                "source_file": "...", "source_image_id": 4}, ...],
     "val": [...]}

``id`` is the image's id in the super-dataset the run trained on; ``source_file`` and
``source_image_id`` (optional) say where the image came from. A ground truth's images are
matched to the entries, in this order of preference:

1. by ``content_hash``, when the ground truth's images carry hashes (``super.json`` does) and
   the entries do: robust to a super-dataset merged again with other ids;
2. by ``source_image_id``, when the ground truth is a customer's own annotation file named as
   the entries' ``source_file`` (only the entries from that file count);
3. by ``id`` otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from taxdet.core.json_files import load_json
from taxdet.datasets.coco_io import check_int
from taxdet.detection.evaluation.inputs import EvalInputError

SPLIT_FILE = "split.json"
SIDES = ("train", "val", "all")
FORMAT = 1
MAX_LISTED = 5


@dataclass(frozen=True)
class SplitEntry:
    """One image of a split side."""

    id: int
    file_name: str
    content_hash: str
    source_file: str | None = None
    source_image_id: int | None = None


@dataclass
class RunSplit:
    """A run's ``split.json``."""

    path: str
    val_fraction: float
    salt: str
    by: str
    train: list[SplitEntry]
    val: list[SplitEntry]

    def side(self, which: str) -> list[SplitEntry]:
        """The entries of ``train``, ``val`` or ``all`` (train then val)."""
        if which not in SIDES:
            raise EvalInputError(f"split side must be one of {', '.join(SIDES)}, got {which!r}")
        return self.train + self.val if which == "all" else getattr(self, which)

    def other_side(self, which: str) -> list[SplitEntry]:
        return {"train": self.val, "val": self.train}.get(which, [])


def split_path(run: str | Path) -> Path:
    """``run/split.json`` for a run folder; a file is taken as the split file itself."""
    run = Path(run)
    return run / SPLIT_FILE if run.is_dir() else run


def _entry(path: str, where: str, rec: object) -> SplitEntry:
    if not isinstance(rec, dict):
        raise EvalInputError(f"{path}: {where}: expected an object, got {rec!r:.80}")
    for key, ok in (("id", lambda v: check_int(v) is None), ("file_name", _is_str),
                    ("content_hash", lambda v: isinstance(v, str)),
                    ("source_file", lambda v: v is None or _is_str(v)),
                    ("source_image_id", lambda v: v is None or check_int(v) is None)):
        value = rec.get(key)
        if not ok(value):
            raise EvalInputError(f"{path}: {where}: {key} must be "
                                 f"{_WANT[key]}, got {value!r:.80}")
    return SplitEntry(rec["id"], rec["file_name"], rec["content_hash"], rec.get("source_file"),
                      rec.get("source_image_id"))


_WANT = {"id": "an integer", "file_name": "a non-empty string", "content_hash": "a string",
         "source_file": "a non-empty string", "source_image_id": "an integer"}


def _is_str(v: object) -> bool:
    return isinstance(v, str) and bool(v)


def read_split(run: str | Path) -> RunSplit:
    """Read and check a run's ``split.json`` (``EvalInputError`` naming the file and entry)."""
    path = split_path(run)
    data = load_json(path, "split file", EvalInputError)
    where = str(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise EvalInputError(f"{where}: not a split file of format {FORMAT} (got format "
                             f"{got!r}); training writes it into its output folder")
    sides = {}
    for side in ("train", "val"):
        if not isinstance(data.get(side), list):
            raise EvalInputError(f"{where}: {side!r} must be a list of images")
        sides[side] = [_entry(where, f"{side}[{i}]", r) for i, r in enumerate(data[side])]
    fraction = data.get("val_fraction")
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) \
            or not math.isfinite(fraction):
        raise EvalInputError(f"{where}: val_fraction must be a number, got {fraction!r:.40}")
    return RunSplit(where, float(fraction), str(data.get("salt", "")), str(data.get("by", "")),
                    sides["train"], sides["val"])


@dataclass
class SplitMatch:
    """The ground-truth images a split side names, and how they were found."""

    image_ids: list[int]           # selected ground-truth image ids, in the file's order
    matched_by: str                # "content_hash" | "source_image_id" | "id"
    wanted: int                    # entries of the side (that can be in this file)
    missing: list[SplitEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def describe(self, side: str, split: str, gt: str) -> str:
        found = self.wanted - len(self.missing)
        text = (f"split {side} of {split}: {found} of {self.wanted} images found in {gt} "
                f"(matched by {self.matched_by}), {len(self.image_ids)} selected")
        if self.missing:
            shown = ", ".join(f"id {e.id} {e.file_name}" for e in self.missing[:MAX_LISTED])
            text += f"; {len(self.missing)} missing (e.g. {shown})"
        return text


def match_split(images: list[dict], gt_path: str | Path | None, split: RunSplit,
                side: str) -> SplitMatch:
    """Which of the ground truth's ``images`` (COCO image records) the split ``side`` names."""
    entries = split.side(side)
    if any(img.get("content_hash") for img in images) and all(e.content_hash for e in entries):
        return _by_hash(images, entries, split.other_side(side))
    own = _same_file_entries(entries, gt_path)
    if own:
        return _by_id(images, {e.source_image_id: e for e in own}, "source_image_id")
    return _by_id(images, {e.id: e for e in entries}, "id")


def _by_id(images: list[dict], wanted: dict[int, SplitEntry], how: str) -> SplitMatch:
    chosen = [img["id"] for img in images if img["id"] in wanted]
    found = set(chosen)
    return SplitMatch(chosen, how, len(wanted), [e for i, e in wanted.items() if i not in found])


def _by_hash(images: list[dict], entries: list[SplitEntry], others: list[SplitEntry]
             ) -> SplitMatch:
    wanted = {e.content_hash for e in entries}
    chosen = [img["id"] for img in images if img.get("content_hash") in wanted]
    present = {img.get("content_hash") for img in images}
    missing = [e for e in entries if e.content_hash not in present]
    both = wanted & {e.content_hash for e in others}
    warnings = [f"{len(both)} image contents are on both sides of the split (same bytes, other "
                "file names); matched by content they are selected too"] if both else []
    return SplitMatch(chosen, "content_hash", len(entries), missing, warnings)


def _same_file_entries(entries: list[SplitEntry], gt_path: str | Path | None
                       ) -> list[SplitEntry]:
    """The entries whose ``source_file`` is the ground-truth file (a customer's own file)."""
    if gt_path is None:
        return []
    gt = Path(gt_path).resolve()
    return [e for e in entries if e.source_file and e.source_image_id is not None
            and Path(e.source_file).resolve() == gt]
