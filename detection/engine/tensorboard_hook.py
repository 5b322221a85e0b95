"""TensorBoard event files of a run (``<run folder>/tensorboard``): the step's loss parts,
learning rate and images/s every ``run.log_every`` steps with the other hooks' ``scalars()``
(the detector's supervision coverage), and every validation's numbers (the detector's AP per
taxonomy and class, the classifier's accuracy), flattened to ``val/<key>/<key>`` tags.

On when the ``tensorboard`` package is importable and ``run.tensorboard`` is true
(``--no-tensorboard`` switches it off).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from taxdet.detection.engine.hooks import HookBase, is_log_step

if TYPE_CHECKING:  # imported when training starts (tensorboard is an extra)
    from torch.utils.tensorboard import SummaryWriter

FOLDER = "tensorboard"


def tensorboard_available() -> bool:
    """True when ``torch.utils.tensorboard`` can write (the tensorboard package is there)."""
    return importlib.util.find_spec("tensorboard") is not None


def flat_numbers(tree: object, prefix: str) -> dict[str, float]:
    """Every finite number of a nested dict as ``{"prefix/a/b": value}``."""
    if isinstance(tree, dict):
        out: dict[str, float] = {}
        for key, value in tree.items():
            out.update(flat_numbers(value, f"{prefix}/{key}"))
        return out
    if isinstance(tree, (int, float)) and not isinstance(tree, bool) and tree == tree:
        return {prefix: float(tree)}
    return {}


class TensorBoardHook(HookBase):
    """Scalars of the run into ``folder`` (module docstring)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.writer: SummaryWriter | None = None

    def before_train(self) -> None:
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(str(self.folder))

    def _write(self, writer: SummaryWriter, values: dict[str, float]) -> None:
        for tag, value in values.items():
            writer.add_scalar(tag, value, self.trainer.state.step)

    def after_step(self) -> None:
        if self.writer is None or not is_log_step(self.trainer):
            return
        record = {k: v for k, v in self.trainer.step_record.items() if k not in ("step", "epoch")}
        values = flat_numbers(record, "train")        # train/loss, train/class_loss, train/lr
        for hook in self.trainer.hooks:
            values.update(hook.scalars())
        self._write(self.writer, values)

    def after_validate(self) -> None:
        if self.writer is not None:
            self._write(self.writer, flat_numbers(self.trainer.last_metrics, "val"))
            self.writer.flush()

    def after_train(self) -> None:
        if self.writer is not None:
            for hook in self.trainer.hooks:
                self._write(self.writer, hook.scalars())
            self.writer.close()
            self.writer = None
