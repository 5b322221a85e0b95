"""PNG plots of a ``ClassifierEvaluation``: confusion matrices and the reliability diagram
(matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from taxdet.detection.classification.classifier_evaluation import ClassifierEvaluation
from taxdet.detection.engine.curves import plt, save_figure


def confusion_plot(result: ClassifierEvaluation, path: Path) -> Path:
    """One confusion matrix per taxonomy, in its own label names, rows normalised to the
    share of the true label's images (the counts written in the cells)."""
    tasks = [t for t in result.tasks if t.images]
    fig, axes = plt.subplots(1, max(len(tasks), 1), squeeze=False,
                             figsize=(3.8 * max(len(tasks), 1), 3.8))
    for ax, task in zip(axes[0], tasks):
        counts = np.asarray(task.confusion, np.float64)               # [C, C]
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
        for (i, j), n in np.ndenumerate(counts):
            ax.text(j, i, str(int(n)), ha="center", va="center",
                    color="white" if share[i, j] > 0.5 else "black", fontsize="small")
        ticks = range(len(task.classes))
        ax.set_xticks(ticks, task.classes, rotation=45, ha="right", fontsize="small")
        ax.set_yticks(ticks, task.classes, fontsize="small")
        ax.set(title=f"{task.taxonomy} (top-1 {task.top_n[1]:.3f})", xlabel="predicted",
               ylabel="true")
    fig.tight_layout()
    return save_figure(fig, path)


def reliability_plot(result: ClassifierEvaluation, path: Path) -> Path:
    """Accuracy against confidence per bin (pooled over the taxonomies), the diagonal of
    perfect calibration, and the share of images per bin."""
    bins = result.reliability
    edges = np.asarray(bins["edges"])
    centers, width = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
    accuracy = np.nan_to_num(np.asarray(bins["accuracy"], np.float64))
    count = np.asarray(bins["count"], np.float64)
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(5, 6), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 1]})
    ax.bar(centers, accuracy, width, edgecolor="black", label="accuracy")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.set(ylabel="accuracy", ylim=(0, 1), title=f"Reliability (ECE {result.ece:.3f})")
    ax.legend(loc="upper left")
    hist.bar(centers, count / max(count.sum(), 1), width, color="grey")
    hist.set(xlabel="confidence", ylabel="share of images", xlim=(0, 1))
    fig.tight_layout()
    return save_figure(fig, path)


def save_plots(result: ClassifierEvaluation, folder: str | Path) -> list[Path]:
    """Write ``confusion.png`` and ``reliability.png`` into ``folder`` (created)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [confusion_plot(result, folder / "confusion.png"),
            reliability_plot(result, folder / "reliability.png")]
