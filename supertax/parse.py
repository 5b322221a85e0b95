"""Turn one YAML file into a ``SuperTaxonomy`` or ``Taxonomy``, reporting every problem.

Only what one file can tell is checked here (shape, types, names, weights,
duplicates inside the file); checks across files, and whether ``data:`` paths
exist, live in ``taxdet.supertax.validate``. Reading is bounded by the limits of
``taxdet.supertax.yamlpos`` (file size, values, nesting), which a ``YamlLimits`` overrides.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from taxdet.core.names import did_you_mean
from taxdet.core.safe_names import name_problem
from taxdet.supertax.diagnostics import ERROR, WARNING, Diagnostic, has_errors
from taxdet.supertax.taxonomy import ClassificationSource, DataSource, Label, Taxonomy
from taxdet.supertax.tree import SuperClass, SuperTaxonomy
from taxdet.supertax.yamlpos import Map, Pos, Seq, YamlLimits, YamlSyntaxError, load_yaml

KINDS = ("super-taxonomy", "taxonomy")
# The keys each mapping may hold; others get a warning (a typo would otherwise be ignored).
SUPER_KEYS = ("kind", "name", "classes")
CLASS_KEYS = ("name", "exhaustive", "children")
TAXONOMY_KEYS = ("kind", "name", "super_taxonomy", "labels", "sampling_weight", "data")
LABEL_KEYS = ("name", "maps_to", "box_weight")
# a data: entry is a COCO dataset (annotations + images) or one classification dataset
CLASSIFICATION_KEYS = {"classification": "folder", "classification_csv": "csv"}
DATA_KEYS = ("annotations", "images", *CLASSIFICATION_KEYS)


class _Reader:
    """Collects diagnostics while reading values out of positioned YAML."""

    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []

    def error(self, pos: Pos, message: str) -> None:
        self.diagnostics.append(Diagnostic(pos, ERROR, message))

    def warning(self, pos: Pos, message: str) -> None:
        self.diagnostics.append(Diagnostic(pos, WARNING, message))

    def mapping(self, value: Any, pos: Pos, what: str, keys: tuple[str, ...] = ()) -> Map | None:
        """``value`` if it is a mapping; with ``keys``, warns about any other key."""
        if not isinstance(value, Map):
            self.error(pos, f"{what} must be a mapping, got {_type_name(value)}")
            return None
        for key, key_pos in value.duplicate_keys:
            self.error(key_pos, f"duplicate key {key!r} in {what}")
        if keys:
            self.known_keys(value, keys, what)
        return value

    def known_keys(self, m: Map, keys: tuple[str, ...], what: str) -> None:
        for key in m:
            if key not in keys:
                self.warning(m.key_pos[key], f"unknown key {key!r} in {what} (ignored; known: "
                             f"{', '.join(keys)}){did_you_mean(key, list(keys))}")

    def required(self, m: Map, key: str, what: str) -> Any:
        if key not in m:
            self.error(m.pos, f"missing required key {key!r} in {what}")
        return m.get(key)

    def name(self, m: Map, key: str, what: str) -> str | None:
        """A required, non-empty string that can be a file or folder name
        (``taxdet.core.safe_names``)."""
        value = self.text(m, key, what)
        problem = None if value is None else name_problem(value)
        if problem:  # names become folder names (demo data, crops, outputs per customer)
            self.error(m.at(key), f"{what} {key} {value!r} {problem}: names must be usable as a "
                       "file or folder name")
            return None
        return value

    def text(self, m: Map, key: str, what: str) -> str | None:
        """A required, non-empty string."""
        if key not in m:
            self.error(m.pos, f"missing required key {key!r} in {what}")
            return None
        value = m[key]
        if not isinstance(value, str):
            got = f"{_type_name(value)} {value!r}"
            self.error(m.at(key), f"{what} {key} must be a string, got {got}")
            return None
        if not value.strip():
            self.error(m.at(key), f"{what} {key} must not be empty")
            return None
        return value

    def path(self, m: Map, key: str, what: str) -> str | None:
        """A required, non-empty string usable as a file path (no NUL character)."""
        value = self.text(m, key, what)
        if value is not None and "\0" in value:
            self.error(m.at(key), f"{what} {key} must not contain a NUL character")
            return None
        return value

    def weight(self, m: Map, key: str, what: str) -> float:
        """An optional positive finite number, 1.0 when absent."""
        if key not in m:
            return 1.0
        value = m[key]
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value <= 0:
            self.error(m.at(key), f"{what} {key} must be a positive finite number, got {value!r}")
            return 1.0
        return float(value)

    def sequence(self, m: Map, key: str, what: str, required: bool = True) -> Seq:
        if key not in m:
            if required:
                self.error(m.pos, f"missing required key {key!r} in {what}")
            return _empty_seq(m.pos)
        value = m[key]
        if value is None and not required:  # `data:` with nothing after it
            return _empty_seq(m.at(key))
        if not isinstance(value, Seq):
            self.error(m.at(key), f"{what} {key} must be a list, got {_type_name(value)}")
            return _empty_seq(m.at(key))
        return value


def _empty_seq(pos: Pos) -> Seq:
    seq = Seq()
    seq.pos, seq.item_pos = pos, []
    return seq


def _type_name(value: Any) -> str:
    names = {Map: "a mapping", Seq: "a list", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _read_classes(r: _Reader, seq: Seq, seen: dict[str, Pos]) -> list[SuperClass]:
    out = []
    for item, pos in zip(seq, seq.item_pos):
        m = r.mapping(item, pos, "class", CLASS_KEYS)
        if m is None:
            continue
        name = r.name(m, "name", "class")
        exhaustive = m.get("exhaustive", False)
        if not isinstance(exhaustive, bool):
            r.error(m.at("exhaustive"),
                    f"class exhaustive must be true or false, got {exhaustive!r}")
            exhaustive = False
        if name is not None and name in seen:
            r.error(m.at("name"), f"duplicate class name {name!r} in super-taxonomy "
                    f"(first defined at line {seen[name].line})")
            name = None
        if name is not None:
            seen[name] = m.at("name")
        children = _read_classes(r, r.sequence(m, "children", "class", required=False), seen)
        if exhaustive and not children and name is not None:
            r.warning(m.at("exhaustive"),
                      f"class {name!r} is marked exhaustive but has no children")
        if name is not None:
            out.append(SuperClass(name, exhaustive, children, m.at("name")))
    return out


def _read_super(r: _Reader, m: Map, path: str) -> SuperTaxonomy:
    name = r.name(m, "name", "super-taxonomy")
    classes = r.sequence(m, "classes", "super-taxonomy")
    if isinstance(m.get("classes"), Seq) and not classes:
        r.error(classes.pos, "super-taxonomy has no classes")
    return SuperTaxonomy(name or "", _read_classes(r, classes, {}), path, m.pos, dict(m.value_pos))


def _read_label(r: _Reader, m: Map) -> Label | None:
    name = r.name(m, "name", "label")
    if "maps_to" not in m:
        r.error(m.pos, "missing required key 'maps_to' in label (use null for labels outside "
                       "the super-taxonomy)")
        return None
    maps_to = m["maps_to"]
    if maps_to is not None and (not isinstance(maps_to, str) or not maps_to.strip()):
        r.error(m.at("maps_to"), f"label maps_to must be a class name or null, got {maps_to!r}")
        return None
    weight = r.weight(m, "box_weight", "label")
    return None if name is None else Label(name, maps_to, weight, m.at("name"), m.at("maps_to"))


def _read_data(r: _Reader, seq: Seq, base: Path
               ) -> tuple[list[DataSource], list[ClassificationSource]]:
    """The COCO datasets and the classification datasets of a ``data:`` list."""
    out, classification = [], []
    for item, pos in zip(seq, seq.item_pos):
        m = r.mapping(item, pos, "data entry", DATA_KEYS)
        if m is None:
            continue
        if any(key in m for key in CLASSIFICATION_KEYS):
            classification += _read_classification(r, m, base)
            continue
        ann, images = r.path(m, "annotations", "data entry"), r.path(m, "images", "data entry")
        if ann is not None and images is not None:
            out.append(DataSource(_resolve(base, ann), _resolve(base, images),
                                  m.at("annotations"), m.at("images")))
    return out, classification


def _read_classification(r: _Reader, m: Map, base: Path) -> list[ClassificationSource]:
    """One ``classification: DIR`` or ``classification_csv: FILE`` entry (alone in its entry)."""
    keys = [key for key in m if key in DATA_KEYS]  # in the entry's order
    if len(keys) > 1:
        r.error(m.pos, f"a data entry is either a COCO dataset (annotations, images) or one "
                "classification dataset (classification: DIR or classification_csv: FILE), "
                f"got keys {', '.join(keys)}")
        return []
    path = r.path(m, keys[0], "data entry")
    if path is None:
        return []
    return [ClassificationSource(CLASSIFICATION_KEYS[keys[0]], _resolve(base, path),
                                 m.at(keys[0]))]


def _resolve(base: Path, path: str) -> str:
    """``base / path`` made absolute; ``..`` and symlinks resolved where they exist."""
    try:
        return str((base / path).resolve())
    except (OSError, RuntimeError):  # a symlink loop
        return os.path.abspath(base / path)


def _read_taxonomy(r: _Reader, m: Map, path: str) -> Taxonomy:
    name = r.name(m, "name", "taxonomy")
    sup = r.name(m, "super_taxonomy", "taxonomy")
    labels: list[Label] = []
    seen: dict[str, Any] = {}
    label_seq = r.sequence(m, "labels", "taxonomy")
    if isinstance(m.get("labels"), Seq) and not label_seq:
        r.warning(label_seq.pos, "taxonomy has no labels: its images will train no class")
    for item, pos in zip(label_seq, label_seq.item_pos):
        lm = r.mapping(item, pos, "label", LABEL_KEYS)
        label = _read_label(r, lm) if lm is not None else None
        if label is None:
            continue
        if label.name in seen:
            r.error(label.pos, f"duplicate label name {label.name!r} in taxonomy "  # type: ignore[arg-type]
                    f"(first defined at line {seen[label.name].line})")
            continue
        seen[label.name] = label.pos
        labels.append(label)
    weight = r.weight(m, "sampling_weight", "taxonomy")
    data, classification = _read_data(r, r.sequence(m, "data", "taxonomy", required=False),
                                      Path(path).parent)
    return Taxonomy(name or "", sup or "", labels, weight, data, path, m.pos, dict(m.value_pos),
                    classification=classification)


def parse_file(path: Path | str, limits: YamlLimits | None = None
               ) -> tuple[SuperTaxonomy | Taxonomy | None, list[Diagnostic]]:
    """Read one file. Returns the object (None if it could not be built) and its diagnostics.

    An object is returned only when the file has no errors. A file that cannot
    be read (not a regular file, a symlink loop, over a limit of ``limits``) is
    an error diagnostic at 1:1; only a folder raises (``IsADirectoryError``).
    """
    obj, diagnostics = read_file(path, limits)
    return (None if has_errors(diagnostics) else obj), diagnostics


def read_file(path: Path | str, limits: YamlLimits | None = None
              ) -> tuple[SuperTaxonomy | Taxonomy | None, list[Diagnostic]]:
    """Like ``parse_file``, but returns what could be read even when the file has errors.

    Such a partial object lacks the invalid parts (e.g. a label with a bad name);
    it serves only to report more problems at once, never to train on.
    """
    r, file = _Reader(), str(path)
    try:
        doc, pos = load_yaml(path, limits)
    except YamlSyntaxError as exc:
        return None, [Diagnostic(exc.pos, ERROR, exc.message)]
    m = r.mapping(doc, pos, "a taxonomy file")
    if m is None:
        return None, r.diagnostics
    kind = r.required(m, "kind", "taxonomy file")
    obj: SuperTaxonomy | Taxonomy | None = None
    if kind == "super-taxonomy":
        r.known_keys(m, SUPER_KEYS, "super-taxonomy file")
        obj = _read_super(r, m, file)
    elif kind == "taxonomy":
        r.known_keys(m, TAXONOMY_KEYS, "taxonomy file")
        obj = _read_taxonomy(r, m, file)
    elif "kind" in m:
        r.error(m.at("kind"), f"unknown kind {kind!r}; expected one of "
                f"{', '.join(KINDS)}{did_you_mean(kind, list(KINDS))}")
    return obj, r.diagnostics
