"""A PNG grid of the top issues: each tile is the issue's image with its ground truth (dashed
white, in the customer's labels), the box in question (thick, in the issue type's colour) and
the model's box where it has one (thin, same colour), captioned with rank, type, score and
question."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from taxdet.core.errors import ConfigError
from taxdet.core.files import atomic_open
from taxdet.datasets.sample import Sample
from taxdet.datasets.torch_dataset import load_image
from taxdet.detection.linting.customer_view import CustomerView
from taxdet.detection.linting.issues import BAD_BOX, DUPLICATE, MISSING, WRONG_CLASS, Issue
from taxdet.detection.prediction.drawing import TILE, draw_ground_truth

TYPE_COLOURS = {MISSING: (214, 39, 40), WRONG_CLASS: (255, 127, 14), BAD_BOX: (31, 119, 180),
                DUPLICATE: (148, 103, 189)}
CAPTION_LINES = 3
MAX_TILES = 48


def _xyxy(box: list[float], f: float) -> list[float]:
    x, y, w, h = box
    return [x * f, y * f, (x + w) * f, (y + h) * f]


def issue_tile(rank: int, issue: Issue, sample: Sample, view: CustomerView) -> Image.Image:
    """One issue drawn on its image, enlarged (or shrunk) to ``TILE`` on the long side."""
    pixels = Image.fromarray(load_image(sample.file, sample.image_id))
    f = TILE / max(pixels.size)
    pixels = pixels.resize((round(pixels.width * f), round(pixels.height * f)), Image.BILINEAR)
    names = [view.label_name(int(c)) for c in sample.classes]
    draw_ground_truth(pixels, np.asarray(sample.boxes, float).reshape(-1, 4) * f, names)
    draw = ImageDraw.Draw(pixels)
    colour = TYPE_COLOURS.get(issue.type, (0, 0, 0))
    if issue.model_box is not None:
        draw.rectangle(_xyxy(issue.model_box, f), outline=colour, width=1)
    draw.rectangle(_xyxy(issue.box, f), outline=colour, width=3)
    font = ImageFont.load_default(size=12)
    text = f"#{rank} {issue.type} {issue.score:.2f} | {issue.customer} image " \
           f"{issue.source_image_id}: {issue.message}"
    lines = textwrap.wrap(text, width=max(20, pixels.width // 7))[:CAPTION_LINES]
    tile = Image.new("RGB", (pixels.width, pixels.height + 16 * CAPTION_LINES + 4), (255,) * 3)
    tile.paste(pixels, (0, 0))
    caption = ImageDraw.Draw(tile)
    for i, line in enumerate(lines):
        caption.text((3, pixels.height + 2 + 16 * i), line, fill=(0, 0, 0), font=font)
    return tile


def save_issue_grid(issues: list[Issue], samples: dict[int, Sample],
                    views: dict[str, CustomerView], out_png: str | Path, count: int = 12,
                    columns: int = 3) -> Path:
    """Write the first ``count`` issues (at most ``MAX_TILES``) as a PNG grid; ``samples``
    maps image ids to the linted samples."""
    shown = issues[:max(0, min(count, MAX_TILES))]
    if not shown:
        raise ConfigError(f"{out_png}: no issue to draw")
    tiles = [issue_tile(r, i, samples[i.image_id], views[i.customer])
             for r, i in enumerate(shown, 1)]
    cols = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    cell_w, cell_h = max(t.width for t in tiles), max(t.height for t in tiles)
    grid = Image.new("RGB", (cols * (cell_w + 4) - 4, rows * (cell_h + 4) - 4), (255,) * 3)
    for i, tile in enumerate(tiles):
        grid.paste(tile, ((i % cols) * (cell_w + 4), (i // cols) * (cell_h + 4)))
    out_png = Path(out_png)
    with atomic_open(out_png, "wb") as f:
        grid.save(f, format="PNG")
    return out_png
