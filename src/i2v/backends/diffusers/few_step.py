"""Few-step (step- and guidance-distilled) LoRAs: when one is loaded, the run takes its defaults.

A distillation LoRA (lightx2v, Wan 2.2 Lightning, CausVid ...) turns a 40-50 step model with
classifier-free guidance into a 4-step model without it, trained at fixed noise levels: Euler steps
of the flow at shift 5 (timesteps 1000, 937.5, 833.3, 625). Run at the base model's 50 steps and
guidance 5 it gives over-saturated mush, which is users' most common complaint about them. So a run
with one switches its unset settings to the LoRA's (steps, guidance 1, shift, and a first-order
DPM-Solver on the model's flow sigmas, which is exactly that Euler schedule) and says so; explicit
--num-inference-steps / --guidance-scale / --scheduler still win.

A LoRA is recognised by a family's preset name (``--lora lightx2v-wan2.1-i2v``) or by its file name
(``lightx2v``, ``lightning``, ``step_distill``, ``causvid``, ``4steps`` ...). diffusers remaps their
key layouts (``diffusion_model.blocks.N.self_attn.q.lora_down`` / ``lora_A`` with ``alpha``) itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from ...lora import split_target

# first-order DPM-Solver on Wan's flow sigmas: Euler steps at linspace(1, 0, steps + 1), shifted
EULER = "DPMSolverMultistepScheduler"
EULER_CONFIG = (("solver_order", 1),)


@dataclass(frozen=True)
class FewStepLora:
    name: str  # the --lora alias
    description: str
    sources: tuple[str, ...]  # hub files ("org/name/path.safetensors"); a two-expert pair is (high, transformer_2:low)
    models: tuple[str, ...]  # registered models it was distilled from
    steps: int = 4
    guidance_scale: float = 1.0
    shift: float = 5.0
    scheduler: str = EULER
    scheduler_config: tuple[tuple[str, object], ...] = EULER_CONFIG  # on top of the model's own config


# file names that say "distilled" (and how many steps, when they say it)
_DISTILLED_NAME = re.compile(r"lightx2v|lightning|step[-_]?distill|cfg[-_]?distill|causvid|self[-_]?forcing|"
                             r"fastwan|accvideo|\d+[-_]?steps?\b|\d+steps", re.IGNORECASE)
_STEPS = re.compile(r"(\d+)[-_]?steps?", re.IGNORECASE)


def recognise(entries: list[tuple[str, float]], requested: list[str], presets: tuple[FewStepLora, ...]
              ) -> tuple[FewStepLora, str] | None:
    """The few-step preset a run's LoRAs call for, and how it was recognised; None for none.

    ``requested``: the names the user wrote (aliases), ``entries``: the checked (source, scale) pairs."""
    for preset in presets:
        if preset.name in requested:
            return preset, f"--lora {preset.name}"
    for source, scale in entries:
        name = PurePosixPath(split_target(source)[0]).name
        if scale != 0 and _DISTILLED_NAME.search(name):
            steps = _STEPS.search(name)
            count = int(steps.group(1)) if steps and 1 <= int(steps.group(1)) <= 16 else 4
            return (FewStepLora(name=name, description="recognised by its file name", sources=(source,), models=(),
                                steps=count), f"the file name {name}")
    return None
