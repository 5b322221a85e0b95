"""What ``tools/validate_taxonomies.py`` prints: diagnostics, coverage matrices, JSON.

The coverage matrix has one row per taxonomy and one column per super class;
a cell says whether the taxonomy labels the class, labels only an ancestor of
it (coarse), or does not label it at all (missing).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from taxdet.supertax.diagnostics import ERROR, WARNING, Diagnostic
from taxdet.supertax.taxonomy import Coverage
from taxdet.supertax.taxset import TaxonomySet, Validation
from taxdet.supertax.validate import decoding_notes

EXIT_VALID = 0    # no errors (warnings allowed)
EXIT_INVALID = 1  # at least one error in the files
EXIT_USAGE = 2    # bad arguments, a path that does not exist, a file that cannot be read

GLYPHS = {Coverage.LABELED: "+", Coverage.COARSE: "~", Coverage.MISSING: "."}
LEGEND = ("legend: + labeled   ~ coarse (only an ancestor is labeled; masked)   "
          ". missing (masked)")
# what the loss assumes of every box (loss.certain_cells; docs/taxonomies.md, "Certain cells")
ONE_PATH = (
    "certain cells (loss.certain_cells all): one object = one path from a root down to its "
    "class, so\n  a box of class c is also each ancestor of c and certainly no class off that "
    "path; a background\n  anchor is certainly no descendant of a class its taxonomy labels. "
    "Masked: c's unlabeled\n  descendants at c's boxes; at background anchors, classes with no "
    "labeled ancestor-or-self.")


def ordered(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """Diagnostics sorted by file, line and column (stable for equal positions)."""
    return sorted(diagnostics, key=lambda d: (d.pos.file, d.pos.line, d.pos.col))


def exit_code(v: Validation) -> int:
    return EXIT_VALID if v.ok else EXIT_INVALID


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def counts(v: Validation) -> tuple[int, int]:
    """(errors, warnings)."""
    return (sum(d.severity == ERROR for d in v.diagnostics),
            sum(d.severity == WARNING for d in v.diagnostics))


def summary(v: Validation) -> str:
    """``"valid: 4 files, 0 errors, 1 warning"`` (or ``invalid: ...``)."""
    errors, warnings = counts(v)
    return (f"{'valid' if v.ok else 'invalid'}: {_plural(len(v.files), 'file')}, "
            f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')}")


def render_matrix(ts: TaxonomySet, with_hash: bool = True) -> str:
    """The coverage matrix of one super-taxonomy as an aligned text table with a legend."""
    sup = ts.super
    title = (f"coverage of super-taxonomy {sup.name!r} ({sup.path}): "
             f"K={ts.num_classes} classes, T={len(ts.taxonomies)} taxonomies")
    if with_hash:
        title += f", hash {ts.hash}"
    if not ts.taxonomies:
        return f"{title}\n(no taxonomy maps into {sup.name!r})"
    first = max(len("taxonomy"), *(len(t.name) for t in ts.taxonomies))
    widths = [len(name) for name in ts.names]
    lines = ["  ".join(["taxonomy".ljust(first), *ts.names])]
    for name, cells in ts.coverage().items():
        row = [GLYPHS[c].center(w) for c, w in zip(cells, widths)]
        lines.append("  ".join([name.ljust(first), *row]).rstrip())
    return "\n".join([title, *lines, LEGEND, ONE_PATH])


DECODING_TITLE = "decoding of the columns that will get no background negative:"


def render_decoding(ts: TaxonomySet) -> str:
    """The ``decoding_notes`` of one super-taxonomy under a title ("" when there is none): the
    text training logs at its start."""
    notes = decoding_notes(ts.super, ts.taxonomies)
    return "\n".join([DECODING_TITLE, *(f"- {n}" for n in notes)]) if notes else ""


def render_text(v: Validation, sections: Sequence[str] = ()) -> str:
    """Every diagnostic (``file:line:col: severity: message``), the matrices, each with the
    decoding of its never-background columns, ``sections`` (e.g. the box counts of the data),
    a summary line."""
    parts = [str(d) for d in ordered(v.diagnostics)]
    for ts in v.sets():
        parts += ["", render_matrix(ts, with_hash=v.ok)]
        decoding = render_decoding(ts)
        parts += ["", decoding] if decoding else []
    if not v.ok:
        parts += ["", "(matrices leave out files with errors)"]
    for section in sections:
        parts += ["", section]
    return "\n".join([*parts, "", summary(v)]).lstrip("\n")


def _taxonomy_json(ts: TaxonomySet, name: str) -> dict[str, Any]:
    tax = ts.taxonomy(name)
    return {"name": name, "file": tax.path,
            "coverage": [c.value for c in ts.coverage()[name]],
            "label_mask": ts.label_mask(name).tolist(),
            "missing_classes": ts.missing_classes(name),
            "label_columns": ts.label_columns(name),
            "sampling_weight": tax.sampling_weight}


def _set_json(ts: TaxonomySet, with_hash: bool) -> dict[str, Any]:
    sup = ts.super
    classes = [{"name": name, "column": j, "parent": sup.parent_name(j),
                "exhaustive": bool(sup.exhaustive[j])} for j, name in enumerate(sup.names)]
    return {"name": sup.name, "file": sup.path, "hash": ts.hash if with_hash else None,
            "classes": classes, "decoding_notes": decoding_notes(sup, ts.taxonomies),
            "taxonomies": [_taxonomy_json(ts, t.name) for t in ts.taxonomies]}


def to_json(v: Validation, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The text report as plain data.

    Diagnostics, and per super-taxonomy its classes and, per taxonomy, coverage
    (one cell per class: the matrix row), label mask, missing classes and label
    columns. ``hash`` is null unless every file is valid. ``extra``: more top-level keys
    (e.g. ``box_counts``).
    """
    errors, warnings = counts(v)
    return {"valid": v.ok, "errors": errors, "warnings": warnings,
            "files": [str(f) for f in v.files],
            "diagnostics": [d.to_dict() for d in ordered(v.diagnostics)],
            "super_taxonomies": [_set_json(ts, v.ok) for ts in v.sets()], **(extra or {})}


def render_json(v: Validation, extra: dict[str, Any] | None = None) -> str:
    return json.dumps(to_json(v, extra), indent=2)
