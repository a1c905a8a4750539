"""Metrics computed with standard pretrained networks, from weights the user points at.

Nothing here downloads anything: each loader takes a local path the user gave explicitly and
fails with ``WeightsError`` naming it otherwise.

- CLIP (``load_clip``: a ``transformers`` CLIPModel folder with its processor files, e.g. a copy
  of ``openai/clip-vit-base-patch32``): ``clip_text_score`` (mean frame-prompt cosine, the
  CLIPSIM of GODIVA / EvalCrafter's CLIP score without their x100) and ``clip_consistency``
  (VBench's *background consistency* formula on CLIP image embeddings).
- DINO (``load_dino``: a ``transformers`` ViT or DINOv2 folder, e.g. ``facebook/dino-vitb16``):
  ``dino_subject_consistency`` (VBench *subject consistency*) and ``dino_i2v_subject`` (VBench++
  *I2V subject*: frames against the input image).
- I3D (``load_i3d``: the Kinetics-400 I3D TorchScript file StyleGAN-V publishes,
  ``i3d_torchscript.pt``): ``i3d_features`` and ``fvd`` between two sets of videos, as
  StyleGAN-V computes it (400-d pre-softmax features, population covariance).

Hugging Face folders are loaded with ``local_files_only=True`` and ``use_safetensors=True`` and
never with ``trust_remote_code``. A TorchScript file is different: it is an archive of code and
weights that ``torch.jit.load`` deserialises and runs (TorchScript, not arbitrary Python, but
still code from the file), so ``load_i3d`` only opens a path the user passed explicitly; only
point it at a file from a source you trust.

Images go to the networks as VBench prepares them: DINO gets the frame resized (bilinear) so its
short side is the model's ``image_size``, ImageNet-normalised, uncropped; CLIP gets the folder's
own ``CLIPImageProcessor`` (resize + centre crop + CLIP normalisation).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from pathlib import Path

import numpy as np

from ..errors import WeightsError
from .frechet import frechet_distance_from_features

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_video(frames) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 shaped (T, H, W, 3), got {frames.dtype} {frames.shape}")
    return frames


def _existing(path, kind: str, folder: bool) -> Path:
    p = Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise WeightsError(f"{p}: no such {kind} {'folder' if folder else 'file'}")
    if folder and not p.is_dir():
        raise WeightsError(f"{p}: expected a {kind} folder (config.json + *.safetensors), got a file")
    if not folder and p.is_dir():
        raise WeightsError(f"{p}: expected the {kind} file, got a folder")
    return p


def _unit(x):
    import torch

    return torch.nn.functional.normalize(x.float(), dim=-1)


def _pooled(output):
    """transformers <5 returns a tensor from get_*_features, >=5 a ModelOutput with pooler_output."""
    import torch

    return output if isinstance(output, torch.Tensor) else output.pooler_output


# ---- formulas over embeddings (pure) ---------------------------------------------------------
def consistency_score(features) -> float:
    """VBench's subject/background consistency over per-frame embeddings ``(T, D)``:
    mean over frames ``i >= 1`` of ``(max(0, cos(f_{i-1}, f_i)) + max(0, cos(f_0, f_i))) / 2``.
    1.0 for a single frame."""
    f = np.asarray(features, dtype=np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-12)
    if len(f) < 2:
        return 1.0
    prev = np.maximum(0.0, (f[1:] * f[:-1]).sum(-1))
    first = np.maximum(0.0, f[1:] @ f[0])
    return float(np.mean((prev + first) / 2.0))


def i2v_subject_score(image_feature, frame_features) -> float:
    """VBench++ I2V subject score: ``0.5 * max_i max(0, cos(image, f_i)) + 0.5 * mean_i
    max(0, cos(f_{i-1}, f_i))`` (its weights max 0.5, mean 0.5, min 0)."""
    f = np.asarray(frame_features, dtype=np.float64)
    f = f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-12)
    g = np.asarray(image_feature, dtype=np.float64).ravel()
    g = g / max(float(np.linalg.norm(g)), 1e-12)
    to_input = np.maximum(0.0, f @ g)
    consec = np.maximum(0.0, (f[1:] * f[:-1]).sum(-1)) if len(f) > 1 else np.ones(1)
    return float(0.5 * to_input.max() + 0.5 * consec.mean())


# ---- CLIP ------------------------------------------------------------------------------------
@dataclasses.dataclass
class ClipNetwork:
    """A CLIP model and its processor loaded from ``path``."""

    path: str
    model: object
    processor: object
    device: str = "cpu"


def load_clip(path, device: str = "cpu") -> ClipNetwork:
    """A ``transformers`` CLIP folder (config.json, model.safetensors, tokenizer and
    preprocessor files) -> ``ClipNetwork``; ``WeightsError`` if it is not one."""
    from transformers import AutoConfig, CLIPModel, CLIPProcessor

    folder = _existing(path, "CLIP", folder=True)
    try:
        model_type = AutoConfig.from_pretrained(folder, local_files_only=True).model_type
        if model_type != "clip":
            raise ValueError(f"its config.json describes a {model_type!r} model")
        model = CLIPModel.from_pretrained(folder, local_files_only=True, use_safetensors=True)
        processor = CLIPProcessor.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise WeightsError(f"{folder}: not a transformers CLIP folder with safetensors weights and "
                           f"processor files ({err})") from err
    return ClipNetwork(str(folder), model.to(device).eval(), processor, device)


def clip_image_features(frames, clip: ClipNetwork, batch_size: int = 16) -> np.ndarray:
    """(T, D) unit CLIP image embeddings of uint8 frames (or images) ``(T, H, W, 3)``."""
    import torch

    frames = _as_video(frames)
    out = []
    with torch.no_grad():
        for i in range(0, len(frames), batch_size):
            pixels = clip.processor(images=list(frames[i:i + batch_size]), return_tensors="pt")["pixel_values"]
            out.append(_unit(_pooled(clip.model.get_image_features(pixel_values=pixels.to(clip.device)))).cpu())
    return torch.cat(out).numpy()


def clip_text_features(prompt: str, clip: ClipNetwork) -> np.ndarray:
    """(D,) unit CLIP text embedding of ``prompt`` (truncated to the model's context length)."""
    import torch

    max_len = int(clip.model.config.text_config.max_position_embeddings)
    tokens = clip.processor(text=[prompt], return_tensors="pt", padding=True, truncation=True, max_length=max_len)
    with torch.no_grad():
        emb = clip.model.get_text_features(input_ids=tokens["input_ids"].to(clip.device),
                                           attention_mask=tokens["attention_mask"].to(clip.device))
    return _unit(_pooled(emb))[0].cpu().numpy()


def clip_text_score(frames, prompt: str, clip: ClipNetwork, image_features=None) -> float:
    """Mean over frames of the cosine similarity between the frame and the prompt (CLIPSIM)."""
    feats = clip_image_features(frames, clip) if image_features is None else np.asarray(image_features)
    return float(np.mean(feats @ clip_text_features(prompt, clip)))


def clip_consistency(frames, clip: ClipNetwork, image_features=None) -> float:
    """VBench background consistency: ``consistency_score`` of the frames' CLIP embeddings."""
    feats = clip_image_features(frames, clip) if image_features is None else image_features
    return consistency_score(feats)


# ---- DINO ------------------------------------------------------------------------------------
@dataclasses.dataclass
class DinoNetwork:
    """A ViT / DINOv2 backbone loaded from ``path``; features are its final CLS token.
    Frames are resized so their short side is ``image_size`` (224, or less for a smaller model)."""

    path: str
    model: object
    image_size: int
    device: str = "cpu"


def load_dino(path, device: str = "cpu") -> DinoNetwork:
    """A ``transformers`` ViT or DINOv2 folder (config.json + model.safetensors) -> ``DinoNetwork``."""
    from transformers import AutoConfig, AutoModel

    folder = _existing(path, "DINO", folder=True)
    try:
        config = AutoConfig.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise WeightsError(f"{folder}: no readable transformers config.json ({err})") from err
    if config.model_type not in ("vit", "dinov2", "dinov2_with_registers"):
        raise WeightsError(f"{folder}: model_type {config.model_type!r} is not a ViT / DINOv2 backbone")
    try:
        model = AutoModel.from_pretrained(folder, local_files_only=True, use_safetensors=True)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise WeightsError(f"{folder}: not a transformers ViT/DINOv2 folder with safetensors weights ({err})") from err
    size = config.image_size if isinstance(config.image_size, int) else int(config.image_size[0])
    # VBench resizes the short side to 224 (DINOv2 configs say 518, their position-embedding grid)
    return DinoNetwork(str(folder), model.to(device).eval(), min(224, size), device)


def dino_features(frames, dino: DinoNetwork, batch_size: int = 16) -> np.ndarray:
    """(T, D) unit CLS embeddings of uint8 frames ``(T, H, W, 3)``."""
    import torch
    import torch.nn.functional as F

    frames = _as_video(frames)
    h, w = frames.shape[1:3]
    scale = dino.image_size / min(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))  # short side -> image_size, no crop
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    kwargs = {}
    if "interpolate_pos_encoding" in inspect.signature(dino.model.forward).parameters:
        kwargs["interpolate_pos_encoding"] = True  # ViT: non-square inputs
    out = []
    with torch.no_grad():
        for i in range(0, len(frames), batch_size):
            x = torch.from_numpy(frames[i:i + batch_size]).permute(0, 3, 1, 2).float() / 255.0  # (B, 3, H, W)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            x = ((x - mean) / std).to(dino.device)
            cls = dino.model(pixel_values=x, **kwargs).last_hidden_state[:, 0]
            out.append(_unit(cls).cpu())
    return torch.cat(out).numpy()


def dino_subject_consistency(frames, dino: DinoNetwork, features=None) -> float:
    """VBench subject consistency: ``consistency_score`` of the frames' DINO embeddings."""
    return consistency_score(dino_features(frames, dino) if features is None else features)


def dino_i2v_subject(frames, image, dino: DinoNetwork, features=None) -> float:
    """VBench++ I2V subject: ``i2v_subject_score`` of the input image's and frames' DINO
    embeddings (the image as given, resized by the same short-side rule)."""
    img = np.asarray(image.convert("RGB")) if hasattr(image, "convert") else np.asarray(image)
    image_feature = dino_features(img[None], dino)[0]
    return i2v_subject_score(image_feature, dino_features(frames, dino) if features is None else features)


# ---- TorchScript networks the user points at (I3D, Inception) ------------------------------------
@dataclasses.dataclass
class TorchScriptNetwork:
    """A TorchScript module loaded from ``path`` (the StyleGAN-V I3D file, an Inception-v3 classifier)."""

    path: str
    model: object
    device: str = "cpu"


I3DNetwork = InceptionNetwork = TorchScriptNetwork


def _load_torchscript(path, kind: str, device: str) -> TorchScriptNetwork:
    """``torch.jit.load`` of a file the user passed explicitly (see the module docstring: a TorchScript
    archive holds code as well as weights)."""
    import torch

    file = _existing(path, f"{kind} TorchScript", folder=False)
    try:
        model = torch.jit.load(str(file), map_location=device)
    except (RuntimeError, ValueError) as err:
        raise WeightsError(f"{file}: not a TorchScript archive ({err})") from err
    return TorchScriptNetwork(str(file), model.eval(), device)


# ---- I3D / FVD -------------------------------------------------------------------------------
def load_i3d(path, device: str = "cpu") -> I3DNetwork:
    """The StyleGAN-V ``i3d_torchscript.pt`` the user passed explicitly."""
    return _load_torchscript(path, "I3D", device)


def i3d_features(videos, i3d: I3DNetwork, batch_size: int = 8) -> np.ndarray:
    """(N, D) I3D features of N clips, each uint8 ``(T, H, W, 3)`` (all the same shape).

    StyleGAN-V's call: float pixels in [0, 255] shaped ``(B, 3, T, H, W)`` and
    ``rescale=True, resize=True, return_features=True`` (the module maps to [-1, 1] and resizes
    to 224x224 itself; 400-d pre-softmax features).
    """
    import torch

    clips = [_as_video(v) for v in videos]
    if not clips:
        raise ValueError("need at least one video")
    shapes = {c.shape for c in clips}
    if len(shapes) != 1:
        raise ValueError(f"all videos must have the same (T, H, W, 3) shape for I3D, got {sorted(shapes)}")
    out = []
    with torch.no_grad():
        for i in range(0, len(clips), batch_size):
            x = torch.from_numpy(np.stack(clips[i:i + batch_size])).permute(0, 4, 1, 2, 3).float()  # (B, 3, T, H, W)
            feats = i3d.model(x.to(i3d.device), rescale=True, resize=True, return_features=True)
            out.append(feats.float().reshape(len(x), -1).cpu())
    return torch.cat(out).numpy().astype(np.float64)


def fvd(videos, reference_videos, i3d: I3DNetwork, batch_size: int = 8) -> float:
    """Fréchet Video Distance between two sets of clips with StyleGAN-V's I3D and statistics
    (mean and population covariance of the features; squared distance, as FVD is reported).
    Meaningful only with many clips per set (StyleGAN-V uses 2048)."""
    a = i3d_features(videos, i3d, batch_size)
    b = i3d_features(reference_videos, i3d, batch_size)
    return frechet_distance_from_features(a, b, ddof=0)


# ---- Inception Score ---------------------------------------------------------------------------
INCEPTION_SIZE = 299
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_inception(path, device: str = "cpu") -> InceptionNetwork:
    """A TorchScript Inception-v3 classifier the user passed explicitly, e.g.
    ``torch.jit.save(torch.jit.script(torchvision.models.inception_v3(weights="IMAGENET1K_V1").eval()), F)``:
    it takes ``(B, 3, 299, 299)`` ImageNet-normalised images and returns ``(B, classes)`` logits."""
    return _load_torchscript(path, "Inception", device)


def inception_probabilities(videos, net: InceptionNetwork, batch_size: int = 32) -> np.ndarray:
    """(N, classes) softmax class probabilities of every frame of every clip."""
    import torch
    import torch.nn.functional as F

    frames = np.concatenate([_as_video(v) for v in videos])  # (N, H, W, 3) uint8
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    out = []
    with torch.no_grad():
        for i in range(0, len(frames), batch_size):
            x = torch.from_numpy(frames[i:i + batch_size]).permute(0, 3, 1, 2).float() / 255  # (B, 3, H, W)
            x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
            logits = net.model(((x - mean) / std).to(net.device))
            logits = logits[0] if isinstance(logits, (tuple, list)) else logits  # torchvision's aux-logits tuple
            out.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(out).numpy().astype(np.float64)


def inception_score(videos, net: InceptionNetwork, splits: int = 1) -> tuple[float, float]:
    """Inception Score (Salimans et al. 2016) over all frames: ``exp(E_x KL(p(y|x) || p(y)))``, the
    mean and standard deviation over ``splits`` equal parts. Meaningful only with thousands of frames
    and the real Inception-v3 weights."""
    probs = inception_probabilities(videos, net)
    if splits < 1 or splits > len(probs):
        raise ValueError(f"splits must be between 1 and the number of frames ({len(probs)}), got {splits}")
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(marginal + 1e-12))).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))
