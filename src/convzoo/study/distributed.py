"""The ranks of a study under ``torchrun``: who trains which (op, seed) run, and how rank 0 gathers the rows.

``torchrun --nproc_per_node N -m convzoo study ...`` (and ``--nnodes`` across machines) starts N processes. With
``--parallel runs`` (the default) each process trains whole runs alone on its own device (``cuda:LOCAL_RANK``, or
the CPU), taking the next unstarted run from a counter in the launcher's key-value store, so a fast op does not
leave a rank idle while another works through a slow one; the trainer is told to train alone
(``CONVZOO_SINGLE_PROCESS=1``). With ``--parallel data`` every run uses all ranks through DistributedDataParallel.

Waiting is done on the store, not in a collective: a rank that finished its runs sleeps until the others have
(collectives time out after ``CONVZOO_DIST_TIMEOUT_S``), and while rank 0 times the trained ops the others block
on a key, leaving the device idle. Process groups use NCCL on GPUs and gloo on CPUs.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch
import torch.distributed as dist

__all__ = ["Ranks", "train_alone"]

T = TypeVar("T")

SINGLE_PROCESS = "CONVZOO_SINGLE_PROCESS"
WAIT_FOREVER = datetime.timedelta(days=7)  # rank 0 timing many ops may take far longer than a collective's timeout


@contextlib.contextmanager
def train_alone() -> Iterator[None]:
    """The trainer inside the block trains in this process only, joining no process group."""
    before = os.environ.get(SINGLE_PROCESS)
    os.environ[SINGLE_PROCESS] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(SINGLE_PROCESS, None)
        else:
            os.environ[SINGLE_PROCESS] = before


class Ranks:
    """This process's place among the study's processes; one process (``world == 1``) outside torchrun."""

    def __init__(self) -> None:
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        self.rank = 0
        self._keys = 0
        if self.world > 1:
            if torch.cuda.is_available():
                torch.cuda.set_device(self.local_rank)
            self.ensure_group()
            self.rank = dist.get_rank()

    @property
    def backend(self) -> str:
        return "nccl" if torch.cuda.is_available() else "gloo"

    @property
    def device(self) -> str:
        """Where this rank trains: its own GPU, else the CPU."""
        return f"cuda:{self.local_rank}" if torch.cuda.is_available() else "cpu"

    def ensure_group(self) -> None:
        """Join the process group, or join it again after a data-parallel run's trainer closed it."""
        if self.world > 1 and not dist.is_initialized():
            seconds = float(os.environ.get("CONVZOO_DIST_TIMEOUT_S", 300))
            dist.init_process_group(backend=self.backend, timeout=datetime.timedelta(seconds=seconds))

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()

    # --- the store ------------------------------------------------------------------------------------------

    def _store(self) -> dist.Store:
        self.ensure_group()
        return dist.PrefixStore("convzoo-study", dist.distributed_c10d._get_default_store())

    def _key(self, name: str) -> str:
        """A key no earlier call of this launch used (every rank makes the same calls in the same order)."""
        self._keys += 1
        return f"{name}/{self._keys}"

    def counter(self) -> Iterator[int]:
        """0, 1, 2, ... shared by all ranks: each number is handed to exactly one rank."""
        key = self._key("next-run")
        index = 0
        while True:
            if self.world == 1:
                yield index
                index += 1
            else:
                yield self._store().add(key, 1) - 1

    def wait_for_all(self, name: str, poll_s: float = 0.2) -> None:
        """Return once every rank has reached this point, sleeping meanwhile (no collective, so no timeout)."""
        if self.world == 1:
            return
        key = self._key(name)
        self._store().add(key, 1)
        while self._store().add(key, 0) < self.world:
            time.sleep(poll_s)

    def on_rank0_alone(self, name: str, work: Callable[[], T]) -> T | None:
        """Rank 0 runs ``work()`` and returns its value while the other ranks wait on the store, idle (``None``)."""
        if self.world == 1:
            return work()
        key = self._key(name)
        if self.rank != 0:
            self._store().wait([key], WAIT_FOREVER)
            return None
        try:
            return work()
        finally:
            self._store().set(key, "done")

    # --- objects --------------------------------------------------------------------------------------------

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        if self.world == 1:
            return value
        box = [value if self.rank == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def gather(self, value: Any) -> list[Any] | None:
        """Every rank's ``value`` in rank order, on rank 0 (``None`` on the others)."""
        if self.world == 1:
            return [value]
        gathered = [None] * self.world if self.rank == 0 else None
        dist.gather_object(value, gathered, dst=0)
        return gathered
