"""Speed and memory switches for the diffusers backends, and the ``--speed`` / ``--memory`` profiles.

Every switch is diffusers' (or PyTorch's) own mechanism, applied to a loaded pipeline:

=================  ===============================================================  ==========================
switch             what it does                                                      trade-off
=================  ===============================================================  ==========================
``cache="pab"``    Pyramid Attention Broadcast: re-uses attention outputs for a       faster; output drifts a
                   few steps (spatial every 2nd, temporal 3rd, cross 5th step)        little
                   in the middle of the schedule
``"deepcache"``    DeepCache (U-Nets): on 2 of every 3 steps in the middle of the      faster; the deep features
                   schedule only the shallow branch runs (conv_in, first down block,  lag up to 2 steps
                   last up block) on the deep features kept from the last full step   (``cache_interval``)
``"fbcache"``      First Block Cache: skips the remaining blocks while the first      adaptive; transformers
                   block's residual barely changes (threshold 0.05)                   only
``"fastercache"``  FasterCache: attention re-use + skipping the unconditional         transformers with CFG
                   branch on some steps
``"taylorseer"``   TaylorSeer: predicts block outputs from their recent history        transformers only
                   (a full step every ``cache_interval``, default 3)
``"magcache"``     MagCache: skips the blocks while a per-model calibrated curve of   needs ``i2v calibrate-
                   residual magnitude ratios predicts a small accumulated error       cache`` once per model
``cfg_cache``      FasterCache's CFG-Cache for U-Net pipelines that batch [uncond,     ~halves the U-Net cost of
                   cond]: all but 1 in N steps of the middle of the schedule run only  the skipped steps; the
                   the conditional half and re-use the last (cond - uncond)           guidance difference lags
                   difference; combines with ``deepcache``                            up to N-1 steps
``compile``        ``torch.compile`` of the repeated blocks (one compiled block,       pays off on GPUs; on CPU
                   re-used), else of the whole denoiser                               compiling takes long
``fp8_storage``    layerwise casting: weights stored as float8_e4m3fn, cast to the    ~half the weight memory
                   compute dtype per layer as it runs                                 of bf16; tiny drift
``quantize``       quantized loading of the denoiser: ``torchao-int8`` (int8           needs torchao (extra
                   weight-only, CPU and GPU), ``bnb-8bit``, ``bnb-4bit``              "quant") or bitsandbytes
``forward_chunk``  feed-forward layers run in chunks (``enable_forward_chunking``)    less memory, a bit slower
=================  ===============================================================  ==========================

Profiles fill the switches a user did not set: ``speed`` = the family's cache (on U-Nets
DeepCache plus the CFG cache, both running 1 full step in 3), compile on CUDA and native bf16
on CPUs that have it; ``memory`` = group offload with CUDA streams and fp8 storage on GPUs,
native bf16 on CPUs that have it, VAE tiling + slicing, chunked feed-forward and small decode
chunks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from ..devices import cpu_has_fast_bf16
from ..errors import InvalidRequestError

if TYPE_CHECKING:
    from ..backends.base import Family

CACHES = ("deepcache", "pab", "fbcache", "fastercache", "taylorseer", "magcache")
INTERVAL_CACHES = ("deepcache", "taylorseer")  # the caches that take ``cache_interval``
DEFAULT_CACHE_INTERVAL = 3
TAYLORSEER_ATTENTION = r"^(blocks|transformer_blocks|single_transformer_blocks|temporal_transformer_blocks)\.\d+\.attn\d*$"
QUANTIZERS = {  # name -> (diffusers quantization config class, its kwargs, the package it needs)
    "torchao-int8": ("TorchAoConfig", {"quant_type": "Int8WeightOnlyConfig"}, "torchao"),
    "bnb-8bit": ("BitsAndBytesConfig", {"load_in_8bit": True}, "bitsandbytes"),
    "bnb-4bit": ("BitsAndBytesConfig", {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}, "bitsandbytes"),
}
PROFILES = ("speed", "memory")
# Which caches run on a family, its --speed cache, its denoiser kind (U-Nets have no "transformer
# blocks" for the block caches; they get DeepCache, with the CFG cache on top) and whether it batches
# guidance are declared by its backend's ``Family`` (i2v.backends.base).
# Attention layer names (regular expressions) in diffusers' UNets: spatial self-attention,
# temporal (motion) self-attention and cross-attention.
UNET_ATTENTION = {
    "spatial": (r"(?<!temporal_)transformer_blocks\.\d+\.attn1$",),
    "temporal": (r"temporal_transformer_blocks\.\d+\.attn1$", r"motion_modules\.\d+\.transformer_blocks\.\d+\.attn\d$"),
    "cross": (r"(?<!temporal_)transformer_blocks\.\d+\.attn2$",),
}


@dataclass
class Acceleration:
    """The switches for one loaded model (unset = off)."""

    cache: str | None = None
    cache_interval: int | None = None  # deepcache / taylorseer: one full step in every N (None: 3)
    cfg_cache: int = 0  # 0: off; N >= 2: one full step in every N within the cached range (True means 2)
    compile: bool = False
    fp8_storage: bool = False
    quantize: str | None = None
    forward_chunk: bool = False
    decode_chunk_size: int | None = None  # SVD: frames decoded at once when the request sets none
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.cfg_cache, bool):  # True: the default interval
            self.cfg_cache = 2 if self.cfg_cache else 0

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "notes"}


def check_acceleration(acc: Acceleration, family: Family | None = None) -> Acceleration:
    """Refuse unknown names, and switches the model family cannot run, before any weights are read."""
    if acc.cache is not None and acc.cache not in CACHES:
        raise InvalidRequestError(f"unknown cache {acc.cache!r}; expected one of {', '.join(CACHES)}")
    if family is not None and acc.cache == "fastercache" and not family.batched_guidance:
        raise InvalidRequestError(f"cache 'fastercache' skips the unconditional half of a batched CFG forward, but "
                                  f"{family.name} runs its guidance passes separately; use one of "
                                  f"{', '.join(family.caches)}")
    if family is not None and acc.cache is not None and acc.cache not in family.caches:
        raise InvalidRequestError(f"cache {acc.cache!r} does not run on {family.name} models; use one of "
                                  f"{', '.join(family.caches)}")
    if not isinstance(acc.cfg_cache, int) or acc.cfg_cache < 0 or acc.cfg_cache == 1:
        raise InvalidRequestError(f"cfg_cache must be 0 (off) or an interval >= 2 (one full step in N), "
                                  f"got {acc.cfg_cache!r}")
    if acc.cache_interval is not None:
        if acc.cache not in INTERVAL_CACHES:
            raise InvalidRequestError(f"cache_interval applies to the caches {', '.join(INTERVAL_CACHES)}, "
                                      f"not to {acc.cache!r}")
        if not isinstance(acc.cache_interval, int) or isinstance(acc.cache_interval, bool) or acc.cache_interval < 2:
            raise InvalidRequestError(f"cache_interval must be an integer >= 2 (one full step in N), "
                                      f"got {acc.cache_interval!r}")
    if acc.cache == "pab" and acc.cfg_cache:
        raise InvalidRequestError("cache 'pab' and cfg_cache cannot be combined: the attention outputs PAB "
                                  "caches have the batch size the CFG cache changes; use cache 'deepcache'")
    if acc.quantize is not None:
        if acc.quantize not in QUANTIZERS:
            raise InvalidRequestError(f"unknown quantization {acc.quantize!r}; expected one of {', '.join(QUANTIZERS)}")
        package = QUANTIZERS[acc.quantize][2]
        import importlib.util

        if importlib.util.find_spec(package) is None:
            raise InvalidRequestError(f"quantize={acc.quantize!r} needs the {package!r} package; "
                                      f"`pip install {package}`")
    return acc


def check_profile(profile: str | None) -> str | None:
    if profile is not None and profile not in PROFILES:
        raise InvalidRequestError(f"unknown profile {profile!r}; expected one of {', '.join(PROFILES)}")
    return profile


def profile_acceleration(profile: str | None, family: Family, device: str,
                         acc: Acceleration) -> tuple[Acceleration, dict]:
    """Fill the switches ``acc`` leaves unset from a profile. Returns (switches, backend options),
    where the options are the profile's choices among the backend's own flags (offload, VAE, dtype)."""
    if check_profile(profile) is None:
        return acc, {}
    cuda = device.startswith("cuda")
    if profile == "speed":
        cache = acc.cache or family.speed_cache
        acc = replace(acc, cache=cache, compile=acc.compile or cuda,
                      # on U-Nets the CFG cache rides along with DeepCache (not with PAB: they cannot be combined)
                      cfg_cache=acc.cfg_cache or (DEFAULT_CACHE_INTERVAL if family.denoiser == "unet"
                                                  and cache == "deepcache" else 0))
        options = {"dtype": "bf16"} if device.startswith("cpu") and cpu_has_fast_bf16() else {}
        if not cuda:
            acc.notes.append("speed profile on CPU: no torch.compile (compiling costs more than it saves here)")
        return acc, options
    acc = replace(acc, fp8_storage=acc.fp8_storage or cuda, forward_chunk=True, decode_chunk_size=acc.decode_chunk_size or 2)
    options = {"vae_tiling": True, "vae_slicing": True}
    if cuda:
        options["offload"] = "group"
    elif device.startswith("cpu") and cpu_has_fast_bf16():
        options["dtype"] = "bf16"  # half the weights and activations, and no slower here
    return acc, options


def quantization_config(acc: Acceleration, denoiser: str):
    """diffusers' ``PipelineQuantizationConfig`` for ``from_pretrained``, quantizing the denoiser only."""
    if acc.quantize is None:
        return None
    import diffusers
    from diffusers.quantizers import PipelineQuantizationConfig

    class_name, kwargs, _ = QUANTIZERS[acc.quantize]
    if class_name == "TorchAoConfig":  # torchao's own config object (diffusers no longer takes a string)
        import torchao.quantization

        kwargs = {"quant_type": getattr(torchao.quantization, kwargs["quant_type"])()}
    return PipelineQuantizationConfig(quant_mapping={denoiser: getattr(diffusers, class_name)(**kwargs)})


def denoiser_of(pipe) -> tuple[str, Any]:
    for name in ("transformer", "unet"):
        module = getattr(pipe, name, None)
        if module is not None:
            return name, module
    raise InvalidRequestError(f"{type(pipe).__name__} has no transformer or unet to accelerate")


class StepClock:
    """A timestep for the caching hooks that reads the same on every scheduler: 1000 at the first
    denoising step, falling linearly to 0 at the last. It records the timestep each denoiser call
    gets (a forward pre-hook) and finds it in ``pipe.scheduler.timesteps``."""

    def __init__(self, pipe, denoiser):
        self.pipe, self.t = pipe, None
        denoiser.register_forward_pre_hook(self._record, with_kwargs=True)

    def _record(self, module, args, kwargs) -> None:
        t = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        self.t = None if t is None else float(t.flatten()[0]) if hasattr(t, "flatten") else float(t)

    def __call__(self) -> float:
        timesteps = getattr(self.pipe.scheduler, "timesteps", None)
        if self.t is None or timesteps is None or len(timesteps) < 2:
            return 1000.0
        index = int((timesteps.float() - self.t).abs().argmin())
        return 1000.0 * (1 - index / (len(timesteps) - 1))


def cache_config(name: str, clock: StepClock, unet: bool, interval: int = DEFAULT_CACHE_INTERVAL):
    from diffusers import hooks

    if name == "pab":
        ids = {f"{kind}_attention_block_identifiers": UNET_ATTENTION[kind] for kind in UNET_ATTENTION} if unet else {}
        return hooks.PyramidAttentionBroadcastConfig(
            spatial_attention_block_skip_range=2, temporal_attention_block_skip_range=3,
            cross_attention_block_skip_range=5, spatial_attention_timestep_skip_range=(100, 900),
            temporal_attention_timestep_skip_range=(100, 900), cross_attention_timestep_skip_range=(100, 900),
            current_timestep_callback=clock, **ids)
    if name == "fbcache":
        return hooks.FirstBlockCacheConfig(threshold=0.05)
    if name == "fastercache":
        return hooks.FasterCacheConfig(
            spatial_attention_block_skip_range=2, spatial_attention_timestep_skip_range=(-1, 681),
            unconditional_batch_skip_range=5, unconditional_batch_timestep_skip_range=(-1, 781),
            current_timestep_callback=clock, attention_weight_callback=lambda _: 0.3, is_guidance_distilled=False)
    # the attention layers of every block ("blocks.3.attn1"): diffusers' default patterns ("^blocks.*attn",
    # fully matched) miss the numbered attn1/attn2 names of Wan's and LTX's blocks, and then hook nothing
    return hooks.TaylorSeerCacheConfig(cache_interval=interval, disable_cache_before_step=3,
                                       cache_identifiers=[TAYLORSEER_ATTENTION])


def apply_acceleration(pipe, acc: Acceleration, device: str, mag_ratios: list[float] | None = None) -> list[str]:
    """Apply the switches to a loaded pipeline (before it is placed or offloaded); returns notes.
    ``mag_ratios``: the model's calibrated MagCache curve (``mag_cache.load_ratios``)."""
    notes = list(acc.notes)
    name, denoiser = denoiser_of(pipe)
    # one progress clock for every caching hook (each clock adds a forward pre-hook to the denoiser)
    clock = StepClock(pipe, denoiser) if acc.cache or acc.cfg_cache else None
    if acc.cache:
        unet = name == "unet"
        if unet and acc.cache not in ("pab", "deepcache"):
            raise InvalidRequestError(f"cache {acc.cache!r} needs a transformer denoiser; {type(denoiser).__name__} "
                                      "is a U-Net: use cache 'deepcache' or 'pab'")
        if not unet and acc.cache == "deepcache":
            raise InvalidRequestError(f"cache 'deepcache' needs a U-Net; {type(denoiser).__name__} is a transformer: "
                                      "use one of its block caches (fbcache, taylorseer, pab)")
        interval = acc.cache_interval or DEFAULT_CACHE_INTERVAL
        try:
            if acc.cache == "deepcache":
                from .deep_cache import apply_deep_cache

                apply_deep_cache(denoiser, clock, every=interval)
            elif acc.cache == "magcache":
                from .mag_cache import mag_cache_config

                if not mag_ratios:
                    raise InvalidRequestError("cache 'magcache' needs the model's calibrated ratios")
                config = mag_cache_config(mag_ratios, len(mag_ratios))
                denoiser.enable_cache(config)
                pipe._i2v_mag_cache = (config, list(mag_ratios))  # its step count follows each run
            elif unet:
                from diffusers.hooks import apply_pyramid_attention_broadcast

                apply_pyramid_attention_broadcast(denoiser, cache_config(acc.cache, clock, unet, interval))
            else:
                denoiser.enable_cache(cache_config(acc.cache, clock, unet, interval))
        except (ValueError, TypeError, AttributeError) as exc:
            raise InvalidRequestError(f"cache {acc.cache!r} is not supported by {type(denoiser).__name__}: {exc}") from exc
        notes.append(f"cache {acc.cache} on the {name}"
                     + (f", a full step every {interval}" if acc.cache in INTERVAL_CACHES else ""))
    if acc.cfg_cache:
        if name != "unet":
            raise InvalidRequestError(f"cfg_cache is for U-Net pipelines that batch classifier-free guidance; "
                                      f"{type(denoiser).__name__} is a transformer: use cache 'fastercache'")
        from diffusers.hooks import HookRegistry

        from .cfg_cache import CFGCacheHook

        HookRegistry.check_if_exists_or_initialize(denoiser).register_hook(
            CFGCacheHook(clock, every=acc.cfg_cache), "i2v_cfg_cache")
        notes.append(f"CFG cache on the unet: in the middle 80% of the steps, {acc.cfg_cache - 1} of every "
                     f"{acc.cfg_cache} run the conditional half only")
    if acc.forward_chunk:
        if hasattr(denoiser, "enable_forward_chunking"):
            denoiser.enable_forward_chunking(chunk_size=1, dim=1)
            notes.append("feed-forward chunking on")
        else:
            notes.append(f"{type(denoiser).__name__} has no feed-forward chunking; skipped")
    if acc.fp8_storage:
        import torch

        denoiser.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=denoiser.dtype)
        notes.append(f"{name} weights stored as float8_e4m3fn, computed in {str(denoiser.dtype).removeprefix('torch.')}")
    if acc.compile:
        if getattr(denoiser, "_repeated_blocks", None):
            denoiser.compile_repeated_blocks(fullgraph=False)
            notes.append(f"torch.compile of the repeated {', '.join(denoiser._repeated_blocks)} blocks")
        else:
            denoiser.compile()
            notes.append(f"torch.compile of the whole {name}")
    return notes


def reset_caches(pipe, num_inference_steps: int | None = None) -> None:
    """Forget every caching hook's state (call before a new generation of ``num_inference_steps``)."""
    from diffusers.hooks import HookRegistry

    if num_inference_steps is not None and getattr(pipe, "_i2v_mag_cache", None):
        from .mag_cache import set_steps

        set_steps(*pipe._i2v_mag_cache, num_inference_steps)
    _, denoiser = denoiser_of(pipe)
    if hasattr(denoiser, "_diffusers_hook"):
        HookRegistry.check_if_exists_or_initialize(denoiser).reset_stateful_hooks(recurse=True)
