"""A training progress bar (tqdm) showing loss and images/s; silent when disabled."""

from __future__ import annotations

from tqdm import tqdm


class Progress:
    def __init__(self, total: int, initial: int = 0, enabled: bool = True):
        self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True,
                        disable=not enabled, desc="train")

    def update(self, loss: float, images_per_s: float) -> None:
        self.bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{images_per_s:.1f}", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
