"""Digest of what every backend generates for fixed settings: proof that a refactor changed nothing.

Per case: a hash of the frames, and the settings recorded with the clip and the notices, with the
machine-specific paths (checkout, temporary folders) replaced by placeholders.

    python benchmarks/frames_digest.py --out before.json     # on the old tree
    python benchmarks/frames_digest.py --compare before.json # on the new tree: exit 1 on any difference

Compare runs made with the same number of CPU threads: float reductions differ between thread
counts. Runs the embedded model and each diffusers family on the tiny seeded pipelines of the test suite
(tests/backends/tiny_components.py), plain and with the --speed / --memory profiles, on CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# family -> (tiny builder name, request fields)
CASES = {
    "svd": ("svd", dict(num_inference_steps=4, height=16, width=16, num_frames=3)),
    "animatediff": ("animatediff", dict(num_inference_steps=3, height=32, width=32, num_frames=4)),
    "wan": ("wan", dict(num_inference_steps=3, height=32, width=32, num_frames=5)),
    "wan-flf": ("wan-flf", dict(num_inference_steps=3, height=32, width=32, num_frames=5, last_image=True)),
    "cogvideox": ("cogvideox", dict(num_inference_steps=3, height=16, width=16, num_frames=9)),
    "ltx": ("ltx", dict(num_inference_steps=3, height=32, width=32, num_frames=9)),
    "ltx-last": ("ltx", dict(num_inference_steps=3, height=32, width=32, num_frames=9, last_image=True)),
    "hunyuan": ("hunyuan", dict(num_inference_steps=3, height=16, width=16, num_frames=5)),
    "hunyuan-33ch": ("hunyuan-33ch", dict(num_inference_steps=3, height=16, width=16, num_frames=5)),
}
PROFILES = (None, "speed", "memory")


def digest(frames: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(frames).tobytes()).hexdigest()[:16]


def record(result, work: Path) -> dict:
    """Frames hash, settings and notices of one run, without paths that differ between checkouts."""
    def clean(value):
        text = json.dumps(value, sort_keys=True, default=str)
        for path, name in ((str(work), "<work>"), (str(ROOT), "<root>")):
            text = text.replace(path, name)
        return json.loads(text)

    settings = {k: v for k, v in result.settings.items() if k != "i2v_version"}
    return {"frames": digest(result.frames), "settings": clean(settings), "notices": clean(result.notices)}


def run_all(work: Path) -> dict[str, dict]:
    from i2v import GenerationRequest, ImageToVideoGenerator
    from tests.backends.conftest import BUILDERS

    image = work / "square.png"
    arr = np.full((40, 40, 3), 110, np.uint8)
    arr[10:25, 12:28] = (220, 30, 30)
    Image.fromarray(arr).save(image)
    last = work / "last.png"
    Image.fromarray(arr[:, ::-1].copy()).save(last)
    out: dict[str, dict] = {}
    sample = ROOT / "src/i2v/assets/sample.png"
    for profile in PROFILES:
        gen = ImageToVideoGenerator(device="cpu", profile=profile)
        result = gen.run(GenerationRequest(image=sample, prompt="the red circle moves to the right", seed=0))
        out[f"i2v-tiny/{profile}"] = record(result, work)
        print(f"i2v-tiny/{profile}: {out[f'i2v-tiny/{profile}']['frames']}", flush=True)
    folders: dict[str, Path] = {}
    for case, (builder, fields) in CASES.items():
        if builder not in folders:
            folders[builder] = work / builder
            BUILDERS[builder]().save_pretrained(folders[builder])
        fields = dict(fields)
        use_last = fields.pop("last_image", False)
        for profile in PROFILES:
            gen = ImageToVideoGenerator(str(folders[builder]), device="cpu", profile=profile)
            result = gen.run(GenerationRequest(image=image, prompt="a red ball moves left", seed=0,
                                               last_image=last if use_last else None, **fields))
            key = f"{case}/{profile}"
            out[key] = record(result, work)
            print(f"{key}: {out[key]['frames']}", flush=True)
    return out


def show(part: str, value, other) -> str:
    """The part of ``value`` that differs from ``other`` (the differing keys of a settings dict)."""
    if part == "settings" and isinstance(value, dict) and isinstance(other, dict):
        keys = sorted(value.keys() | other.keys())
        return json.dumps({k: value.get(k) for k in keys if value.get(k) != other.get(k)})
    return json.dumps(value)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="write the digests to this JSON file")
    p.add_argument("--compare", help="compare with digests written earlier; exit 1 on any difference")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        digests = run_all(Path(tmp))
    if args.out:
        Path(args.out).write_text(json.dumps(digests, indent=1))
    if args.compare:
        before = json.loads(Path(args.compare).read_text())
        same = 0
        for key in sorted(before.keys() | digests.keys()):
            old, new = before.get(key, {}), digests.get(key, {})
            for part in ("frames", "settings", "notices"):
                if old.get(part) != new.get(part):
                    print(f"{key}: {part} differ:\n  before {show(part, old.get(part), new.get(part))}"
                          f"\n  after  {show(part, new.get(part), old.get(part))}")
            same += old.get("frames") == new.get("frames")
        print(f"frames: {same} of {len(digests)} identical")
        return 0 if same == len(digests) == len(before) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
