"""A fresh accelerate state for each training run started in this process."""

from __future__ import annotations

import torch


def reset_accelerate_state() -> None:
    """accelerate keeps its state in a process-wide singleton: without a reset, a second run in the
    same process (a notebook, the tests) could not use other settings (mixed precision, cpu).
    Left alone under a launcher, where the process group belongs to the whole job."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
