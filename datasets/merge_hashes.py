"""Per-taxonomy hashes stored in ``super.json``: a prepared super-dataset is used only with the
taxonomies it was merged with, and a mismatch names the taxonomy that changed.

``merge_hashes`` goes into the file's ``info`` (``SuperDataset.to_coco``); ``check_taxonomies``
compares it with the taxonomies loaded now (``SuperDataset.load``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from taxdet.datasets.coco_io import DatasetError
from taxdet.supertax import TaxonomySet


class TaxonomyMismatchError(DatasetError):
    """A ``super.json`` merged under other taxonomies than the ones loaded now."""


def _short_hash(doc: dict) -> str:
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def merge_hashes(taxset: TaxonomySet) -> dict:
    """What a merged file's content depends on, hashed per taxonomy (16 hex digits each):
    ``{"super_taxonomy_hash": h, "taxonomy_hashes": {name: h}}``.

    A customer's hash covers its name, super-taxonomy and labels (``maps_to``, ``box_weight``),
    not its ``sampling_weight``: only the sampler reads that, so it may change without a new
    merge.
    """
    taxes = {}
    for t in taxset.taxonomies:
        doc = t.to_dict()
        doc.pop("sampling_weight", None)
        taxes[t.name] = _short_hash(doc)
    return {"super_taxonomy_hash": _short_hash(taxset.super.to_dict()), "taxonomy_hashes": taxes}


def taxonomy_mismatches(info: dict, taxset: TaxonomySet) -> list[str]:
    """How the taxonomies a ``super.json`` was merged with (its ``info``) differ from ``taxset``
    (empty: they agree). A file without per-taxonomy hashes is compared by the set's hash; one
    without any hash is not compared here (``SuperDataset.load`` still checks the classes and
    each image's ``missing_classes``)."""
    if not isinstance(info.get("taxonomy_hashes"), dict):
        old = info.get("taxonomy_hash")
        if old is None or old == taxset.hash:
            return []
        return [f"merged under taxonomy hash {old}, the loaded taxonomies hash to {taxset.hash} "
                "(the file has no per-taxonomy hashes to say which one changed)"]
    now, out = merge_hashes(taxset), []
    if info.get("super_taxonomy_hash") != now["super_taxonomy_hash"]:
        out.append(f"super-taxonomy {taxset.super.name!r}: hash {info.get('super_taxonomy_hash')}"
                   f" in the file, {now['super_taxonomy_hash']} now (its classes or tree changed)")
    old, new = info["taxonomy_hashes"], now["taxonomy_hashes"]
    for name in old:
        if name not in new:
            out.append(f"taxonomy {name!r} is in the file but not among the loaded taxonomies")
        elif old[name] != new[name]:
            out.append(f"taxonomy {name!r}: hash {old[name]} in the file, {new[name]} now "
                       f"({_where(taxset, name)}: its labels changed)")
    out += [f"taxonomy {name!r} ({_where(taxset, name)}) is loaded but not in the file"
            for name in new if name not in old]
    return out


def _where(taxset: TaxonomySet, name: str) -> str:
    return str(taxset.taxonomy(name).path or name)


def check_taxonomies(info: dict, taxset: TaxonomySet, path: str | Path) -> None:
    """``TaxonomyMismatchError`` naming each taxonomy that differs (``taxonomy_mismatches``)."""
    problems = taxonomy_mismatches(info, taxset)
    if problems:
        raise TaxonomyMismatchError(
            f"{path}: merged with other taxonomies than the ones loaded now (--taxonomies):\n  - "
            + "\n  - ".join(problems) + "\npass the taxonomies it was merged with, or merge "
            f"again: tools/merge_datasets.py --taxonomies ... --out {path}")
