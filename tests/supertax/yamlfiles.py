"""Taxonomy YAML written into temporary folders for the tests.

``DRIVING`` is the issue's super-taxonomy; its class names sit at
person 4:11, pedestrian_adult 7:15, pedestrian_child 8:15, vehicle 9:11,
car 11:15, truck 12:15, traffic_light 13:11 (line:col, 1-based).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from tests import paths

SHIPPED = paths.DRIVING  # the repo's own driving YAMLs (``DRIVING`` below is YAML text)


def shipped_with_data(folder: Path) -> Path:
    """A copy of ``SHIPPED`` in ``folder/taxonomies/driving`` whose ``data:`` paths exist.

    Validation warns for data paths that do not exist, and the repo's ``data/demo``
    exists only after ``make demo``: tests that count diagnostics use this copy.
    """
    target = folder / "taxonomies" / "driving"
    target.mkdir(parents=True)
    for f in sorted(SHIPPED.glob("*.yaml")):
        (target / f.name).write_bytes(f.read_bytes())
        for src in (yaml.safe_load(f.read_text()) or {}).get("data") or []:
            if "classification" in src:  # an image-classification folder
                (target / src["classification"]).resolve().mkdir(parents=True, exist_ok=True)
                continue
            (target / src["images"]).resolve().mkdir(parents=True, exist_ok=True)
            annotations = (target / src["annotations"]).resolve()
            annotations.parent.mkdir(parents=True, exist_ok=True)
            annotations.write_text("{}")
    return target


DRIVING = """\
kind: super-taxonomy
name: driving
classes:
  - name: person
    exhaustive: true
    children:
      - name: pedestrian_adult
      - name: pedestrian_child
  - name: vehicle
    children:
      - name: car
      - name: truck
  - name: traffic_light
"""


def write(folder: Path, name: str, text: str | bytes) -> Path:
    """Write ``text`` (dedented if str) to ``folder/name``; returns the path."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def taxonomy(name: str, labels: dict[str, str | None], super_name: str = "driving") -> str:
    """A customer taxonomy mapping each label name to a class (None -> null)."""
    lines = ["kind: taxonomy", f"name: {name}", f"super_taxonomy: {super_name}", "labels:"]
    for label, maps_to in labels.items():
        lines += [f"  - name: {label}", f"    maps_to: {'null' if maps_to is None else maps_to}"]
    return "\n".join(lines) + "\n"


def driving_with(folder: Path, **taxonomies: dict[str, str | None]) -> Path:
    """``folder`` holding DRIVING and one file per keyword (taxonomy name -> labels)."""
    write(folder, "driving.yaml", DRIVING)
    for name, labels in taxonomies.items():
        write(folder, f"{name}.yaml", taxonomy(name, labels))
    return folder
