"""Checks across taxonomy files: references, name clashes, coverage and data-path warnings.

A class no taxonomy labels is told apart by its certain cells (``CellSources``; the loss's
``certain_cells`` rules, docs/taxonomies.md): trainable through its descendants' boxes, only
ever a negative, or without any certain cell.

A super-taxonomy whose file has errors is not loaded. The taxonomies naming it
then get no "unknown super-taxonomy" error each: one warning in the broken file,
after its first error, says they were not checked (``FailedFiles``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from taxdet.core.names import did_you_mean
from taxdet.supertax.decoding_rule import never_background, strict_descendants, untrusted_columns
from taxdet.supertax.diagnostics import ERROR, WARNING, Diagnostic, has_errors
from taxdet.supertax.taxonomy import Label, Taxonomy, label_mask
from taxdet.supertax.tree import SuperTaxonomy
from taxdet.supertax.yamlpos import Pos


def _where(obj: SuperTaxonomy | Taxonomy, key: str | None = None) -> Pos:
    """Position of the top-level value ``key`` in ``obj``'s file, else of the document."""
    if key in obj.value_pos:
        return obj.value_pos[key]
    return obj.pos or Pos(obj.path or "<memory>", 1, 1)


def _label_where(lab: Label, tax: Taxonomy) -> Pos:
    return lab.maps_to_pos or lab.pos or _where(tax)


def check_unique_names(objs: list[SuperTaxonomy] | list[Taxonomy], what: str) -> list[Diagnostic]:
    """Two super-taxonomies (or two taxonomies) may not share a name; the later one is flagged."""
    out: list[Diagnostic] = []
    seen: dict[str, SuperTaxonomy | Taxonomy] = {}
    for obj in objs:
        if obj.name in seen:
            out.append(Diagnostic(_where(obj, "name"), ERROR, f"{what} name {obj.name!r} is "
                                  f"already used by {seen[obj.name].path}"))
        seen.setdefault(obj.name, obj)
    return out


@dataclass
class FailedFiles:
    """Files with errors, as far as they tell which super-taxonomy they hold.

    ``supers``: super-taxonomy name -> (position of the file's first error, whether
    the name is only guessed from the file name because the file could not be
    read into an object). ``unread``: files that gave no object at all.
    """

    supers: dict[str, tuple[Pos, bool]] = field(default_factory=dict)
    unread: list[str] = field(default_factory=list)

    def add(self, path: str, obj: object, diagnostics: list[Diagnostic]) -> None:
        """Record one file with errors, read into ``obj`` (None, or a partial object)."""
        first = min((d.pos for d in diagnostics if d.severity == ERROR),
                    key=lambda p: (p.line, p.col))
        if isinstance(obj, SuperTaxonomy) and obj.name:
            self.supers.setdefault(obj.name, (first, False))
        elif obj is None:
            self.unread.append(path)
            self.supers.setdefault(Path(path).stem, (first, True))


def check_taxonomy(tax: Taxonomy, sup: SuperTaxonomy | None, supers: list[str],
                   failed: FailedFiles | None = None) -> list[Diagnostic]:
    """References of one taxonomy, and labels that clash when reported back.

    A reference to a super-taxonomy in ``failed`` is not reported here (see
    ``check_failed_supers``).
    """
    if sup is None:
        failed = failed or FailedFiles()
        if tax.super_taxonomy in failed.supers:
            return []
        known = ", ".join(supers) or "none loaded"
        unread = f"; could not read: {', '.join(failed.unread)}" if failed.unread else ""
        return [Diagnostic(_where(tax, "super_taxonomy"), ERROR,
                           f"unknown super-taxonomy {tax.super_taxonomy!r} (known: {known}"
                           f"{unread}){did_you_mean(tax.super_taxonomy, supers)}")]
    out: list[Diagnostic] = []
    by_class: dict[str, str] = {}
    for lab in tax.labels:
        if lab.maps_to is None:
            continue
        if lab.maps_to not in sup.column:
            hint = did_you_mean(lab.maps_to, sup.names)
            out.append(Diagnostic(_label_where(lab, tax), ERROR,
                                  f"label {lab.name!r} maps_to {lab.maps_to!r}, which is not a "
                                  f"class of super-taxonomy {sup.name!r}{hint}"))
        elif lab.maps_to in by_class:
            out.append(Diagnostic(_label_where(lab, tax), WARNING,
                                  f"labels {by_class[lab.maps_to]!r} and {lab.name!r} both map to "
                                  f"{lab.maps_to!r}: ambiguous when reporting back in customer "
                                  "names"))
        else:
            by_class[lab.maps_to] = lab.name
    return out


def _first_label_under(tax: Taxonomy, sup: SuperTaxonomy, j: int) -> Pos:
    """Position of the first label of ``tax`` mapping to a strict descendant of column ``j``."""
    for lab in tax.labels:
        col = sup.column.get(lab.maps_to) if lab.maps_to is not None else None
        if col is not None and col != j and sup.ancestors[col, j]:
            return _label_where(lab, tax)
    return _where(tax, "labels")


def check_exhaustive(tax: Taxonomy, sup: SuperTaxonomy) -> list[Diagnostic]:
    """Warn where ``exhaustive`` markings and a taxonomy's children coverage disagree.

    An exhaustive parent with only some children labeled is flagged at the
    taxonomy's label; a non-exhaustive parent with all children labeled at the
    parent's name in the super-taxonomy.
    """
    out, labeled = [], label_mask(tax, sup)
    for j, kids in enumerate(sup.children):
        if not kids or labeled[j]:
            continue
        n, name = int(labeled[kids].sum()), sup.names[j]
        if sup.exhaustive[j] and 0 < n < len(kids):
            gaps = ", ".join(sup.names[k] for k in kids if not labeled[k])
            out.append(Diagnostic(_first_label_under(tax, sup, j), WARNING,
                                  f"taxonomy {tax.name!r} labels only {n} of {len(kids)} children "
                                  f"of exhaustive class {name!r} (not: {gaps}), so {name!r} stays "
                                  "missing for it"))
        elif not sup.exhaustive[j] and n == len(kids):
            out.append(Diagnostic(sup.nodes[j].pos or _where(sup), WARNING,
                                  f"taxonomy {tax.name!r} labels every child of {name!r} but "
                                  f"{name!r} is not marked exhaustive; its boxes of those children "
                                  f"train {name!r} as positives (certain cells), and marking it "
                                  f"exhaustive would also make this taxonomy's background "
                                  f"anchors certain {name!r} negatives"))
    return out


@dataclass
class CellSources:
    """Which taxonomies give an unlabeled column certain cells (``loss.certain_cells``), under
    the one-object-one-path assumption (an object is one path from a root down to its class).

    ``positives``: taxonomy -> its labeled strict descendants of the column (their boxes are
    positives for every ancestor; rule ``positives``); ``off_path``: taxonomies labeling a
    class neither on the column's path nor under it (their boxes are certain negatives for
    it; rule ``rows``); ``inherited``: taxonomies labeling a strict ancestor of it (their
    background anchors are certain negatives for it; rule ``all``).
    """

    positives: dict[str, list[str]]
    off_path: list[str]
    inherited: list[str]

    @property
    def negatives(self) -> bool:
        return bool(self.off_path or self.inherited)


def cell_sources(sup: SuperTaxonomy, taxes: list[Taxonomy],
                 j: int | np.integer[Any]) -> CellSources:
    """``CellSources`` of column ``j`` over ``taxes`` (each taxonomy's ``label_mask``)."""
    anc = sup.ancestors
    own = np.arange(sup.num_classes) == j
    below, above = anc[:, j] & ~own, anc[j] & ~own  # strict descendants, strict ancestors
    off = ~anc[:, j] & ~anc[j]                       # neither on j's path nor under j
    out = CellSources({}, [], [])
    for tax in taxes:
        labeled = label_mask(tax, sup)
        kids = [sup.names[d] for d in np.flatnonzero(labeled & below)]
        if kids:
            out.positives[tax.name] = kids
        if (labeled & off).any():
            out.off_path.append(tax.name)
        if (labeled & above).any():
            out.inherited.append(tax.name)
    return out


def _negatives_text(src: CellSources) -> str:
    """Where an unlabeled column's certain negatives come from ("" when nowhere)."""
    parts = []
    if src.off_path:
        parts.append(f"{', '.join(src.off_path)} at the boxes of classes off its path "
                     "(certain_cells rows or all)")
    if src.inherited:
        parts.append(f"{', '.join(src.inherited)} at background anchors (each labels an "
                     "ancestor of it; certain_cells all)")
    return "; ".join(parts)


def unlabeled_class_message(name: str, src: CellSources) -> str:
    """The warning for a class no taxonomy labels: trainable through its descendants (and
    from where), only negatives, or no certain cell at all."""
    if src.positives:
        pos = ", ".join(f"{t} ({', '.join(kids)})" for t, kids in src.positives.items())
        neg = _negatives_text(src) or ("none from any taxonomy, so nothing teaches it where "
                                       "it is absent")
        return (f"class {name!r} is labeled by no taxonomy, but it is trainable through its "
                f"descendants (loss.certain_cells positives or more; never trained with none): "
                f"one object is one path from a root down to its class, so a descendant's box "
                f"is also a {name!r}. Positives: {pos}. Negatives: {neg}")
    if src.negatives:
        return (f"class {name!r} is labeled by no taxonomy, nor is any of its descendants: no "
                f"box is a positive for it, so it will never be trained to detect anything. "
                f"Negatives only: {_negatives_text(src)}")
    return (f"class {name!r} is labeled by no taxonomy, nor is any class on its path or off "
            "it: it has no certain cell at all and will never be trained")


def check_unlabeled_classes(sup: SuperTaxonomy, taxes: list[Taxonomy]) -> list[Diagnostic]:
    """Warn for super classes that no taxonomy labels: trainable only through their
    descendants' boxes (saying from which taxonomies), or never trained to detect."""
    if not taxes:
        return []
    any_labeled = np.logical_or.reduce([label_mask(t, sup) for t in taxes])
    return [Diagnostic(sup.nodes[j].pos or _where(sup), WARNING,
                       unlabeled_class_message(sup.names[j], cell_sources(sup, taxes, j)))
            for j in np.flatnonzero(~any_labeled)]


def _class_where(sup: SuperTaxonomy, j: int) -> str:
    """``file:line`` of class ``j`` in the super-taxonomy file (its file, else "")."""
    pos = sup.nodes[j].pos
    return f"{pos.file}:{pos.line}" if pos else (sup.path or "")


def _exhaustive_advice(sup: SuperTaxonomy, taxes: list[Taxonomy], j: int) -> str:
    """The one-line YAML change that gives column ``j`` background negatives (``exhaustive:
    true`` where some taxonomy labels all of its children), or why it is not suggested."""
    name, kids = sup.names[j], sup.children[j]
    if not kids:
        return (f"`exhaustive: true` cannot help a class without children: map a customer "
                f"label to it (`maps_to: {name}`) to train it, or remove it")
    kid_names = ", ".join(sup.names[k] for k in kids)
    masks = {t.name: label_mask(t, sup) for t in taxes}
    full = [t for t, m in masks.items() if m[kids].all()]
    if full and not sup.exhaustive[j]:
        return (f"to train it on its own, add `exhaustive: true` under `- name: {name}` "
                f"({_class_where(sup, j)}): {', '.join(full)} label all of its children "
                f"({kid_names}), so their background anchors become certain {name!r} negatives; "
                f"only if every {name!r} is one of them, else leave it to coverage decoding")
    partial = [f"{t} labels {', '.join(sup.names[k] for k in kids if m[k])}"
               for t, m in masks.items() if m[kids].any()]
    seen = f" ({'; '.join(partial)})" if partial else ""
    return (f"`exhaustive: true` is not suggested: no taxonomy labels all of its children "
            f"({kid_names}){seen}, so it would still get no background negative while claiming "
            f"that every {name!r} is one of them; label {name!r} in a taxonomy (`maps_to: "
            f"{name}`) to train it on its own")


def decoding_note(sup: SuperTaxonomy, taxes: list[Taxonomy], j: int,
                  sources: list[str]) -> str:
    """What happens to column ``j``, which gets no background negative: its decoding (from
    its trusted descendants ``sources``; excluded without any) and the YAML change that
    would train it on its own, or why that change is unsafe."""
    name = sup.names[j]
    head = (f"class {name!r} will get no background negative (no taxonomy labels it or an "
            f"ancestor of it, so its column never learns where it is absent)")
    if sources:
        what = (f"coverage decoding (the default) scores it as the max over its descendants "
                f"({', '.join(sources)}), its own column ignored")
    else:
        what = "coverage decoding (the default) excludes it from predictions"
    return f"{head}: {what}; {_exhaustive_advice(sup, taxes, j)}"


def decoding_notes(sup: SuperTaxonomy, taxes: list[Taxonomy]) -> list[str]:
    """One ``decoding_note`` per column the taxonomies leave without background negatives
    (``taxdet.supertax.decoding_rule``), in column order; none without taxonomies. The
    validator prints them and training logs them at its start: the same text."""
    if not taxes:
        return []
    labeled = np.logical_or.reduce([label_mask(t, sup) for t in taxes])
    unseen = never_background(sup.ancestors, labeled)
    decoded, excluded = untrusted_columns(sup.ancestors, unseen, unseen)
    sources = strict_descendants(sup.ancestors) & ~(decoded | excluded)[:, None]
    return [decoding_note(sup, taxes, int(j), [sup.names[d] for d in np.flatnonzero(sources[:, j])]
                          if decoded[j] else [])
            for j in np.flatnonzero(decoded | excluded)]


def _first_by_name(supers: list[SuperTaxonomy]) -> dict[str, SuperTaxonomy]:
    by_name: dict[str, SuperTaxonomy] = {}
    for sup in supers:
        by_name.setdefault(sup.name, sup)
    return by_name


def check_partial(taxes: list[Taxonomy], supers: list[SuperTaxonomy],
                  failed: FailedFiles | None = None) -> list[Diagnostic]:
    """References of taxonomies read from files with other errors, to report all at once."""
    by_name = _first_by_name(supers)
    return [d for tax in taxes if tax.super_taxonomy
            for d in check_taxonomy(tax, by_name.get(tax.super_taxonomy), list(by_name), failed)]


def check_failed_supers(failed: FailedFiles, supers: list[SuperTaxonomy],
                        taxes: list[Taxonomy]) -> list[Diagnostic]:
    """One warning per broken super-taxonomy file that taxonomies name, right after its first
    error: those taxonomies were not checked against it."""
    loaded, out = {s.name for s in supers}, []
    for name, (first, guessed) in failed.supers.items():
        users = sorted({t.name or str(t.path) for t in taxes if t.super_taxonomy == name})
        if name in loaded or not users:
            continue
        what = (f"this file could not be read and probably holds super-taxonomy {name!r}"
                if guessed else
                f"super-taxonomy {name!r} failed to load (see the errors in this file)")
        out.append(Diagnostic(first, WARNING, f"{what}: taxonomies {', '.join(users)} map into "
                                              "it and were not checked against it"))
    return out


def check_data(taxes: list[Taxonomy]) -> list[Diagnostic]:
    """Warn for every ``data:`` path that does not exist (annotations: a file, images: a folder).

    Validation needs no data, so these are warnings; merging or training on the
    taxonomy fails on them with an error.
    """
    out = []
    for tax in taxes:
        for src in tax.data:
            for key, path, want, ok in (("annotations", src.annotations, "file", os.path.isfile),
                                        ("images", src.images, "folder", os.path.isdir)):
                if ok(path):
                    continue
                pos = getattr(src, f"{key}_pos") or _where(tax, "data")
                problem = f"is not a {want}" if os.path.exists(path) else "does not exist"
                out.append(Diagnostic(pos, WARNING, f"data {key} {path} {problem} (needed to "
                                                    "merge or train on this taxonomy)"))
    return out


def check_all(supers: list[SuperTaxonomy], taxes: list[Taxonomy],
              complete: bool = True, failed: FailedFiles | None = None) -> list[Diagnostic]:
    """Every cross-file check.

    The "labeled by no taxonomy" warnings need the whole picture: they are left
    out when ``complete`` is False (some file could not be read into an object)
    or when any error was found, since the broken file may label those classes.
    """
    out = check_unique_names(supers, "super-taxonomy") + check_unique_names(taxes, "taxonomy")
    by_name = _first_by_name(supers)
    valid: dict[str, list[Taxonomy]] = {}
    for tax in taxes:
        sup = by_name.get(tax.super_taxonomy)
        problems = check_taxonomy(tax, sup, list(by_name), failed)
        out += problems
        if sup is not None and not has_errors(problems):
            out += check_exhaustive(tax, sup)
            valid.setdefault(sup.name, []).append(tax)
    for sup in by_name.values() if complete and not has_errors(out) else ():
        out += check_unlabeled_classes(sup, valid.get(sup.name, []))
    return out
