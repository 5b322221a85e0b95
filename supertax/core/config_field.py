"""``config_field``: a dataclass field that carries its ``--help`` text.

Every section of the training config (``taxdet.detection.model.detector_config.TrainConfig``)
declares its fields with it, wherever the section lives (``datasets``, ``losses``, ``detection``);
``tools/train.py --help`` reads the text from ``field.metadata["help"]``. Standard library only, so
the config classes and the parser import no torch.
"""

from __future__ import annotations

from dataclasses import field
from typing import Any


def config_field(default: Any, help: str) -> Any:
    """A dataclass field with its ``--help`` text (a list default is copied per instance)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})
