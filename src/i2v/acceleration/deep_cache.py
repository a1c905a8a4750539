"""DeepCache (Ma et al., CVPR 2024) as diffusers hooks, for the U-Net video pipelines (SVD, AnimateDiff).

A U-Net's deep features change little from one denoising step to the next; its shallow,
high-resolution branch carries the detail. On a full step everything runs and the input of the
last up block (the deep branch's output) is kept. On a cached step only the shallow branch runs:
``conv_in``, the first down block (without its downsampler), the last up block, fed the kept
feature, and ``conv_out``. The deep blocks return zero placeholders shaped like their outputs.

Full steps: the first call, every ``every``-th call, and every step outside the open
``timestep_range`` on the 1000 -> 0 progress scale of ``i2v.acceleration.StepClock``; by default
(0, 1000), so only the first and the last step of the schedule are held full (as in the paper's
uniform schedule).

It combines with ``i2v.acceleration.cfg_cache``: when that hook halves the batch to the conditional
half, the conditional half of the kept feature is used (the batch is [uncond; cond], batch-major,
frames flattened into it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers.hooks import HookRegistry, ModelHook

from ..errors import InvalidRequestError

HOOK_NAME = "i2v_deep_cache"


class _Shared:
    """What the U-Net hook decides for one call, read by the block hooks."""

    def __init__(self):
        self.skip = False
        self.feature: torch.Tensor | None = None  # input of the last up block at the last full step, (B*F, C, h, w)
        self.batch: int | None = None  # the U-Net's batch at that step


class DeepCacheHook(ModelHook):
    """On the U-Net itself: picks full or cached for each call."""

    _is_stateful = True

    def __init__(self, shared: _Shared, clock: Callable[[], float], every: int = 2,
                 timestep_range: tuple[float, float] = (0, 1000)):
        super().__init__()
        self.shared, self.clock, self.every, self.timestep_range = shared, clock, every, timestep_range
        self.calls = 0

    def initialize_hook(self, module):
        return module

    def reset_state(self, module):
        self.calls, self.shared.feature, self.shared.batch, self.shared.skip = 0, None, None, False
        return module

    def new_forward(self, module, *args, **kwargs):
        batch = (args[0] if args else kwargs["sample"]).shape[0]
        lo, hi = self.timestep_range
        shared = self.shared
        # the kept feature serves this batch, or this batch is its conditional half (cfg cache)
        fits = shared.feature is not None and shared.batch in (batch, 2 * batch)
        shared.skip = fits and self.calls % self.every != 0 and lo < self.clock() < hi
        if not shared.skip:
            shared.batch = batch  # the feature this call keeps is for this batch
        self.calls += 1
        try:
            return self.fn_ref.original_forward(*args, **kwargs)
        finally:
            shared.skip = False


class _DeepBlockHook(ModelHook):
    """On a deep block: on cached steps, return zeros shaped like the block's output at the last full
    step (a broadcast view: no memory, no compute). Only their shapes are ever used: a ControlNet's
    residuals (SparseCtrl) are added to the skip connections before the blocks that ignore them."""

    def __init__(self, shared: _Shared):
        super().__init__()
        self.shared = shared
        self.rows: int | None = None  # input rows (batch x frames) at the last full step
        self.shapes = None  # the output's shapes then: a shape, or (shape, [shapes of the skip connections])

    def new_forward(self, module, *args, **kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        if not self.shared.skip:
            out = self.fn_ref.original_forward(*args, **kwargs)
            self.rows = hidden.shape[0]
            self.shapes = out.shape if isinstance(out, torch.Tensor) else (out[0].shape, [r.shape for r in out[1]])
            return out
        zero = hidden.new_zeros(())

        def like(shape):  # rows scale with the batch (the CFG cache halves it)
            return zero.expand(shape[0] * hidden.shape[0] // self.rows, *shape[1:])

        if isinstance(self.shapes, torch.Size):
            return like(self.shapes)
        return like(self.shapes[0]), tuple(like(r) for r in self.shapes[1])


class _LastUpBlockHook(ModelHook):
    """On the last up block: keeps its input on full steps, substitutes it on cached ones."""

    def __init__(self, shared: _Shared):
        super().__init__()
        self.shared = shared

    def new_forward(self, module, *args, **kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        shared = self.shared
        if shared.skip:
            feature = shared.feature
            if feature.shape[0] == 2 * hidden.shape[0]:  # the cfg cache runs the conditional half
                feature = feature[hidden.shape[0]:]
            hidden = feature
        else:
            shared.feature = hidden
        if args:
            args = (hidden, *args[1:])
        else:
            kwargs["hidden_states"] = hidden
        return self.fn_ref.original_forward(*args, **kwargs)


def apply_deep_cache(unet, clock: Callable[[], float], every: int = 2) -> None:
    """Register DeepCache on a diffusers U-Net (``down_blocks``, ``mid_block``, ``up_blocks``)."""
    blocks = [getattr(unet, name, None) for name in ("down_blocks", "mid_block", "up_blocks")]
    if any(b is None for b in blocks) or len(unet.down_blocks) < 2 or len(unet.up_blocks) < 2:
        raise InvalidRequestError(f"cache 'deepcache' needs a U-Net with down, mid and up blocks; "
                                  f"{type(unet).__name__} has none")
    shared = _Shared()

    def hook(module, h, name=HOOK_NAME):
        HookRegistry.check_if_exists_or_initialize(module).register_hook(h, name)

    for block in unet.down_blocks[1:]:
        hook(block, _DeepBlockHook(shared))
    for sampler in getattr(unet.down_blocks[0], "downsamplers", None) or ():
        hook(sampler, _DeepBlockHook(shared))  # feeds only the deep branch
    hook(unet.mid_block, _DeepBlockHook(shared))
    for block in unet.up_blocks[:-1]:
        hook(block, _DeepBlockHook(shared))
    hook(unet.up_blocks[-1], _LastUpBlockHook(shared))
    hook(unet, DeepCacheHook(shared, clock, every))
