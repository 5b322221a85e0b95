"""Hooks of the training loop (modelled on detectron2's ``HookBase``) and the engine's own.

A hook is called at fixed points of ``TrainerBase.fit`` with its ``trainer`` set:
``before_train``, ``before_step``, ``after_step``, ``after_epoch``, ``after_validate`` (each
time ``validate_and_save`` scored the model) and ``after_train``. Hooks run in the order they
were registered. ``scalars()`` offers extra numbers for the curve writers (TensorBoard).

The engine's hooks: ``EmaUpdate`` (the weights' moving average after every step),
``MetricLogger`` (a ``metrics.jsonl`` line every ``run.log_every`` steps), ``ValidationSchedule``
(validate every ``run.val_every`` steps, or per epoch, and after the last step) and
``Checkpointer`` (``best.pt`` when the metric improved, ``last.pt`` after every validation).
"""

from __future__ import annotations

from typing import Any


class HookBase:
    """A hook of the loop; every method does nothing unless overridden."""

    trainer: Any = None

    def before_train(self) -> None:
        pass

    def before_step(self) -> None:
        pass

    def after_step(self) -> None:
        pass

    def after_epoch(self) -> None:
        pass

    def after_validate(self) -> None:
        pass

    def after_train(self) -> None:
        pass

    def scalars(self) -> dict[str, float]:
        """Extra numbers to plot at this step, by tag (``coverage/positive``)."""
        return {}


def is_log_step(trainer: Any) -> bool:
    """True at the steps that write a ``metrics.jsonl`` line (every ``run.log_every`` steps
    and the last)."""
    step: int = trainer.state.step
    every: int = trainer.cfg.run.log_every
    return step % every == 0 or step == trainer.total_steps


class EmaUpdate(HookBase):
    """Update the weights' moving average after every optimizer step."""

    def after_step(self) -> None:
        t = self.trainer
        t.ema.update(t.model, step=t.state.step - 1)


class MetricLogger(HookBase):
    """Write the step's losses, learning rate and images/s to ``metrics.jsonl``."""

    def after_step(self) -> None:
        if is_log_step(self.trainer):
            self.trainer.log(self.trainer.step_record)


class ValidationSchedule(HookBase):
    """Validate and checkpoint every ``run.val_every`` steps, or (0) at each epoch's end; and
    after the last step unless that step was just validated."""

    def after_step(self) -> None:
        every = self.trainer.cfg.run.val_every
        if every and self.trainer.state.step % every == 0:
            self.trainer.validate_and_save()

    def after_epoch(self) -> None:
        if self.trainer.cfg.run.val_every == 0:
            self.trainer.validate_and_save()

    def after_train(self) -> None:
        s = self.trainer.state
        if not s.history or s.history[-1]["step"] != s.step:
            self.trainer.validate_and_save()


class Checkpointer(HookBase):
    """``best.pt`` when the validation metric improved, then ``last.pt``."""

    def after_validate(self) -> None:
        if self.trainer.improved:
            self.trainer.save("best.pt")
        self.trainer.save("last.pt")
