"""SpaceTimeUNet: the embedded model's text + first-frame conditioned video denoiser.

A latent video U-Net in the "Video Diffusion Models" family, written with factorised
space-time layers:

* (2+1)D residual blocks: a spatial 3x3 conv per frame, a temporal 3-tap conv across frames;
* per-frame spatial self-attention and cross-attention to the text tokens ``'(b t) (h w) c'``;
* frame-to-frame temporal self-attention ``'(b h w) t c'`` with sinusoidal frame-position
  encodings;
* a 2x2 patch embedding in and pixel-shuffle out, so the 32x32 latents cost what 16x16 would
  (a patch grid the down path cannot halve evenly, 256x144 frames say, is edge-padded and cropped);
* the first frame's latent concatenated to every frame's input (SVD-style image conditioning)
  and the pooled sentence embedding added to the timestep embedding (SDXL-style);
* with ``history_frames`` (a denoiser trained to continue a video, as FramePack and diffusion forcing
  do), a channel marking the frames given clean (``held``): a long video's window holds the last
  frames of the window before at its start, while the image channel keeps the video's first frame
  (the anchor for identity and colour).

Two output parameterisations (``prediction``). ``"velocity"``: the network's output is the
flow-matching velocity. ``"warp"`` (for the photo autoencoder, whose detail a 2x2-patch network
cannot carry through its first layer): the network predicts, per frame, a dense flow, a residual
and a confidence. The first frame moved by the flow (``LatentWarp``, in pixel space) plus the
residual is a prior guess ``mu`` of the clean frame, with per-pixel spread ``tau``; the noisy
sample ``x_t = (1 - sigma) x0 + sigma * noise`` is an observation of it. Their Gaussian fusion,
``x0 = mu + K (x_t - (1 - sigma) mu)`` with ``K = (1 - sigma) tau^2 / ((1 - sigma)^2 tau^2 + sigma^2)``,
trusts the guess at high noise and the sample at low noise (EDM's skip connection, with the
network choosing where), and ``v = (x_t - x0) / sigma`` stays finite as sigma goes to 0. The
photo's detail then comes from the photo itself, and the network decides how it moves and what
fills the newly revealed borders. At sampling, the flow can be given (``flow=``: the pipeline's
motion plan, decided once at pure noise); the guess is then the clean frame, with no fusion.
Two coordinate channels join its input, so a zoom's radial flow is easy to express.

Attention and feed-forward layers are diffusers' own, so diffusers' attention processors
apply. Inputs and outputs follow the flow-matching convention of ``i2v.sampling``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from diffusers.models.modeling_utils import ModelMixin
from einops import rearrange
from torch import nn

from .latent_warp import LatentWarp, base_grid

# The warping denoiser's spread at a zero output: e^-3 (about 0.05 of the latents' unit variance), so an
# untrained network trusts its warped guess down to low noise and returns a clean (still) video, and
# training widens the spread where the guess is wrong (newly revealed borders, moving objects)
LOG_TAU_START = -3.0

UNET_PRESETS: dict[str, dict] = {
    # the shipped model: ~8M parameters, 32x32x4 latents patchified to 16x16, 16 frames
    "small": dict(block_out_channels=(32, 96, 160), attention_levels=(False, True, True), heads=4),
    # for tests
    "test": dict(block_out_channels=(16, 32), attention_levels=(False, True), heads=2, norm_num_groups=8),
}


class ResBlock3D(nn.Module):
    """(2+1)D residual block: spatial conv -> + time embedding -> temporal conv -> spatial conv."""

    def __init__(self, in_channels: int, out_channels: int, temb_dim: int, groups: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_channels)
        self.conv1 = nn.Conv3d(in_channels, out_channels, (1, 3, 3), padding=(0, 1, 1))
        self.temb_proj = nn.Linear(temb_dim, out_channels)
        self.norm_t = nn.GroupNorm(groups, out_channels)
        self.conv_t = nn.Conv3d(out_channels, out_channels, (3, 1, 1), padding=(1, 0, 0))
        self.norm2 = nn.GroupNorm(groups, out_channels)
        self.conv2 = nn.Conv3d(out_channels, out_channels, (1, 3, 3), padding=(0, 1, 1))
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        self.skip = nn.Conv3d(in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        # x: (B, C, T, H, W), temb: (B, D)
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None, None]
        h = h + self.conv_t(F.silu(self.norm_t(h)))  # frames exchange information here
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class SpaceTimeTransformer(nn.Module):
    """Spatial self-attn, text cross-attn, temporal self-attn (with frame positions), feed-forward."""

    def __init__(self, channels: int, text_dim: int, heads: int, groups: int):
        super().__init__()
        head_dim = channels // heads
        self.norm_in = nn.GroupNorm(groups, channels)
        self.norm_spatial = nn.LayerNorm(channels)
        self.attn_spatial = Attention(channels, heads=heads, dim_head=head_dim, out_bias=True)
        self.norm_cross = nn.LayerNorm(channels)
        self.attn_cross = Attention(channels, cross_attention_dim=text_dim, heads=heads, dim_head=head_dim, out_bias=True)
        self.frame_pos = Timesteps(channels, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.frame_pos_proj = nn.Linear(channels, channels)
        self.norm_temporal = nn.LayerNorm(channels)
        self.attn_temporal = Attention(channels, heads=heads, dim_head=head_dim, out_bias=True)
        self.norm_ff = nn.LayerNorm(channels)
        self.ff = FeedForward(channels, mult=2, activation_fn="geglu")
        self.proj_out = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor, text: torch.Tensor, text_bias: torch.Tensor | None) -> torch.Tensor:
        # x: (B, C, T, H, W); text: (B, L, D); text_bias: (B, 1, L) additive mask or None
        b, c, t, h, w = x.shape
        s = rearrange(self.norm_in(x), "b c t h w -> (b t) (h w) c")
        # spatial self-attention within each frame
        s = s + self.attn_spatial(self.norm_spatial(s))
        # cross-attention from every frame's pixels to the prompt's tokens
        text_bt = text.repeat_interleave(t, dim=0)  # (B*T, L, D)
        bias_bt = text_bias.repeat_interleave(t, dim=0) if text_bias is not None else None
        s = s + self.attn_cross(self.norm_cross(s), encoder_hidden_states=text_bt, attention_mask=bias_bt)
        # temporal self-attention: each pixel looks along its own time line
        q = rearrange(s, "(b t) (h w) c -> (b h w) t c", b=b, h=h)
        pos = self.frame_pos_proj(self.frame_pos(torch.arange(t, device=x.device)).to(q.dtype))  # (T, C)
        q = q + self.attn_temporal(self.norm_temporal(q + pos))
        q = q + self.ff(self.norm_ff(q))
        out = rearrange(self.proj_out(q), "(b h w) t c -> b c t h w", b=b, h=h)
        return x + out


class SpaceTimeUNet(ModelMixin, ConfigMixin):
    """Predicts the flow-matching velocity of frames 1..T-1 given frame 0 and the prompt.

    Input ``sample`` (B, C_lat, T, h, w) and ``image_latents`` (B, C_lat, h, w); the latter is
    broadcast over time and concatenated on channels. Returns (B, C_lat, T, h, w).
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        latent_channels: int = 4,
        block_out_channels: tuple[int, ...] = (64, 128, 192),
        attention_levels: tuple[bool, ...] = (True, True, True),
        layers_per_block: int = 1,
        patch_size: int = 2,
        heads: int = 4,
        text_dim: int = 384,
        norm_num_groups: int = 32,
        num_frames: int = 16,
        sample_size: int = 32,
        prediction: str = "velocity",
        vae_patch_size: int = 4,
        camera_flow: bool = False,
        history_frames: int = 0,  # the most frames given clean at a window's start it was trained on; 0: frame 0
    ):
        super().__init__()
        if len(attention_levels) != len(block_out_channels):
            raise ValueError("attention_levels needs one flag per entry of block_out_channels")
        if prediction not in ("velocity", "warp"):
            raise ValueError(f"prediction must be 'velocity' or 'warp', got {prediction!r}")
        warp = prediction == "warp"
        if warp and history_frames:
            raise ValueError("history frames are for a velocity denoiser (a warping one anchors every frame at the "
                             "first)")
        ch0, groups = block_out_channels[0], norm_num_groups
        temb_dim = ch0 * 4
        self.time_proj = Timesteps(ch0, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(ch0, temb_dim)
        self.text_pool_embedding = TimestepEmbedding(text_dim, temb_dim)  # pooled sentence -> temb
        p = patch_size
        # noisy frames, first frame, (x, y) coordinates, the held-frames mask
        in_channels = 2 * latent_channels + (2 if warp else 0) + (1 if history_frames else 0)
        self.conv_in = nn.Conv3d(in_channels, ch0, (1, p, p), stride=(1, p, p))  # patch embedding

        # ---- encoder: units of [ResBlock, Transformer?] or [Downsample]; each leaves a skip ----
        self.down = nn.ModuleList()
        skip_channels, ch = [ch0], ch0
        for level, (out_ch, use_attn) in enumerate(zip(block_out_channels, attention_levels)):
            for _ in range(layers_per_block):
                self.down.append(self._unit(ch, out_ch, use_attn, temb_dim, text_dim, heads, groups))
                ch = out_ch
                skip_channels.append(ch)
            if level < len(block_out_channels) - 1:
                self.down.append(nn.ModuleList([_Downsample(ch)]))
                skip_channels.append(ch)

        # ---- middle ----
        mid_ch = ch
        self.mid = nn.ModuleList([
            ResBlock3D(ch, ch, temb_dim, groups),
            SpaceTimeTransformer(ch, text_dim, heads, groups),
            ResBlock3D(ch, ch, temb_dim, groups),
        ])

        # ---- decoder: mirror of the encoder; every [ResBlock, ...] unit consumes one skip ----
        self.up = nn.ModuleList()
        for level in reversed(range(len(block_out_channels))):
            out_ch, use_attn = block_out_channels[level], attention_levels[level]
            for _ in range(layers_per_block + 1):
                self.up.append(self._unit(ch + skip_channels.pop(), out_ch, use_attn, temb_dim, text_dim, heads, groups))
                ch = out_ch
            if level > 0:
                self.up.append(nn.ModuleList([_Upsample(ch)]))

        self.norm_out = nn.GroupNorm(groups, ch)
        out_channels = latent_channels + (3 if warp else 0)  # velocity, or residual, flow and log tau
        self.conv_out = nn.Conv3d(ch, out_channels * p * p, (1, 3, 3), padding=(0, 1, 1))
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)
        self.warp = LatentWarp(latent_channels, vae_patch_size) if warp else None
        # A warping denoiser's flow = a per-frame affine camera field (6 numbers a frame, from the pooled
        # middle features: a camera move is global, and 6 numbers cannot ripple) + the per-token flow
        # above (objects). Zero at the start: the per-token flow alone.
        self.camera_head = None
        if warp and camera_flow:
            self.camera_head = nn.Sequential(nn.SiLU(), nn.Linear(mid_ch, mid_ch), nn.SiLU(), nn.Linear(mid_ch, 6))
            nn.init.zeros_(self.camera_head[-1].weight)
            nn.init.zeros_(self.camera_head[-1].bias)
        self.gradient_checkpointing = False

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        image_latents: torch.Tensor,
        text_states: torch.Tensor,
        text_pooled: torch.Tensor,
        text_mask: torch.Tensor | None = None,
        return_flow: bool = False,
        detach_flow: bool = False,
        flow: torch.Tensor | None = None,
        residual_keep: torch.Tensor | None = None,
        held: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        # sample: (B, C, T, h, w); timestep: (B,) in [0, 1]; image_latents: (B, C, h, w)
        # text_states: (B, L, D); text_pooled: (B, D); text_mask: (B, L) 1 = real token
        # return_flow (warp prediction only): also return the predicted flow (B, 2, T, h, w)
        # detach_flow: the warp sees the flow without its gradient (training with a supervised flow: the
        # clean-frame error's gradient through the warp is the image's own gradient, mostly noise)
        # flow (warp prediction only): (B, 2, T, h, w) a motion decided earlier (the sampler's motion plan),
        # used instead of this call's flow and camera head; the guess is then the clean frame (no fusion)
        # residual_keep (with flow): (B, 1, T, h, w) in [0, 1], how much of the residual the guess keeps: the
        # network's residual corrects its own flow's warp, so where a held flow departs from that (a user's
        # trajectory) it would paint the moved object back
        # held (a denoiser with history_frames): (B, T) 1 on the frames given clean (a window's history frames),
        # None: frame 0 alone
        b, _, t, h, w = sample.shape
        temb = self.time_embedding(self.time_proj(timestep * 1000).to(sample.dtype))
        temb = temb + self.text_pool_embedding(text_pooled.to(sample.dtype))
        bias = None
        if text_mask is not None:
            bias = ((1.0 - text_mask.to(sample.dtype)) * -10000.0)[:, None, :]  # (B, 1, L)
        cond = image_latents[:, :, None].expand(-1, -1, t, -1, -1)
        inputs = [sample, cond]
        if self.warp is not None:
            coords = base_grid(h, w, sample.device).permute(0, 3, 1, 2)[:, :, None]  # (1, 2, 1, h, w)
            inputs.append(coords.to(sample.dtype).expand(b, -1, t, -1, -1))
        if self.config.history_frames:
            if held is None:
                held = torch.zeros(b, t, device=sample.device)
                held[:, 0] = 1
            inputs.append(held.to(sample.dtype)[:, None, :, None, None].expand(-1, -1, -1, h, w))
        elif held is not None and (held[:, 1:] != 0).any():
            raise ValueError("held frames past frame 0 need a denoiser trained with history_frames")
        x = self.conv_in(torch.cat(inputs, dim=1))  # (B, ch0, T, h/p, w/p)
        # the down path halves the patch grid len(levels) - 1 times: other sizes are padded (edge
        # values repeated) to its multiple and cropped back before the output
        grid_h, grid_w = x.shape[-2:]
        multiple = 2 ** (len(self.config.block_out_channels) - 1)
        pad_h, pad_w = -grid_h % multiple, -grid_w % multiple
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h, 0, 0), mode="replicate")

        skips = [x]
        for unit in self.down:
            x = self._run_unit(unit, x, temb, text_states, bias)
            skips.append(x)
        x = self._run_unit(self.mid, x, temb, text_states, bias)
        camera = None
        if self.camera_head is not None:  # (B, C, T, h', w') -> (B, T, 6) affine camera parameters
            camera = self.camera_head(x.float().mean(dim=(3, 4)).transpose(1, 2).to(x.dtype))
        for unit in self.up:
            if isinstance(unit[0], ResBlock3D):
                x = torch.cat([x, skips.pop()], dim=1)
            x = self._run_unit(unit, x, temb, text_states, bias)
        x = x[..., :grid_h, :grid_w]
        out = self.conv_out(F.silu(self.norm_out(x)))  # (B, C*p*p, T, h/p, w/p)
        p = self.config.patch_size
        out = rearrange(out, "b (c p1 p2) t h w -> b c t (h p1) (w p2)", p1=p, p2=p)  # (B, C', T, h, w)
        if self.warp is None:
            if return_flow or flow is not None:
                raise ValueError("return_flow and flow need a denoiser with prediction='warp'")
            return out  # the velocity
        velocity, flow = self.velocity_from_warp(sample, timestep, image_latents, out, detach_flow, camera, flow,
                                                 residual_keep)
        return (velocity, flow) if return_flow else velocity

    def velocity_from_warp(self, sample, timestep, image_latents, out, detach_flow: bool = False,
                           camera: torch.Tensor | None = None,
                           held_flow: torch.Tensor | None = None,
                           residual_keep: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The warp parameterisation's output (and the camera head's (B, T, 6), if any) -> (velocity
        (B, C, T, h, w), flow (B, 2, T, h, w)). ``held_flow`` replaces the predicted flow and camera, and
        its guess is the clean frame."""
        b, c, t, h, w = sample.shape
        residual, flow, log_tau = out[:, :c].float(), out[:, c:c + 2], out[:, c + 2:c + 3].float()
        if residual_keep is not None:
            residual = residual * residual_keep.float()
        if held_flow is not None:
            flow = held_flow
        else:
            flow = smooth_flow(flow, self.config.patch_size)
            if camera is not None:
                flow = flow + affine_flow(camera.float(), h, w).to(flow.dtype)
        warp_flow = flow.detach() if detach_flow else flow
        moved = self.warp(image_latents[:, None].expand(-1, t, -1, -1, -1).reshape(b * t, c, h, w),
                          rearrange(warp_flow, "b f t h w -> (b t) f h w"))
        mu = rearrange(moved, "(b t) c h w -> b c t h w", b=b).float() + residual  # the prior guess of x0
        sigma = timestep.float().clamp(min=1e-4).view(b, 1, 1, 1, 1)
        x_t = sample.float()
        if held_flow is not None:
            # a held motion plan settles where every pixel comes from: the guess is the clean frame and the
            # sample only the network's input (fused, a sample off the training paths keeps its noise)
            clean = mu
        else:
            keep = 1 - sigma
            tau2 = torch.exp(2 * (log_tau + LOG_TAU_START).clamp(-8, 6))  # (B, 1, T, h, w)
            gain = keep * tau2 / (keep**2 * tau2 + sigma**2)
            clean = mu + gain * (x_t - keep * mu)
        return ((x_t - clean) / sigma).to(sample.dtype), flow

    @staticmethod
    def _unit(in_ch, out_ch, use_attn, temb_dim, text_dim, heads, groups) -> nn.ModuleList:
        layers = [ResBlock3D(in_ch, out_ch, temb_dim, groups)]
        if use_attn:
            layers.append(SpaceTimeTransformer(out_ch, text_dim, heads, groups))
        return nn.ModuleList(layers)

    def _run_unit(self, unit: nn.ModuleList, x, temb, text, bias):
        for layer in unit:
            if isinstance(layer, ResBlock3D):
                args = (x, temb)
            elif isinstance(layer, SpaceTimeTransformer):
                args = (x, text, bias)
            else:
                args = (x,)
            if self.gradient_checkpointing and torch.is_grad_enabled() and len(args) > 1:
                x = torch.utils.checkpoint.checkpoint(layer, *args, use_reentrant=False)
            else:
                x = layer(*args)
        return x


def affine_flow(params: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, T, 6) per-frame (a, b, c, d, tx, ty) -> (B, 2, T, height, width) the flow
    ``(a x + b y + tx, c x + d y + ty)`` at each pixel centre (x, y in ``grid_sample``'s units)."""
    grid = base_grid(height, width, params.device)[0]  # (H, W, 2)
    x, y = grid[..., 0], grid[..., 1]
    a, b_, c, d, tx, ty = (params[..., i, None, None] for i in range(6))  # each (B, T, 1, 1)
    return torch.stack([a * x + b_ * y + tx, c * x + d * y + ty], dim=1)


def _least_squares(design: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted least squares through the normal equations: design (N, k), target (..., N, m), weight
    (..., N) or None -> (..., k, m). (A batched ``torch.linalg.lstsq`` over one broadcast design matrix
    gave different answers from run to run on CPU.)"""
    if weight is None:
        gram = design.T @ design  # (k, k)
        rhs = torch.einsum("nk,...nm->...km", design, target)
    else:
        gram = torch.einsum("nk,...n,nl->...kl", design, weight, design)
        rhs = torch.einsum("nk,...n,...nm->...km", design, weight, target)
    ridge = 1e-9 * torch.eye(design.shape[1], dtype=design.dtype, device=design.device)  # a degenerate fit stays finite
    return torch.linalg.solve(gram + ridge, rhs)


def fit_affine_flow(flow: torch.Tensor, robust: bool = False, time_degree: int | None = None) -> torch.Tensor:
    """(B, 2, T, h, w) -> the same, each frame's flow replaced by its least-squares affine field (the
    camera motion that moves the picture most like it). ``robust``: fitted again to the half of the
    pixels it fits best, so an object moving on its own (less than half the frame) does not bend it.
    ``time_degree``: each affine parameter then follows a polynomial of that degree in time through
    zero at frame 0 (a camera moves smoothly; frame-by-frame fits jitter by a fraction of a pixel,
    which on a textured photo is flicker)."""
    b, _, t, h, w = flow.shape
    grid = base_grid(h, w, flow.device)[0].reshape(h * w, 2).double()
    design = torch.cat([grid, torch.ones(h * w, 1, dtype=torch.float64, device=flow.device)], dim=1)  # (hw, 3): x, y, 1
    target = rearrange(flow.double(), "b f t h w -> b t (h w) f")
    params = _least_squares(design, target)  # (B, T, 3, 2)
    if robust:
        residual = (design @ params - target).norm(dim=-1)  # (B, T, hw)
        inlier = (residual <= residual.median(dim=2, keepdim=True).values).double()
        params = _least_squares(design, target, inlier)
    if time_degree and t > 1:
        time_degree = min(time_degree, t - 1)
        times = torch.linspace(0, 1, t, dtype=torch.float64, device=flow.device)
        basis = torch.stack([times ** (k + 1) for k in range(time_degree)], dim=1)  # (T, degree), zero at frame 0
        coefficients = _least_squares(basis, params.reshape(b, t, 6))  # (B, degree, 6)
        params = (basis @ coefficients).reshape(b, t, 3, 2)
    return rearrange(design @ params, "b t (h w) f -> b f t h w", h=h).to(flow.dtype)


def smooth_flow(flow: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, 2, T, h, w) -> the same, one flow per ``patch`` x ``patch`` token, bilinearly interpolated: the
    sub-positions of a token come out of one feature vector and would otherwise jitter independently."""
    b, _, t, h, w = flow.shape
    frames = rearrange(flow, "b f t h w -> (b t) f h w")
    tokens = F.avg_pool2d(frames, patch, ceil_mode=True)
    smooth = F.interpolate(tokens, size=(h, w), mode="bilinear", align_corners=False)
    return rearrange(smooth, "(b t) f h w -> b f t h w", b=b)


class _Downsample(nn.Module):
    """Strided 3x3 conv halving height and width (frames untouched)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv3d(channels, channels, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class _Upsample(nn.Module):
    """Nearest-neighbour 2x spatial up-sampling followed by a 3x3 conv (frames untouched)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv3d(channels, channels, (1, 3, 3), padding=(0, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=(1, 2, 2), mode="nearest"))


def build_unet(preset: str = "small", **overrides) -> SpaceTimeUNet:
    if preset not in UNET_PRESETS:
        raise ValueError(f"unknown unet preset {preset!r}; expected one of {sorted(UNET_PRESETS)}")
    return SpaceTimeUNet(**{**UNET_PRESETS[preset], **overrides})
