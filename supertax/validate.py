"""Checks across taxonomy files: references, name clashes, and coverage warnings."""

from __future__ import annotations

import difflib

import numpy as np

from supertax.diagnostics import ERROR, WARNING, Diagnostic
from supertax.taxonomy import Taxonomy, label_mask, mapped_columns
from supertax.tree import SuperTaxonomy
from supertax.yamlpos import Pos


def _closest(name: str, choices: list[str]) -> str:
    match = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    if not match:
        match = [c for c in choices if c.lower() == name.lower()]
    return f"; did you mean {match[0]!r}?" if match else ""


def _where(obj: SuperTaxonomy | Taxonomy) -> Pos:
    return obj.pos or Pos(obj.path or "<memory>", 1, 1)


def check_supers(supers: list[SuperTaxonomy]) -> list[Diagnostic]:
    """Two super-taxonomies may not share a name."""
    out, seen = [], {}
    for sup in supers:
        if sup.name in seen:
            out.append(Diagnostic(_where(sup), ERROR, f"super-taxonomy name {sup.name!r} is already "
                                  f"used by {seen[sup.name].path}"))
        else:
            seen[sup.name] = sup
    return out


def check_taxonomy(tax: Taxonomy, sup: SuperTaxonomy | None, supers: list[str]) -> list[Diagnostic]:
    """References of one taxonomy, and labels that clash when reported back."""
    if sup is None:
        known = ", ".join(supers) or "none loaded"
        return [Diagnostic(_where(tax), ERROR, f"unknown super-taxonomy {tax.super_taxonomy!r} "
                           f"(known: {known}){_closest(tax.super_taxonomy, supers)}")]
    out, by_class = [], {}
    for lab in tax.labels:
        if lab.maps_to is None:
            continue
        if lab.maps_to not in sup.column:
            out.append(Diagnostic(lab.pos or _where(tax), ERROR,
                                  f"label {lab.name!r} maps_to {lab.maps_to!r}, which is not a class "
                                  f"of super-taxonomy {sup.name!r}{_closest(lab.maps_to, sup.names)}"))
        elif lab.maps_to in by_class:
            out.append(Diagnostic(lab.pos or _where(tax), WARNING,
                                  f"labels {by_class[lab.maps_to]!r} and {lab.name!r} both map to "
                                  f"{lab.maps_to!r}: ambiguous when reporting back in customer names"))
        else:
            by_class[lab.maps_to] = lab.name
    return out


def check_exhaustive(tax: Taxonomy, sup: SuperTaxonomy) -> list[Diagnostic]:
    """Warn where ``exhaustive`` markings and a taxonomy's children coverage disagree."""
    out, direct, labeled = [], mapped_columns(tax, sup), label_mask(tax, sup)
    for j, kids in enumerate(sup.children):
        if not kids or labeled[j]:
            continue
        n = int(labeled[kids].sum())
        name, pos = sup.names[j], sup.nodes[j].pos or _where(sup)
        if sup.exhaustive[j] and 0 < n < len(kids):
            gaps = [sup.names[k] for k in kids if not labeled[k]]
            out.append(Diagnostic(_where(tax), WARNING,
                                  f"taxonomy {tax.name!r} labels only {n} of {len(kids)} children of "
                                  f"exhaustive class {name!r} (not: {', '.join(gaps)}), so {name!r} "
                                  "stays missing for it"))
        elif not sup.exhaustive[j] and n == len(kids) and not direct[j]:
            out.append(Diagnostic(pos, WARNING,
                                  f"taxonomy {tax.name!r} labels every child of {name!r} but {name!r} "
                                  "is not marked exhaustive; marking it would let this taxonomy's "
                                  f"images also train the {name!r} column"))
    return out


def check_unlabeled_classes(sup: SuperTaxonomy, taxes: list[Taxonomy]) -> list[Diagnostic]:
    """Warn for super classes that no taxonomy labels: they will never be trained."""
    if not taxes:
        return []
    any_labeled = np.logical_or.reduce([label_mask(t, sup) for t in taxes])
    return [Diagnostic(sup.nodes[j].pos or _where(sup), WARNING,
                       f"class {sup.names[j]!r} is labeled by no taxonomy: it will never be trained")
            for j in np.flatnonzero(~any_labeled)]


def check_all(supers: list[SuperTaxonomy], taxes: list[Taxonomy]) -> list[Diagnostic]:
    """Every cross-file check, in file order."""
    out = check_supers(supers)
    by_name = {s.name: s for s in supers}
    names = list(by_name)
    valid: dict[str, list[Taxonomy]] = {}
    for tax in taxes:
        sup = by_name.get(tax.super_taxonomy)
        problems = check_taxonomy(tax, sup, names)
        out += problems
        if sup is not None and not any(d.severity == ERROR for d in problems):
            out += check_exhaustive(tax, sup)
            valid.setdefault(sup.name, []).append(tax)
    seen_tax: dict[str, Taxonomy] = {}
    for tax in taxes:
        if tax.name in seen_tax:
            out.append(Diagnostic(_where(tax), ERROR, f"taxonomy name {tax.name!r} is already used "
                                  f"by {seen_tax[tax.name].path}"))
        seen_tax.setdefault(tax.name, tax)
    for sup in supers:
        out += check_unlabeled_classes(sup, valid.get(sup.name, []))
    return out
