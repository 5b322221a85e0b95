"""Training curves as a PNG: ``curves.png`` in the run folder, plotted from ``metrics.jsonl``
(matplotlib, Agg backend: no display needed), written at the end of every run.

Three panels against the step: the loss parts (every loss of the step lines), the learning
rate, and the validation metric that picks ``best.pt`` (the detector's AP, the classifier's
accuracy).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, TypeGuard

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from taxdet.core.files import atomic_open  # noqa: E402
from taxdet.detection.engine.hooks import HookBase  # noqa: E402

CURVES = "curves.png"
NOT_LOSSES = {"step", "epoch", "lr", "images_per_s"}


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG atomically and close it."""
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def read_records(path: Path) -> list[dict[str, Any]]:
    """The JSON lines of ``metrics.jsonl`` (none when it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value)


def series(records: list[dict[str, Any]], metric: str) -> dict[str, list[tuple[int, float]]]:
    """``{name: [(step, value), ...]}``: every loss part, ``lr`` and ``val <metric>``."""
    out: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        if "val" in r:
            value = r["val"].get(metric) if isinstance(r["val"], dict) else None
            if _number(value):
                out.setdefault(f"val {metric}", []).append((r["step"], float(value)))
        elif "error" not in r and "rank_images" not in r:
            for key, value in r.items():
                if key not in NOT_LOSSES - {"lr"} and _number(value):
                    out.setdefault(key, []).append((r["step"], float(value)))
    return out


def plot_curves(records: list[dict[str, Any]], metric: str) -> Figure:
    """A figure of three panels (module docstring) from ``metrics.jsonl`` records."""
    lines = series(records, metric)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    panels = ((axes[0], [k for k in lines if k != "lr" and not k.startswith("val ")], "loss"),
              (axes[1], ["lr"] * ("lr" in lines), "learning rate"),
              (axes[2], [f"val {metric}"] * (f"val {metric}" in lines), f"validation {metric}"))
    for ax, names, title in panels:
        for name in names:
            steps, values = zip(*lines[name])
            ax.plot(steps, values, marker="." if len(steps) < 30 else None, label=name)
        ax.set(title=title, xlabel="step")
        if len(names) > 1:
            ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def write_curves(folder: Path, metric: str) -> Path:
    """``curves.png`` in the run ``folder`` from its ``metrics.jsonl``."""
    return save_figure(plot_curves(read_records(folder / "metrics.jsonl"), metric),
                       folder / CURVES)


class CurvesHook(HookBase):
    """Write ``curves.png`` at the end of the run (main process)."""

    def after_train(self) -> None:
        t = self.trainer
        if t.dist.is_main:
            write_curves(t.out, t.metric)
