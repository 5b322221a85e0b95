"""The detector's hooks of the training loop: the pseudo-label teacher and the supervision
coverage report (``taxdet.detection.training.coverage``)."""

from __future__ import annotations

import logging

import numpy as np

from taxdet.detection.engine.hooks import HookBase
from taxdet.detection.training.coverage import KINDS, coverage_table, write_coverage
from taxdet.detection.training.pseudo_schedule import teacher_ready

logger = logging.getLogger(__name__)


class PseudoLabelTeacher(HookBase):
    """Once ``teacher_ready`` (``taxdet.detection.training.pseudo_schedule``), the EMA model is
    the teacher whose confident scores pseudo-label masked cells (``trainer.teacher``; None
    before)."""

    def before_step(self) -> None:
        t = self.trainer
        started = teacher_ready(t.cfg.pseudo, t.state.step, t.state.history, t.metric)
        t.teacher = t.ema.module if started else None


class CoverageReport(HookBase):
    """At the end: ``coverage.json``, its table and decoding plan (logged) and warnings for
    untrained and excluded columns; the counts summed per kind as curve scalars
    (``coverage/positive``, ...)."""

    def scalars(self) -> dict[str, float]:
        counts = self.trainer.bench.coverage.sum(dim=(0, 2)).tolist()   # [6] over T and K
        return {f"coverage/{kind}": float(n) for kind, n in zip(KINDS, counts)}

    def after_train(self) -> None:
        t = self.trainer
        counts = t.coverage_counts()                 # every rank takes part in the sum
        if not t.dist.is_main:
            return
        names = sorted(t.taxset.index, key=t.taxset.index.get)
        report, warnings = write_coverage(counts, names,
                                          list(t.taxset.names), t.out,
                                          ancestors=np.asarray(t.taxset.ancestors))
        if t.cfg.run.progress:
            logger.info("supervision coverage (anchor cells, all taxonomies; per taxonomy in "
                        "%s):\n%s", t.out / "coverage.json", coverage_table(report))
        for line in report["decoding_notes"]:
            logger.info(line)
        for line in warnings:
            logger.warning(line)
