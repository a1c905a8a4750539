"""Memory planning: estimate one generation's peak memory from configs, and pick options so it fits.

    plan = plan_memory("svd-xt", {"num_frames": 25, "height": 576, "width": 1024}, device="cuda")
    print(plan.describe())        # the estimate, the options chosen, whether it fits
    plan.options                  # e.g. {"decode_chunk_size": 4, "offload": "model"}

Nothing here loads weights: the weight bytes come from the safetensors headers
(``backends.diffusers.loading``) and the activation sizes from the components' ``config.json``.
The estimate is deliberately simple (a few named factors, each commented below): it is meant to
pick between "fits", "needs VAE tiling / smaller decode chunks" and "needs offloading", not to
predict the allocator to the megabyte. The caller's safety margin absorbs the rest.

The peak of one generation is ``weights on the device + max(denoiser activations, VAE decode)``:
the denoising loop and the decode run one after the other, and the latents between them are small.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from .devices import device_free_bytes
from .errors import InvalidRequestError, MemoryLimitError, UnknownModelError
from .registry import backend_class, resolve_model
from .types import ModelSpec, ResolvedSettings

__all__ = ["InvalidRequestError", "MemoryEstimate", "MemoryPlan", "UnknownModelError", "device_free_bytes",
           "estimate_memory", "plan_memory"]

MiB, GiB = 2**20, 2**30
DEFAULT_SAFETY_MARGIN = 0.1  # plan against 90% of the free memory
OPTION_NAMES = ("offload", "vae_tiling", "vae_slicing", "decode_chunk_size")
OFFLOAD_LADDER = ("model", "group", "sequential")  # each slower than the one before, and smaller

# Denoiser working buffers, in multiples of one hidden state (tokens x channels):
# - a U-Net keeps the skip activation of every level alive for its up path and, at the level it is
#   working on, a few more (GroupNorm output, conv output, q/k/v/out of its attention, FFN hidden).
#   Calibrated on the embedded model (13 MiB measured vs 13 MiB estimated at 16x128x128).
UNET_WORKING_WIDTHS = 6
# - a transformer block holds the residual stream, its norm, q, k, v and the attention output
#   (6 widths); its feed-forward holds the residual, the norm and the hidden layer before and after
#   the activation (2 + 2 * ffn_ratio widths). The N x N attention scores are never materialised:
#   diffusers calls torch's scaled_dot_product_attention, whose fused kernels (flash / memory
#   efficient, on CUDA and on CPU) work in O(tokens x head_dim), i.e. inside the q/k/v/out widths.
ATTENTION_WIDTHS = 6
DEFAULT_FFN_RATIO = 4.0
# VAE decoder: a ResNet block holds its input (the skip), the normalised/activated copy and the conv
# output at the widest (channels x pixels) stage. Calibrated on the embedded model's decoder
# (104 MiB measured vs 104 MiB estimated for 16 frames at 128x128).
DECODE_WORKING_WIDTHS = 3



# ---------------------------------------------------------------------------------------------
# Free memory
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------


@dataclass
class MemoryEstimate:
    """Peak memory of one generation on its device, in bytes (``None``: unknown, configs missing)."""

    weights: int | None  # weight bytes on the device at the peak (all of them, or what offloading keeps)
    denoiser_activations: int | None
    decode: int | None
    total: int | None  # weights + max(denoiser_activations, decode)
    components: dict[str, int] = field(default_factory=dict)  # every component's weights at its load dtype
    details: dict = field(default_factory=dict)  # latent shape, tokens, batch, frames decoded at once
    options: dict = field(default_factory=dict)  # the options this estimate assumes
    notes: list[str] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return self.total is not None

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class MemoryPlan:
    """An estimate before and after the chosen options, against the device's free memory."""

    model: str
    device: str
    dtype: str
    settings: dict  # num_frames, height, width, guidance_scale, decode_chunk_size
    before: MemoryEstimate
    after: MemoryEstimate
    free_bytes: int
    safety_margin: float
    options: dict  # only what changes: offload / vae_tiling / vae_slicing / decode_chunk_size
    fits: bool | None  # None: cannot tell (the model's configs are not available locally)
    notes: list[str] = field(default_factory=list)

    @property
    def budget_bytes(self) -> int:  # what the plan must fit in
        return int(self.free_bytes * (1 - self.safety_margin))

    def as_dict(self) -> dict:
        return {**asdict(self), "budget_bytes": self.budget_bytes}

    def describe(self) -> str:
        s = self.settings
        fits = {True: "yes", False: "NO", None: "unknown"}[self.fits]
        rows = [
            ("weights on device", self.before.weights, self.after.weights),
            ("denoiser activations", self.before.denoiser_activations, self.after.denoiser_activations),
            ("VAE decode", self.before.decode, self.after.decode),
            ("peak (estimate)", self.before.total, self.after.total),
        ]
        title = (f"memory plan: {self.model} on {self.device} ({self.dtype}), {s['num_frames']} frames "
                 f"{s['width']}x{s['height']}, guidance {s['guidance_scale']:g}")
        lines = [title, f"  {'':<22}{'as requested':>14}{'with plan':>14}"]
        lines += [f"  {name:<22}{format_bytes(a):>14}{format_bytes(b):>14}" for name, a, b in rows]
        if self.before.components:
            parts = ", ".join(f"{k} {format_bytes(v)}" for k, v in self.before.components.items())
            lines.append(f"  components: {parts}")
        if self.after.details:
            lines.append(f"  shapes: {describe_details(self.after.details)}")
        lines.append(f"  free {format_bytes(self.free_bytes)}, budget {format_bytes(self.budget_bytes)} "
                     f"({self.safety_margin:.0%} safety margin)")
        chosen = ", ".join(f"{k}={v}" for k, v in self.options.items()) or "none needed"
        lines.append(f"  options: {chosen}")
        lines.append(f"  fits: {fits}")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def format_bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    if n >= GiB:
        return f"{n / GiB:.2f} GiB"
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / 1024:.1f} KiB"


def describe_details(d: dict) -> str:
    c, f, h, w = d["latent"]
    window = d.get("denoised_latent_frames", f)
    windowed = f" (windows of {window} latent frames)" if window != f else ""
    return (f"latents {c}x{f}x{h}x{w}, {d['denoiser']} batch {d['batch']} over {d['tokens']} tokens{windowed}; "
            f"decode {d['decode_frames']} frame(s) of {d['decode_pixels']} px at once")


# ---------------------------------------------------------------------------------------------
# Inputs: settings and the model's configs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameSettings:
    """The request fields that size a generation."""

    num_frames: int
    height: int
    width: int
    guidance_scale: float
    decode_chunk_size: int | None  # SVD: frames decoded at once
    # a windowed long video: (frames of one window, latent frames of context beside it)
    denoise_window: tuple[int, int] | None = None


def frame_settings(spec: ModelSpec, settings: ResolvedSettings | Mapping | None) -> FrameSettings:
    """Sizes from resolved settings (or a mapping of the same names); unset ones from the model's defaults."""
    d = spec.defaults
    if isinstance(settings, ResolvedSettings):
        values = {**settings.extras, **asdict(settings)}
    else:
        values = dict(settings or {})
    unknown = set(values) - {"num_frames", "height", "width", "guidance_scale", "decode_chunk_size"}
    if not isinstance(settings, ResolvedSettings) and unknown:
        raise InvalidRequestError(f"unknown settings {sorted(unknown)}; expected num_frames, height, width, "
                                  "guidance_scale, decode_chunk_size")

    def pick(key: str, default):
        return default if values.get(key) is None else values[key]

    frames = _positive("num_frames", pick("num_frames", d.num_frames))
    chunk = pick("decode_chunk_size", spec.extras.get("decode_chunk_size"))
    guidance = pick("guidance_scale", d.guidance_scale)
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 0 <= guidance < math.inf:
        raise InvalidRequestError(f"guidance_scale must be a finite number >= 0, got {guidance!r}")
    window = backend_class(spec.family).family.denoise_window(spec, frames, values)
    return FrameSettings(num_frames=frames, height=_positive("height", pick("height", d.height)),
                         width=_positive("width", pick("width", d.width)), guidance_scale=float(guidance),
                         decode_chunk_size=None if chunk is None else min(_positive("decode_chunk_size", chunk),
                                                                          frames),
                         denoise_window=window)


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"{name} must be a positive integer, got {value!r}")
    return value


@dataclass
class ModelConfigs:
    """What the estimate reads from a model folder: configs and weight sizes, never the weights."""

    family: str
    dtype: str
    vae: dict
    denoiser_name: str
    denoiser: dict
    components: dict[str, int]  # component -> weight bytes at its load dtype
    host_components: tuple[str, ...]  # components that stay in host RAM whatever the device
    largest_tensor: int  # bytes of the largest single weight tensor (what leaf-level offload streams)
    itemsize: Callable[[str], int]  # component -> bytes per value
    notes: list[str] = field(default_factory=list)

    def device_weights(self) -> dict[str, int]:
        return {k: v for k, v in self.components.items() if k not in self.host_components}


def local_folder(source: str) -> Path | None:
    """The model's local folder, or its hub snapshot if already downloaded (never downloads)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(source, local_files_only=True))
    except (ImportError, OSError, ValueError):  # not cached (LocalEntryNotFoundError), not a repo id
        return None


def read_configs(spec: ModelSpec, folder: Path, device: str, dtype: str | None) -> ModelConfigs | None:
    """Configs and weight sizes of a local model folder; None when its vae/denoiser configs are missing."""
    from .backends.diffusers.loading import component_names, read_config, read_model_index

    backend = backend_class(spec.family)
    index = read_model_index(folder)
    names = component_names(index)
    denoiser = next((n for n in ("transformer", "unet") if n in names and read_config(folder, n)), None)
    vae = read_config(folder, "vae") if "vae" in names else {}
    if denoiser is None or not vae:
        return None
    dtype_name, itemsize = backend.load_dtype(spec, device, dtype)
    variant = backend.weights_variant(spec, folder, index, dtype_name)
    parts = [(folder, n, n, index[n]) for n in names]  # (root, sub-folder, component, index entry)
    outside, host, notes = backend.outside_components(spec, device)  # components not loaded from the folder
    parts += outside
    components, largest = {}, 0
    for root, sub, name, entry in parts:
        n, biggest = _component_bytes(root / sub, entry, itemsize(name), variant)
        if n:
            components[name] = n
        if name not in host:
            largest = max(largest, biggest)
    return ModelConfigs(family=spec.family, dtype=dtype_name, vae=vae, denoiser_name=denoiser,
                        denoiser=read_config(folder, denoiser), components=components, host_components=host,
                        largest_tensor=largest, itemsize=itemsize, notes=notes)


def _component_bytes(folder: Path, entry: list, itemsize: int, variant: str | None) -> tuple[int, int]:
    """(all weights, largest tensor) of one component folder in bytes at ``itemsize``, from the headers only."""
    from .backends.diffusers.loading import component_weight_files, safetensors_numels

    numels = [n for f in component_weight_files(folder, variant) for n in safetensors_numels(f)]
    return sum(numels) * itemsize, max(numels, default=0) * itemsize


# ---------------------------------------------------------------------------------------------
# The estimate
# ---------------------------------------------------------------------------------------------


def vae_factors(vae: dict) -> tuple[int, int, int]:
    """(spatial, temporal compression, latent channels) of a VAE config.

    Explicit keys first (Hunyuan/LTX ``*_compression_ratio``, Wan ``scale_factor_*``); else LTX's
    ``patch_size * 2**sum(spatio_temporal_scaling)``; Wan's ``2**len`` / ``2**sum(temperal_downsample)``;
    else the image-VAE rule ``2**(len(block_out_channels) - 1)`` with no temporal compression.
    """
    spatial = vae.get("spatial_compression_ratio") or vae.get("scale_factor_spatial")
    temporal = vae.get("temporal_compression_ratio") or vae.get("scale_factor_temporal")
    if "spatio_temporal_scaling" in vae:  # LTX-Video
        scaling = 2 ** sum(bool(s) for s in vae["spatio_temporal_scaling"])
        spatial = spatial or vae.get("patch_size", 1) * scaling
        temporal = temporal or vae.get("patch_size_t", 1) * scaling
    if "temperal_downsample" in vae:  # Wan (sic, diffusers' spelling)
        spatial = spatial or 2 ** len(vae["temperal_downsample"])
        temporal = temporal or 2 ** sum(bool(s) for s in vae["temperal_downsample"])
    if vae.get("_class_name") == "PatchAutoencoder":  # the embedded photo autoencoder: one latent per patch
        spatial = spatial or vae.get("patch_size", 4)
    spatial = spatial or 2 ** (len(vae.get("block_out_channels", [0, 0, 0, 0])) - 1)
    channels = vae.get("latent_channels") or vae.get("z_dim") or 4
    return int(spatial), int(temporal or 1), int(channels)


def latent_shape(fs: FrameSettings, vae: dict) -> tuple[int, int, int, int]:
    """(channels, frames, height, width) of the latents: a causal video VAE keeps frame 0 and packs
    every ``temporal`` later frames into one, ``(T - 1) // temporal + 1``."""
    spatial, temporal, channels = vae_factors(vae)
    frames = (fs.num_frames - 1) // temporal + 1 if temporal > 1 else fs.num_frames
    return channels, frames, max(1, fs.height // spatial), max(1, fs.width // spatial)


def _patch(cfg: dict) -> tuple[int, int]:
    """(temporal, spatial) patch size of a denoiser config (Wan's ``patch_size`` is ``[t, h, w]``)."""
    p = cfg.get("patch_size") or 1
    if isinstance(p, (list, tuple)):
        return int(p[0]), int(p[1])
    return int(cfg.get("patch_size_t") or 1), int(p)


def denoiser_elements(cfg: dict, frames: int, h: int, w: int) -> tuple[int, int]:
    """(working-buffer elements for one batch item, tokens at the denoiser's input).

    U-Net (``block_out_channels``): level ``l`` holds ``F * ceil(h / (p * 2**l)) * ceil(w / (p * 2**l))``
    tokens of ``C_l`` channels; elements = UNET_WORKING_WIDTHS * sum over levels of tokens_l * C_l.
    Transformer (``num_attention_heads * attention_head_dim = D``): ``N = ceil(F / pt) * ceil(h / p) *
    ceil(w / p)`` (+ text tokens where they join the sequence, CogVideoX's ``max_text_seq_length``);
    elements = N * D * max(ATTENTION_WIDTHS, 2 + 2 * ffn_ratio), ffn_ratio = ffn_dim / D (Wan) or
    mlp_ratio (HunyuanVideo) or 4.
    """
    pt, p = _patch(cfg)
    if cfg.get("block_out_channels"):
        levels = [frames * math.ceil(h / (p * 2**l)) * math.ceil(w / (p * 2**l)) * c
                  for l, c in enumerate(cfg["block_out_channels"])]
        return UNET_WORKING_WIDTHS * sum(levels), frames * math.ceil(h / p) * math.ceil(w / p)
    width = int(cfg.get("num_attention_heads", 0)) * int(cfg.get("attention_head_dim", 0))
    tokens = math.ceil(frames / pt) * math.ceil(h / p) * math.ceil(w / p) + int(cfg.get("max_text_seq_length") or 0)
    ffn_ratio = cfg.get("ffn_dim", 0) / width if cfg.get("ffn_dim") and width else cfg.get("mlp_ratio", DEFAULT_FFN_RATIO)
    return int(tokens * width * max(ATTENTION_WIDTHS, 2 + 2 * ffn_ratio)), tokens


def decoder_channels(vae: dict) -> list[int]:
    """The decoder's channels from its widest (latent) end to its output end."""
    if vae.get("_class_name") == "PatchAutoencoder":  # all at latent resolution, then one pixel shuffle
        return [vae.get("hidden_channels", 64)] + [3] * max(0, round(math.log2(vae.get("patch_size", 4))))
    if vae.get("decoder_block_out_channels"):
        channels = list(vae["decoder_block_out_channels"])
    elif vae.get("block_out_channels"):
        channels = list(vae["block_out_channels"])
    else:  # Wan: base_dim * dim_mult
        base = vae.get("decoder_base_dim") or vae.get("base_dim", 96)
        channels = [base * m for m in vae.get("dim_mult", [1, 2, 4, 4])]
    return channels[::-1]


def decoder_frame_elements(vae: dict, pixels: int) -> int:
    """Elements of the decoder's largest activation for one frame of ``pixels`` pixels.

    Block ``i`` (from the latent end) outputs ``C_i`` channels at ``pixels / 4**max(0, ups - 1 - i)``
    where ``ups = log2(spatial factor)`` up-samplings bring the latents back to full size; the largest
    of these is usually a mid-width block at full or half resolution, not the widest block.
    """
    spatial, _, _ = vae_factors(vae)
    ups = max(0, round(math.log2(spatial)))
    return max(c * pixels // 4 ** max(0, ups - 1 - i) for i, c in enumerate(decoder_channels(vae)))


def offloaded_weights(cfg: ModelConfigs, offload: str | None) -> int:
    """Weight bytes on the device at the peak: all of them; with model offload the largest component
    (diffusers moves one component at a time); with group offload (leaf level, CUDA streams) about two
    leaf layers (the running one and the one prefetched); with sequential offload one leaf layer."""
    weights = cfg.device_weights()
    total = sum(weights.values())
    if offload == "model":
        return max(weights.values(), default=0)
    if offload == "group":
        return min(total, 2 * cfg.largest_tensor)
    if offload == "sequential":
        return min(total, cfg.largest_tensor)
    return total


def estimate_from_configs(cfg: ModelConfigs, fs: FrameSettings, options: dict) -> MemoryEstimate:
    """The estimate for one set of options (already validated)."""
    c, f, h, w = latent_shape(fs, cfg.vae)
    _, temporal, _ = vae_factors(cfg.vae)
    # Denoiser: batch 2 when classifier-free guidance runs [uncond, cond] in one forward
    family = backend_class(cfg.family).family
    batch = 2 if fs.guidance_scale > 1.0 and family.batched_guidance else 1
    denoised = f
    if fs.denoise_window is not None:  # one window of a long video, and the context it sees
        window, context = fs.denoise_window
        denoised = min(f, latent_shape(replace(fs, num_frames=min(window, fs.num_frames)), cfg.vae)[1]) + context
    elements, tokens = denoiser_elements(cfg.denoiser, denoised, h, w)
    denoiser = batch * elements * cfg.itemsize(cfg.denoiser_name)
    # VAE decode: frames at once x the decoder's largest per-frame activation x working widths,
    # plus the decoded video itself (T x 3 x H x W)
    pixels = fs.height * fs.width
    tile = family.tile_pixels(cfg.vae) if options.get("vae_tiling") else None
    decoded_pixels = min(pixels, tile) if tile else pixels
    chunk = options.get("decode_chunk_size", fs.decode_chunk_size)
    frames_at_once = family.decode_frames(fs.num_frames, temporal, bool(options.get("vae_slicing")), chunk)
    vae_item = cfg.itemsize("vae")
    decode = (frames_at_once * decoder_frame_elements(cfg.vae, decoded_pixels) * DECODE_WORKING_WIDTHS
              + fs.num_frames * 3 * pixels) * vae_item
    weights = offloaded_weights(cfg, options.get("offload"))
    details = {"latent": [c, f, h, w], "denoiser": cfg.denoiser_name, "denoised_latent_frames": denoised,
               "batch": batch, "tokens": tokens,
               "decode_frames": frames_at_once, "decode_pixels": decoded_pixels}
    return MemoryEstimate(weights=weights, denoiser_activations=denoiser, decode=decode,
                          total=weights + max(denoiser, decode), components=dict(cfg.components),
                          details=details, options=dict(options), notes=list(cfg.notes))


def unknown_estimate(spec: ModelSpec, options: dict) -> MemoryEstimate:
    note = (f"configs not available locally for {spec.source} (weights unknown): download the model or pass "
            "a local folder for an estimate")
    return MemoryEstimate(weights=None, denoiser_activations=None, decode=None, total=None, options=dict(options),
                          notes=[note])


# ---------------------------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------------------------


def memory_options(spec: ModelSpec) -> frozenset[str]:
    """The memory options the model's family takes (its backend's ``Family.memory_options``)."""
    return backend_class(spec.family).family.memory_options


def check_options(spec: ModelSpec, device: str, options: Mapping | None) -> dict:
    """Validate options by the project's names; drop the unset ones (None / False / "none")."""
    from .backends.diffusers.options import check_offload

    options = dict(options or {})
    unknown = set(options) - set(OPTION_NAMES)
    if unknown:
        raise InvalidRequestError(f"unknown memory options {sorted(unknown)}; expected {', '.join(OPTION_NAMES)}")
    caps = memory_options(spec)
    out = {}
    if options.get("offload") not in (None, "none"):
        if "offload" not in caps:
            raise InvalidRequestError(f"{spec.name} does not take offload")
        mode = check_offload(options["offload"], device)
        if mode == "auto":
            raise InvalidRequestError("offload 'auto' is decided at load time; estimate one of "
                                      f"{', '.join(('none',) + OFFLOAD_LADDER)}")
        out["offload"] = mode
    for key in ("vae_tiling", "vae_slicing"):
        if options.get(key):
            if key not in caps:
                raise InvalidRequestError(f"{spec.name} does not take {key}")
            out[key] = True
    if options.get("decode_chunk_size") is not None:
        if "decode_chunk_size" not in caps:
            raise InvalidRequestError(f"{spec.name} does not take decode_chunk_size")
        out["decode_chunk_size"] = _positive("decode_chunk_size", options["decode_chunk_size"])
    return out


def decode_ladder(spec: ModelSpec, cfg: ModelConfigs, fs: FrameSettings) -> list[dict]:
    """Decode-side options, cheapest first, keeping only those that lower the decode estimate:
    SVD halves ``decode_chunk_size`` down to 1; the others try VAE slicing, then tiling, then both."""
    caps = memory_options(spec)

    def decode(opts: dict) -> int:
        return estimate_from_configs(cfg, fs, opts).decode

    if "decode_chunk_size" in caps:
        chunk, steps = fs.decode_chunk_size or fs.num_frames, []
        while chunk > 1:
            chunk = chunk // 2
            steps.append({"decode_chunk_size": chunk})
        return steps
    base, steps = decode({}), []
    singles = [{k: True} for k in ("vae_slicing", "vae_tiling") if k in caps]
    useful = [o for o in singles if decode(o) < base]
    steps += useful
    if len(useful) == 2 and decode({**useful[0], **useful[1]}) < min(decode(o) for o in useful):
        steps.append({**useful[0], **useful[1]})
    return steps


def candidates(spec: ModelSpec, cfg: ModelConfigs, fs: FrameSettings, device: str) -> list[dict]:
    """Every option set in the order they are tried: nothing; the decode options; then each offload
    mode (model, group, sequential), first alone and then with the decode options. On a CPU every
    weight already lives in RAM, so offloading is never proposed there."""
    decode_steps = decode_ladder(spec, cfg, fs)
    can_offload = "offload" in memory_options(spec) and not device.startswith("cpu")
    offloads = [None] + (list(OFFLOAD_LADDER) if can_offload else [])
    return [{**({"offload": mode} if mode else {}), **step} for mode in offloads for step in [{}] + decode_steps]


# ---------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------


def _spec(model: str | Path | ModelSpec | None) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else resolve_model(model)


def _settings_dtype(settings) -> str | None:
    """The dtype a backend recorded while resolving (``settings.extras["dtype"]``), if any."""
    return settings.extras.get("dtype") if isinstance(settings, ResolvedSettings) else None


_CONFIGS_CACHE: dict[tuple, ModelConfigs] = {}  # every run is checked: read a folder's configs once


def _configs(spec: ModelSpec, device: str, dtype: str | None) -> tuple[str, ModelConfigs | None]:
    folder = local_folder(spec.source)
    index = folder / "model_index.json" if folder is not None else None
    cfg = None
    if index is not None and index.is_file():
        # a file added, removed or replaced (renamed into place) changes its folder's mtime
        stamp = tuple(p.stat().st_mtime_ns for p in [index, *sorted(folder.iterdir())] if p == index or p.is_dir())
        key = (spec.name, spec.family, str(folder), stamp, device, dtype)
        if key not in _CONFIGS_CACHE:
            if len(_CONFIGS_CACHE) > 32:
                _CONFIGS_CACHE.clear()
            _CONFIGS_CACHE[key] = read_configs(spec, folder, device, dtype)
        cfg = _CONFIGS_CACHE[key]
    return (cfg.dtype if cfg else backend_class(spec.family).load_dtype(spec, device, dtype)[0]), cfg


def estimate_memory(model: str | Path | ModelSpec | None, settings: ResolvedSettings | Mapping | None = None, *,
                    device: str = "cpu", dtype: str | None = None, options: Mapping | None = None) -> MemoryEstimate:
    """Peak memory of one generation with ``options`` (offload / vae_tiling / vae_slicing /
    decode_chunk_size), from the model's configs and safetensors headers only.

    ``settings``: the backend's ResolvedSettings, or a mapping with any of num_frames, height, width,
    guidance_scale, decode_chunk_size (unset ones: the model's defaults). Unknown model ->
    UnknownModelError; non-positive sizes or a bad option -> InvalidRequestError. A hub model whose
    configs are not on this machine gives an estimate of unknowns with a note, not an error.
    """
    spec = _spec(model)
    fs = frame_settings(spec, settings)
    opts = check_options(spec, device, options)
    _, cfg = _configs(spec, device, dtype or _settings_dtype(settings))
    return estimate_from_configs(cfg, fs, opts) if cfg else unknown_estimate(spec, opts)


def plan_memory(model: str | Path | ModelSpec | None, settings: ResolvedSettings | Mapping | None = None, *,
                device: str = "cpu", dtype: str | None = None, free_bytes: int | None = None,
                safety_margin: float = DEFAULT_SAFETY_MARGIN) -> MemoryPlan:
    """The cheapest options under which one generation fits in ``free_bytes * (1 - safety_margin)``.

    Tried in order (``candidates``): nothing; VAE slicing / tiling or smaller ``decode_chunk_size``
    (SVD); then offload "model", "group", "sequential" (not on a CPU), each first alone and then
    with the decode options. ``free_bytes`` defaults to what ``device_free_bytes(device)`` measures.
    When nothing fits, the plan keeps the most frugal options, ``fits`` is False and a note says
    by how much it is over.
    """
    spec = _spec(model)
    fs = frame_settings(spec, settings)
    if isinstance(safety_margin, bool) or not isinstance(safety_margin, (int, float)) or not 0 <= safety_margin < 1:
        raise InvalidRequestError(f"safety_margin must be a fraction in [0, 1), got {safety_margin!r}")
    if free_bytes is None:
        free_bytes = device_free_bytes(device)
    elif isinstance(free_bytes, bool) or not isinstance(free_bytes, int) or free_bytes < 0:
        raise InvalidRequestError(f"free_bytes must be a non-negative integer, got {free_bytes!r}")
    dtype_name, cfg = _configs(spec, device, dtype or _settings_dtype(settings))
    shown = {k: v for k, v in asdict(fs).items() if v is not None or k != "denoise_window"}
    plan = {"model": spec.name, "device": device, "dtype": dtype_name, "settings": shown,
            "free_bytes": free_bytes, "safety_margin": float(safety_margin)}
    if cfg is None:
        unknown = unknown_estimate(spec, {})
        notes = list(unknown.notes)
        if not device.startswith("cpu") and "offload" in memory_options(spec):
            notes.append("offload stays 'auto': the backend decides it from the weights once downloaded")
        return MemoryPlan(**plan, before=unknown, after=unknown, options={}, fits=None, notes=notes)
    budget = int(free_bytes * (1 - safety_margin))
    before, after, fits = choose_options(spec, cfg, fs, device, budget)
    return MemoryPlan(**plan, before=before, after=after, options=dict(after.options), fits=fits,
                      notes=plan_notes(spec, cfg, device, before, after, fits, budget))


def choose_options(spec: ModelSpec, cfg: ModelConfigs, fs: FrameSettings, device: str,
                   budget: int) -> tuple[MemoryEstimate, MemoryEstimate, bool]:
    """(estimate without options, estimate with the chosen ones, fits): the first candidate within
    ``budget``, or, when none is, the one with the smallest peak (the first of those on a tie)."""
    tried = [estimate_from_configs(cfg, fs, opts) for opts in candidates(spec, cfg, fs, device)]
    chosen = next((e for e in tried if e.total <= budget), None)
    return tried[0], chosen or min(tried, key=lambda e: e.total), chosen is not None


def plan_notes(spec: ModelSpec, cfg: ModelConfigs, device: str, before: MemoryEstimate, after: MemoryEstimate,
               fits: bool, budget: int) -> list[str]:
    notes = list(cfg.notes)
    if not fits:
        chosen = ", ".join(f"{k}={v}" for k, v in after.options.items()) or "no option lowers the peak"
        notes.append(f"does not fit: needs about {format_bytes(after.total)} at best ({chosen}), budget "
                     f"{format_bytes(budget)}; reduce num_frames or the size, or use a device with more free memory")
    elif after.options:
        notes.append(f"without options it needs about {format_bytes(before.total)}, over the budget of "
                     f"{format_bytes(budget)}")
    if not "offload" in memory_options(spec) and not device.startswith("cpu"):
        notes.append(f"{spec.name} takes no offload option")
    return notes


def check_run_fits(spec: ModelSpec, settings: ResolvedSettings, device: str, dtype: str | None = None,
                   options: Mapping | None = None, free_bytes: int | None = None, weights_resident: bool = False,
                   safety_margin: float = DEFAULT_SAFETY_MARGIN) -> MemoryEstimate | None:
    """Estimate the run with the memory options it will use; raise ``MemoryLimitError`` naming the
    estimate and the options that would make it fit when it is over the device's free memory.

    ``weights_resident``: the weights are already loaded, so the free memory no longer includes them
    and only the run's working memory must fit (on CUDA, PyTorch's cached but unused blocks count
    as free). Returns the estimate, or None when the model's configs are not on this machine yet."""
    fs = frame_settings(spec, settings)
    opts = check_options(spec, device, options)
    _, cfg = _configs(spec, device, dtype)
    if cfg is None:
        return None
    estimate = estimate_from_configs(cfg, fs, opts)
    free = device_free_bytes(device) if free_bytes is None else free_bytes
    if free_bytes is None and device.startswith("cuda"):
        import torch

        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    budget = int(free * (1 - safety_margin))
    needed = estimate.total - (estimate.weights or 0) if weights_resident else estimate.total
    if needed <= budget:
        return estimate
    plan = plan_memory(spec, settings, device=device, dtype=dtype, free_bytes=free, safety_margin=safety_margin)
    if plan.fits:
        flags = ", ".join(f"--{k.replace('_', '-')}" + ("" if v is True else f" {v}") for k, v in plan.options.items())
        hint = f"with {flags} it needs about {format_bytes(plan.after.total)}"
    else:
        hint = "no memory option makes it fit"
    raise MemoryLimitError(
        f"{spec.name}: this run needs about {format_bytes(needed)} ({fs.num_frames} frames at "
        f"{fs.width}x{fs.height}), more than the {format_bytes(budget)} free on {device}; {hint}; or lower "
        "num_frames or the size (`i2v generate ... --dry-run` prints the plan; --no-memory-check skips this)"
    )
