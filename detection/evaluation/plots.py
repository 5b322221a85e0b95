"""PNG plots of an ``EvalResult`` (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from datasets.files import atomic_open  # noqa: E402
from detection.evaluation.backends import REC_THRS  # noqa: E402
from detection.evaluation.results import EvalResult  # noqa: E402

MAX_LEGEND = 20  # more curves than this: no legend (it would hide the plot)


def ap_bars(result: EvalResult, path: Path) -> Path:
    """Horizontal bars of per-class AP and AP50; classes without a number are labelled."""
    classes = result.per_class
    fig, ax = plt.subplots(figsize=(7, 0.4 * len(classes) + 1.5))
    y = np.arange(len(classes))
    ax.barh(y - 0.2, [c.ap50 or 0 for c in classes], 0.4, label="AP50")
    ax.barh(y + 0.2, [c.ap or 0 for c in classes], 0.4, label="AP 0.50:0.95")
    ax.set_yticks(y, [c.name + (f" ({c.note})" if c.note else "") for c in classes])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("average precision")
    ax.set_title(f"Per-class AP ({result.mode})")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return _save(fig, path)


def pr_curves(result: EvalResult, path: Path) -> Path:
    """Precision-recall curves per class at IoU 0.50 and averaged over IoU 0.50:0.95.

    From ``precision`` [T, R, C, A, M] at area all, maxDets 100 (101 interpolated points).
    """
    prec = result.arrays.precision[:, :, :, 0, 2]  # [T, R, C]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True)
    for ax, title, curves in ((axes[0], "IoU 0.50", prec[0]),
                              (axes[1], "mean over IoU 0.50:0.95", prec.mean(axis=0))):
        for k, cat in enumerate(result.arrays.category_ids):
            if (prec[:, :, k] > -1).any():
                name = next(c.name for c in result.per_class if c.category_id == cat)
                ax.plot(REC_THRS, np.clip(curves[:, k], 0, 1), label=name)
        ax.set(title=title, xlabel="recall", xlim=(0, 1), ylim=(0, 1.02))
    axes[0].set_ylabel("precision")
    if len(axes[1].lines) <= MAX_LEGEND:
        axes[1].legend(loc="lower left", fontsize="small")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def save_plots(result: EvalResult, folder: str | Path) -> list[Path]:
    """Write ``ap_per_class.png`` and ``pr_curves.png`` into ``folder`` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [ap_bars(result, folder / "ap_per_class.png"),
            pr_curves(result, folder / "pr_curves.png")]
