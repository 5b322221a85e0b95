"""The lint report: JSON (every reported issue), Markdown (counts per customer and issue type,
then the top issues), and the short text the CLI prints.

JSON layout::

    {"predictions": "...", "warnings": [...],
     "info": {"decoding", "validation_ap": {model: {"AP", "step", "floor", ...}},
              "degenerate_boxes_dropped": {"boxes", "images", "rule"}},
     "config": {...LintConfig...},
     "images": {customer: images linted}, "counts": {customer: {type: issues}},
     "issues": [{"rank": 1, "type", "score", "customer", "image_id", "file_name", "box",
                 "message", "source_image_id", "source_file", "ann_id", "label",
                 "suggested", ...}, ...]}

``counts`` cover every issue at or above ``min_score``; ``issues`` holds the top ``top`` of
them (all when ``top`` is 0).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from taxdet.core.files import write_atomic
from taxdet.detection.linting.issues import ISSUE_TYPES, Issue, count_by
from taxdet.detection.linting.linter import LintResult
from taxdet.detection.model.drawable_boxes import INFO_KEY


def top_issues(result: LintResult, top: int) -> list[Issue]:
    return result.issues[:top] if top > 0 else list(result.issues)


def report_dict(result: LintResult, top: int) -> dict:
    return {"predictions": result.predictions, "warnings": list(result.warnings),
            "info": dict(result.info),
            "config": asdict(result.config), "images": dict(result.images),
            "counts": count_by(result.issues),
            "issues": [{"rank": r, **i.to_dict()}
                       for r, i in enumerate(top_issues(result, top), 1)]}


def write_json(result: LintResult, path: str | Path, top: int = 0) -> Path:
    return write_atomic(path, json.dumps(report_dict(result, top), indent=1) + "\n")


def counts_table(result: LintResult) -> list[str]:
    """Markdown rows: images and issues per customer and type, and a total row."""
    counts = count_by(result.issues)
    head = "| customer | images | " + " | ".join(ISSUE_TYPES) + " | all |"
    rows = [head, "|---|---:|" + "---:|" * (len(ISSUE_TYPES) + 1)]
    totals = dict.fromkeys(ISSUE_TYPES, 0)
    for customer, images in result.images.items():
        row = counts.get(customer, dict.fromkeys(ISSUE_TYPES, 0))
        for t in ISSUE_TYPES:
            totals[t] += row[t]
        rows.append(f"| {customer} | {images} | " + " | ".join(str(row[t]) for t in ISSUE_TYPES)
                    + f" | {sum(row.values())} |")
    rows.append(f"| **all** | {sum(result.images.values())} | "
                + " | ".join(str(totals[t]) for t in ISSUE_TYPES) + f" | {sum(totals.values())} |")
    return rows


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|") if text is not None else ""


def issue_rows(issues: list[Issue]) -> list[str]:
    rows = ["| # | score | type | customer | image | annotation | label | suggested | box "
            "(x, y, w, h) |", "|---:|---:|---|---|---|---:|---|---|---|"]
    for r, i in enumerate(issues, 1):
        image = f"{i.source_image_id} {Path(i.file_name).name}"
        box = ", ".join(f"{v:g}" for v in i.box)
        rows.append(f"| {r} | {i.score:.3f} | {i.type} | {_cell(i.customer)} | {_cell(image)} | "
                    f"{_cell(i.ann_id)} | {_cell(i.label)} | {_cell(i.suggested)} | {box} |")
    return rows


def info_lines(info: dict) -> list[str]:
    """Markdown lines on the models: decoding, validation APs, degenerate boxes dropped."""
    if not info:
        return []
    lines = [f"Decoding: {info.get('decoding') or '-'}."]
    for model, ap in (info.get("validation_ap") or {}).items():
        lines.append(f"Validation AP of {model}: " + (
            f"{ap['AP']:.3f} at step {ap['step']} (floor {ap['floor']:g})" if ap else "unknown")
            + ".")
    dropped = info.get(INFO_KEY)
    if dropped:
        lines.append(f"Degenerate boxes dropped: {dropped['boxes']} on {dropped['images']} "
                     f"images ({dropped['rule']}).")
    return [" ".join(lines), ""]


def markdown(result: LintResult, top: int = 50) -> str:
    """The Markdown summary: predictions used, warnings, counts, then the top issues."""
    cfg = result.config
    lines = ["# Label lint report", "", f"Detections: {result.predictions or 'given'}.", ""]
    lines += info_lines(result.info)
    lines += [f"> **warning:** {w}" for w in result.warnings]
    lines += ["", f"Issues scoring at least {cfg.min_score:g}, per customer and type:", ""]
    lines += counts_table(result)
    shown = top_issues(result, top)
    lines += ["", f"## Top {len(shown)} issues", "", "Labels are the customer's own; "
              "annotation and image ids are those of the customer's file.", ""]
    lines += issue_rows(shown) if shown else ["No issue."]
    return "\n".join(lines) + "\n"


def write_markdown(result: LintResult, path: str | Path, top: int = 50) -> Path:
    return write_atomic(path, markdown(result, top))


def summary_text(result: LintResult) -> str:
    """A few lines for the terminal: images, issues per type, the top five."""
    counts = count_by(result.issues)
    per_type = {t: sum(row[t] for row in counts.values()) for t in ISSUE_TYPES}
    lines = [f"linted {sum(result.images.values())} images of "
             f"{', '.join(f'{c} ({n})' for c, n in result.images.items()) or 'no customer'}: "
             f"{len(result.issues)} issues ("
             + ", ".join(f"{n} {t}" for t, n in per_type.items()) + ")"]
    lines += [f"  {i.score:.3f} {i.customer} image {i.source_image_id}: {i.message}"
              for i in result.issues[:5]]
    return "\n".join(lines)
