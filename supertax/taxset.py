"""Load taxonomy files into one resolved, checked ``TaxonomySet``.

Every ``.yaml`` / ``.yml`` entry of a folder is read, including ones that cannot
be (a symlink loop, a broken symlink, a FIFO): those are error diagnostics
naming the path, never skipped silently. Each file is read within the limits
of ``taxdet.supertax.yamlpos`` (``MAX_YAML_BYTES``, ``MAX_YAML_NODES``,
``MAX_YAML_DEPTH``; a ``YamlLimits`` overrides them).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from taxdet.core.errors import InputError, InputNotFoundError
from taxdet.supertax.diagnostics import ERROR, Diagnostic, TaxonomyError, has_errors
from taxdet.supertax.parse import read_file
from taxdet.supertax.taxonomy import Coverage, Label, Taxonomy, coverage, label_columns, label_mask
from taxdet.supertax.tree import SuperClass, SuperTaxonomy
from taxdet.supertax.validate import (
    FailedFiles,
    check_all,
    check_data,
    check_failed_supers,
    check_partial,
)
from taxdet.supertax.yamlpos import Pos, YamlLimits

YAML_SUFFIXES = (".yaml", ".yml")


def discover(paths: str | Path | list[str | Path]) -> list[Path]:
    """YAML files named by ``paths`` (files, or folders searched recursively), sorted per folder.

    Every ``.yaml`` / ``.yml`` entry of a folder that is not itself a folder is
    listed, also one that cannot be read (symlink loop, broken symlink, FIFO),
    so that reading it reports the problem; symlinked folders are not entered.
    A path named directly may be anything that exists (``/dev/zero`` too: reading
    refuses it). A file named twice (also through another spelling of its path)
    is kept once. Raises ``FileNotFoundError`` naming the first path that does not exist.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix in YAML_SUFFIXES and not f.is_dir())
        elif os.path.lexists(p):
            files.append(p)
        else:
            raise InputNotFoundError(f"no such file or folder: {p}")
    unique: dict[str, Path] = {}
    for f in files:
        unique.setdefault(os.path.realpath(f), f)  # never raises, unlike resolve() on a loop
    return list(unique.values())


class UnknownTaxonomyError(InputError, KeyError):
    """A taxonomy name that is not in the set (a ``KeyError`` too, for lookups)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass
class Validation:
    """Everything read from a set of files, valid or not."""

    supers: list[SuperTaxonomy] = field(default_factory=list)
    taxonomies: list[Taxonomy] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    files: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)

    def sets(self) -> list[TaxonomySet]:
        """One ``TaxonomySet`` per super-taxonomy (the first of a name), in file order.

        Each holds the taxonomies mapped into it, sorted by name. Super-taxonomies
        and taxonomies from files with errors are left out, so on invalid input
        these show what is usable, not everything.
        """
        bad = {d.pos.file for d in self.diagnostics if d.severity == ERROR}
        supers: dict[str, SuperTaxonomy] = {}
        for sup in self.supers:
            if sup.path not in bad:
                supers.setdefault(sup.name, sup)
        return [TaxonomySet(sup, sorted((t for t in self.taxonomies if t.path not in bad
                                         and t.super_taxonomy == sup.name), key=lambda t: t.name))
                for sup in supers.values()]


def validate_files(paths: str | Path | list[str | Path], limits: YamlLimits | None = None,
                   check_data_paths: bool = True) -> Validation:
    """Parse and cross-check every file; never raises for bad content.

    A file that cannot be read (not a regular file, a symlink loop, over a limit
    of ``limits``) is an error diagnostic naming it. With ``check_data_paths``,
    every ``data:`` path that does not exist is a warning. Raises
    ``InputNotFoundError`` (a ``FileNotFoundError``) for a path that does not exist.
    """
    out, partial, failed = Validation(files=discover(paths)), [], FailedFiles()
    for f in out.files:
        obj, diags = read_file(f, limits)
        out.diagnostics += diags
        if has_errors(diags):
            partial += [obj] if isinstance(obj, Taxonomy) else []
            failed.add(str(f), obj, diags)
        elif isinstance(obj, SuperTaxonomy):
            out.supers.append(obj)
        elif isinstance(obj, Taxonomy):
            out.taxonomies.append(obj)
    complete = len(out.supers) + len(out.taxonomies) == len(out.files)
    out.diagnostics += check_all(out.supers, out.taxonomies, complete, failed)
    out.diagnostics += check_partial(partial, out.supers, failed)
    out.diagnostics += check_failed_supers(failed, out.supers, out.taxonomies + partial)
    if check_data_paths:
        out.diagnostics += check_data(out.taxonomies + partial)
    return out


@dataclass
class TaxonomySet:
    """One super-taxonomy and the customer taxonomies mapped into it.

    ``masks`` is [T, K] bool (True = labeled), in ``taxonomies`` order.
    """

    super: SuperTaxonomy
    taxonomies: list[Taxonomy]

    @property
    def num_classes(self) -> int:
        return self.super.num_classes

    @property
    def names(self) -> list[str]:
        return self.super.names

    @cached_property
    def index(self) -> dict[str, int]:
        """Taxonomy name -> row of ``masks``."""
        return {t.name: i for i, t in enumerate(self.taxonomies)}

    def taxonomy(self, name: str) -> Taxonomy:
        if name not in self.index:
            raise UnknownTaxonomyError(f"unknown taxonomy {name!r}; known: "
                                       f"{', '.join(self.index)}")
        return self.taxonomies[self.index[name]]

    @cached_property
    def masks(self) -> np.ndarray:
        """[T, K] bool: True where taxonomy t labels class k."""
        return np.stack([label_mask(t, self.super) for t in self.taxonomies]) if self.taxonomies \
            else np.zeros((0, self.num_classes), dtype=bool)

    def label_mask(self, name: str) -> np.ndarray:
        """[K] bool for one taxonomy: True = labeled."""
        self.taxonomy(name)  # KeyError naming the known taxonomies
        mask: np.ndarray = self.masks[self.index[name]]
        return mask

    def missing_classes(self, name: str) -> list[str]:
        return [self.names[j] for j in np.flatnonzero(~self.label_mask(name))]

    def coverage(self) -> dict[str, list[Coverage]]:
        return {t.name: coverage(t, self.super) for t in self.taxonomies}

    def label_columns(self, name: str) -> dict[str, int | None]:
        return label_columns(self.taxonomy(name), self.super)

    @property
    def ancestors(self) -> np.ndarray:
        """[K, K] bool, see ``SuperTaxonomy.ancestors``."""
        return self.super.ancestors

    def to_dict(self) -> dict[str, Any]:
        """Plain data: enough to rebuild the set (``from_dict``) and to hash it."""
        return {"super_taxonomy": self.super.to_dict(),
                "taxonomies": [t.to_dict() for t in self.taxonomies]}

    @cached_property
    def hash(self) -> str:
        """Content hash of the resolved super-taxonomy (class order included) and taxonomies."""
        blob = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TaxonomySet:
        """Inverse of ``to_dict`` (data sources are not kept)."""

        def node(nd: dict[str, Any]) -> SuperClass:
            return SuperClass(nd["name"], nd.get("exhaustive", False),
                              [node(c) for c in nd.get("children", [])])

        s = d["super_taxonomy"]
        sup = SuperTaxonomy(s["name"], [node(c) for c in s["classes"]])
        taxes = [Taxonomy(t["name"], t["super_taxonomy"],
                          [Label(x["name"], x["maps_to"], x["box_weight"]) for x in t["labels"]],
                          t["sampling_weight"]) for t in d["taxonomies"]]
        return cls(sup, taxes)


def load(paths: str | Path | list[str | Path], super_name: str | None = None,
         limits: YamlLimits | None = None) -> TaxonomySet:
    """Load, validate and resolve taxonomy files (or folders) into one ``TaxonomySet``.

    Raises ``TaxonomyError`` (all problems listed) when a file is invalid or
    cannot be read (over a limit of ``limits`` too), or when the files hold
    several super-taxonomies and ``super_name`` does not pick one (the message
    names them); ``InputNotFoundError`` when a path does not exist. ``data:``
    paths are not checked here (the merger reports missing ones; the validator warns).
    """
    v = validate_files(paths, limits, check_data_paths=False)
    if not v.ok:
        raise TaxonomyError(v.diagnostics)
    sets = v.sets()
    picked = [s for s in sets if super_name in (None, s.super.name)]
    if len(picked) != 1:
        where = Pos(", ".join(map(str, v.files)) or "<no files>", 1, 1)
        found = ", ".join(s.super.name for s in sets) or "none"
        named = f" named {super_name!r}" if super_name else ""
        raise TaxonomyError([Diagnostic(where, ERROR, "expected exactly one super-taxonomy"
                                        f"{named}, "
                                        f"found: {found}; pass super_name to pick one "
                                        "(command line: use --super-taxonomy NAME)")])
    return picked[0]
