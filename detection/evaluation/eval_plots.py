"""PNG plots of an ``EvalResult`` (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from taxdet.core.files import atomic_open  # noqa: E402
from taxdet.detection.evaluation.backends import REC_THRS  # noqa: E402
from taxdet.detection.evaluation.cohorts import CohortReport  # noqa: E402
from taxdet.detection.evaluation.results import EvalResult  # noqa: E402

MAX_LEGEND = 20  # more curves than this: no legend (it would hide the plot)
COHORT_METRICS = ("AP", "AP50", "AP75", "AR100")  # one PNG each over the cohorts
MAX_TICK = 24     # cohort names longer than this are shortened on the axis


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


def _tick(name: str) -> str:
    return name if len(name) <= MAX_TICK else "..." + name[-(MAX_TICK - 3):]


def cohort_metric(report: CohortReport, metric: str, path: Path) -> Path:
    """One metric over the cohorts of a ``CohortReport`` (in its order), the image count of
    each cohort above its point; undefined values leave a gap."""
    values = [np.nan if v is None else v for v in report.metric(metric)]
    x = np.arange(len(values))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(values) + 2), 4))
    ax.plot(x, values, marker="o")
    for xi, v, c in zip(x, values, report.cohorts):
        ax.annotate(f"{c.images} img", (xi, 0 if np.isnan(v) else v), textcoords="offset points",
                    xytext=(0, 6), ha="center", fontsize="x-small")
    ax.set_xticks(x, [_tick(c.name) for c in report.cohorts], rotation=45, ha="right")
    ax.set(ylim=(0, 1.05), ylabel=metric, title=f"{metric} by cohort: {report.title()}")
    fig.tight_layout()
    return _save(fig, path)


def save_cohort_plots(report: CohortReport, folder: str | Path) -> list[Path]:
    """Write ``cohorts_<metric>.png`` for each of ``COHORT_METRICS`` into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [cohort_metric(report, m, folder / f"cohorts_{m}.png") for m in COHORT_METRICS]
