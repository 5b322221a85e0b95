"""What ``tools/serve.py`` configures: the model, the projects, the image sources, the limits,
batching and access. Defaults are the safe ones (localhost, limits on)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from taxdet.detection.serving.image_fetch import FetchLimits


@dataclass
class ServeOptions:
    """``projects``: ``"ID=CUSTOMER"`` entries; ``thresholds``: ``"[CUSTOMER=]YAML"`` entries
    (without ``CUSTOMER=``, the file's ``taxonomy:`` names it); ``basic_auth``: ``"user:pass"``;
    ``model_version``: None = checkpoint name + digest; ``backend``: a name of
    ``taxdet.detection.export.trunk_backends.BACKENDS``; ``full_heads``: every customer's head
    computes all K columns and keeps the customer's (the full-head model's cost, for
    ``benchmarks/bench_serve.py``; same answers)."""

    checkpoint: Path
    projects: list[str] = field(default_factory=list)
    images_root: Path | None = None
    label_studio_url: str | None = None
    label_studio_token: str | None = None
    auth_token: str | None = None
    basic_auth: str | None = None
    max_batch: int = 8
    max_wait_ms: float = 5.0
    thresholds: list[str] = field(default_factory=list)
    score_threshold: float = 0.3
    limits: FetchLimits = FetchLimits()
    max_body_bytes: int = 16 * 1024 * 1024
    max_tasks: int = 256
    device: str = "cpu"
    use_ema: bool = True
    hierarchy_decoding: bool | str | None = None   # own | hierarchy | coverage (None); bools
    backend: str = "torch"
    threads: int | None = None
    full_heads: bool = False
    model_version: str | None = None
    host: str = "127.0.0.1"
    port: int = 9090
