"""Dynamic batching across concurrent requests: an asyncio queue, a max batch, a max wait.

    batcher = DynamicBatcher(run_batch, max_batch=8, max_wait_ms=5)
    result = await batcher.submit(item)          # from any request handler

A batch starts with the first item waiting and takes further items until ``max_batch`` are
taken or ``max_wait_ms`` passed since the first. ``run_batch(items) -> results`` (one result
per item, in order) runs in one worker thread, so the model runs one batch at a time and the
event loop keeps accepting requests. An exception from ``run_batch`` fails every item of that
batch; later batches are unaffected.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

logger = logging.getLogger(__name__)


class DynamicBatcher:
    """See the module docstring. The worker task starts on the first ``submit`` (in the running
    event loop) and stops with ``close``."""

    def __init__(self, run_batch: Callable[[list[Any]], list[Any]], max_batch: int = 8,
                 max_wait_ms: float = 5.0):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_ms >= 0")
        self.run_batch = run_batch
        self.max_batch, self.max_wait = max_batch, max_wait_ms / 1000.0
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="taxdet-batch")
        self.queue: asyncio.Queue | None = None
        self.worker: asyncio.Task | None = None
        self.batch_sizes: list[int] = []  # for tests and benchmarks: sizes of the batches run

    def _ensure_worker(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self.worker is None or self.worker.done() or self.worker.get_loop() is not loop:
            self.queue = asyncio.Queue()
            self.worker = loop.create_task(self._work(self.queue))
        assert self.queue is not None
        return self.queue

    async def submit(self, item: Any) -> Any:
        """The result of ``item`` once its batch has run."""
        future = asyncio.get_running_loop().create_future()
        await self._ensure_worker().put((item, future))
        return await future

    async def _take(self, queue: asyncio.Queue) -> list[tuple[Any, asyncio.Future]]:
        batch = [await queue.get()]
        deadline = asyncio.get_running_loop().time() + self.max_wait
        while len(batch) < self.max_batch:
            left = deadline - asyncio.get_running_loop().time()
            try:
                batch.append(queue.get_nowait() if left <= 0 else
                             await asyncio.wait_for(queue.get(), left))
            except (asyncio.QueueEmpty, asyncio.TimeoutError):
                break
        return batch

    async def _work(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = await self._take(queue)
            items = [item for item, _ in batch]
            self.batch_sizes.append(len(items))
            try:
                results = await loop.run_in_executor(self.executor, self.run_batch, items)
            except Exception as exc:  # every waiting request gets the error, the loop goes on
                logger.error("batch of %d failed: %s: %s", len(items), type(exc).__name__, exc,
                             exc_info=True)
                results = [exc] * len(items)
            for (_, future), result in zip(batch, results):
                if future.done():
                    continue
                if isinstance(result, Exception):
                    future.set_exception(result)
                else:
                    future.set_result(result)

    async def close(self) -> None:
        """Stop the worker task (pending requests are cancelled); a later ``submit`` starts a
        new one."""
        if self.worker is not None:
            self.worker.cancel()
            try:
                await self.worker
            except asyncio.CancelledError:
                pass
            self.worker = None
