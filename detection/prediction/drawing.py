"""Draw detections on images (PIL only): one colour per class, label + score; ground truth dashed.

``save_prediction_grid`` writes the PNG the demo shows: a few test images, each with the
model's boxes (solid, coloured, ``name 0.87``) over the ground truth (thin dashed white on
black, so it shows on any background, its class name at the box's bottom left). Class names
are whatever the caller gives: super-taxonomy columns, or a customer's own category ids and
names.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from taxdet.core.errors import ConfigError
from taxdet.core.files import atomic_open
from taxdet.datasets.coco_io import check_bbox, check_int, column, xywh_to_xyxy
from taxdet.datasets.images import image_files, read_ground_truth
from taxdet.datasets.torch_dataset import load_image
from taxdet.detection.model.detector_wrappers import Detections

# tab10 without grey: distinct on photos and on the demo's flat colours
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
           (140, 86, 75), (227, 119, 194), (188, 189, 34), (23, 190, 207)]
TILE = 384          # long side of one grid tile in pixels (small images are enlarged)
GT_DASH = (6, 4)    # on / off pixels of the ground-truth outline


def class_colour(column: int) -> tuple[int, int, int]:
    return PALETTE[column % len(PALETTE)]


def _font(size: int) -> ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def dashed_rectangle(draw: ImageDraw.ImageDraw, box, fill, width: int = 1, dash=GT_DASH) -> None:
    """Outline ``box`` (x1, y1, x2, y2) with dashes of ``dash`` = (on, off) pixels."""
    x1, y1, x2, y2 = box
    on, off = dash
    for (ax, ay), (bx, by) in (((x1, y1), (x2, y1)), ((x2, y1), (x2, y2)),
                               ((x2, y2), (x1, y2)), ((x1, y2), (x1, y1))):
        length = math.hypot(bx - ax, by - ay)
        t = 0.0
        while t < length:
            e = min(t + on, length)
            draw.line([(ax + (bx - ax) * t / length, ay + (by - ay) * t / length),
                       (ax + (bx - ax) * e / length, ay + (by - ay) * e / length)],
                      fill=fill, width=width)
            t += on + off


def draw_ground_truth(image: Image.Image, boxes, names: list[str] | None = None,
                      font_size: int = 11) -> Image.Image:
    """Ground-truth boxes [G, 4] x1y1x2y2 as thin dashed outlines (black under white), each
    named by ``names`` [G] (if given) in small outlined text at its bottom left."""
    draw, font = ImageDraw.Draw(image), _font(font_size)
    boxes = np.asarray(boxes, dtype=float).reshape(-1, 4).tolist()
    for i, box in enumerate(boxes):
        draw.rectangle(box, outline=(0, 0, 0), width=1)
        dashed_rectangle(draw, box, fill=(255, 255, 255))
        if names:  # shifted left where it would leave the image
            x = max(0, min(box[0] + 2, image.width - draw.textlength(names[i], font=font) - 2))
            draw.text((x, box[3] - 2), names[i], fill=(255, 255, 255), font=font,
                      anchor="ld", stroke_width=1, stroke_fill=(0, 0, 0))
    return image


def draw_detections(image: Image.Image | np.ndarray, detections: Detections, class_names: list[str],
                    score_threshold: float = 0.3, font_size: int = 12) -> Image.Image:
    """A copy of ``image`` (PIL or [H, W, 3] uint8 RGB) with the detections scoring at least
    ``score_threshold``: boxes [N, 4] x1y1x2y2 in the image's pixels, outline in the class
    colour, ``name score`` on a filled tag above the box (inside it at the image's top edge,
    shifted left at its right edge)."""
    out = image.convert("RGB") if isinstance(image, Image.Image) else Image.fromarray(image)
    draw, font = ImageDraw.Draw(out), _font(font_size)
    keep = detections.scores >= score_threshold
    order = torch.argsort(detections.scores[keep])  # best drawn last, on top
    boxes, scores = detections.boxes[keep][order].tolist(), detections.scores[keep][order].tolist()
    for box, score, col in zip(boxes, scores, detections.classes[keep][order].tolist()):
        colour = class_colour(col)
        draw.rectangle(box, outline=colour, width=2)
        text = f"{class_names[col]} {score:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tag_w, tag_h = right - left + 4, bottom - top + 4
        x = max(0, min(box[0], out.width - tag_w))  # keep the tag inside the image
        y = box[1] - tag_h if box[1] >= tag_h else box[1]
        draw.rectangle([x, y, x + tag_w, y + tag_h], fill=colour)
        draw.text((x + 2 - left, y + 2 - top), text, fill=(255, 255, 255), font=font)
    return out


def results_by_image(results: list[dict]) -> dict[int, Detections]:
    """COCO results (category_id = column + 1, bbox xywh) grouped into ``Detections`` per image."""
    rows = defaultdict(list)
    for r in results:
        x, y, w, h = r["bbox"]
        rows[int(r["image_id"])].append((x, y, x + w, y + h, r["score"], r["category_id"] - 1))
    out = {}
    for image_id, items in rows.items():
        t = torch.tensor(items, dtype=torch.float64)
        out[image_id] = Detections(t[:, :4].float(), t[:, 4].float(), t[:, 5].long())
    return out


def _scaled(d: Detections, f: float) -> Detections:
    return Detections(d.boxes * f, d.scores, d.classes)


def _gt_boxes(gt: dict, source: str) -> dict[int, tuple[np.ndarray, list[str]]]:
    """Image id -> its ground-truth boxes [G, 4] x1y1x2y2 and their class names [G] (from the
    file's own categories; records checked by the COCO reader)."""
    anns = gt.get("annotations") or []
    image_ids = column(source, "annotations", anns, "image_id", check_int, "i")
    cat_ids = column(source, "annotations", anns, "category_id", check_int, "i").tolist()
    xyxy = xywh_to_xyxy(column(source, "annotations", anns, "bbox", check_bbox, "if", width=4)
                        .astype(np.float64).reshape(-1, 4))
    cats = {c.get("id"): str(c.get("name")) for c in gt.get("categories") or []
            if isinstance(c, dict)}
    names = [cats.get(c, f"id {c}") for c in cat_ids]
    return {i: (xyxy[image_ids == i], [n for n, m in zip(names, image_ids == i) if m])
            for i in np.unique(image_ids).tolist()}


def _as_columns(results: list[dict], class_names: list[str] | dict[int, str]
                ) -> tuple[list[dict], list[str]]:
    """(results with category_id = position + 1 in the name list, the name list): a list is
    already in that form; a dict {category id: name} is ordered by id."""
    if isinstance(class_names, list):
        return results, class_names
    ids = sorted(class_names)
    position = {c: p for p, c in enumerate(ids)}
    return ([{**r, "category_id": position[r["category_id"]] + 1} for r in results
             if r["category_id"] in position], [class_names[c] for c in ids])


def _tile(img: dict, file: str, dets: Detections, gt: tuple[np.ndarray, list[str]],
          class_names: list[str], score_threshold: float) -> Image.Image:
    """One image enlarged (or shrunk) to ``TILE`` on its long side, GT and predictions drawn."""
    pixels = Image.fromarray(load_image(file, img["id"]))
    f = TILE / max(pixels.size)
    pixels = pixels.resize((round(pixels.width * f), round(pixels.height * f)), Image.BILINEAR)
    draw_ground_truth(pixels, gt[0] * f, gt[1])
    tile = draw_detections(pixels, _scaled(dets, f), class_names, score_threshold)
    kept = int((dets.scores >= score_threshold).sum())
    ImageDraw.Draw(tile).text((4, tile.height - 18), f"id {img['id']}  {Path(file).name}  "
                              f"{kept} boxes >= {score_threshold:g}", fill=(255, 255, 255),
                              font=_font(13), stroke_width=2, stroke_fill=(0, 0, 0))
    return tile


def _legend(width: int, class_names: list[str]) -> Image.Image:
    """A strip (at least ``width`` wide) naming each class colour and the ground-truth style."""
    font = _font(13)
    needed = sum(24 + int(font.getlength(n)) for n in class_names + ["ground truth"]) + 16
    strip = Image.new("RGB", (max(width, needed), 28), (255, 255, 255))
    draw, x = ImageDraw.Draw(strip), 8
    for col, name in enumerate(class_names):
        draw.rectangle([x, 8, x + 12, 20], fill=class_colour(col))
        draw.text((x + 16, 7), name, fill=(0, 0, 0), font=font)
        x += 24 + int(draw.textlength(name, font=font))
    draw.rectangle([x, 8, x + 18, 20], fill=(90, 90, 90))
    dashed_rectangle(draw, [x + 1, 9, x + 17, 19], fill=(255, 255, 255), dash=(3, 2))
    draw.text((x + 24, 7), "ground truth", fill=(0, 0, 0), font=font)
    return strip


def save_prediction_grid(results: list[dict], gt_coco: dict | str | Path,
                         images_dir: str | Path | None, class_names: list[str] | dict[int, str],
                         out_png: str | Path, count: int = 6, score_threshold: float = 0.3) -> Path:
    """Write a PNG grid of the first ``count`` ground-truth images with their predictions.

    ``results``: COCO results with category_id = column + 1 of ``class_names`` (a list), or
    ids of ``class_names`` = {category id: name} (results of other ids are not drawn). Image
    files resolve like ``taxdet.datasets.images.image_files`` (default folder: the ground truth's);
    ground-truth boxes are named by the file's own categories.
    """
    results, class_names = _as_columns(results, class_names)
    gt, base, source = read_ground_truth(gt_coco, images_dir)
    images = gt["images"][:max(0, count)]
    if not images:
        raise ConfigError(f"{source}: no images to draw")
    files = image_files(images, base, source)
    dets, boxes = results_by_image(results), _gt_boxes(gt, source)
    none = Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    no_boxes = (np.zeros((0, 4)), [])
    tiles = [_tile(img, f, dets.get(img["id"], none), boxes.get(img["id"], no_boxes),
                   class_names, score_threshold) for img, f in zip(images, files)]
    cols = min(3, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    cell_w, cell_h = max(t.width for t in tiles), max(t.height for t in tiles)
    legend = _legend(cols * (cell_w + 4) - 4, class_names)
    grid = Image.new("RGB", (legend.width, rows * (cell_h + 4) + legend.height), (255, 255, 255))
    for i, tile in enumerate(tiles):
        grid.paste(tile, ((i % cols) * (cell_w + 4), (i // cols) * (cell_h + 4)))
    grid.paste(legend, (0, rows * (cell_h + 4)))
    out_png = Path(out_png)
    with atomic_open(out_png, "wb") as f:
        grid.save(f, format="PNG")
    return out_png


def drawing_path(out_dir: str | Path, file_name: str) -> Path:
    """Where ``save_drawings`` puts the drawing of ``file_name``: the same relative path
    under ``out_dir``, as PNG (an absolute path keeps only its name)."""
    rel = Path(file_name)
    rel = Path(rel.name) if rel.is_absolute() or ".." in rel.parts else rel
    return Path(out_dir) / rel.with_name(rel.name + ".png")


def save_drawings(results: list[dict], images: list[dict], base: Path | None,
                  class_names: list[str] | dict[int, str], out_dir: str | Path,
                  score_threshold: float = 0.0) -> list[Path]:
    """Draw each image record's detections (``results``, see ``save_prediction_grid``) at
    the image's own size, one PNG per image (``drawing_path``); return the paths."""
    results, class_names = _as_columns(results, class_names)
    dets = results_by_image(results)
    none = Detections(torch.zeros(0, 4), torch.zeros(0), torch.zeros(0, dtype=torch.long))
    paths = []
    for img in images:
        file = str(Path(img["file_name"]) if base is None else base / img["file_name"])
        pixels = load_image(file, img["id"])
        font_size = max(12, round(max(pixels.shape[:2]) / 60))
        drawn = draw_detections(pixels, dets.get(img["id"], none), class_names, score_threshold,
                                font_size)
        out = drawing_path(out_dir, img["file_name"])
        with atomic_open(out, "wb") as f:
            drawn.save(f, format="PNG")
        paths.append(out)
    return paths
