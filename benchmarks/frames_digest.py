"""Digest of the frames every backend generates for fixed settings: proof that a refactor changed nothing.

    python benchmarks/frames_digest.py --out before.json     # on the old tree
    python benchmarks/frames_digest.py --compare before.json # on the new tree: exit 1 on any difference

Runs the embedded model and each diffusers family on the tiny seeded pipelines of the test suite
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


def run_all(work: Path) -> dict[str, str]:
    from i2v import GenerationRequest, ImageToVideoGenerator
    from tests.backends.conftest import BUILDERS

    image = work / "square.png"
    arr = np.full((40, 40, 3), 110, np.uint8)
    arr[10:25, 12:28] = (220, 30, 30)
    Image.fromarray(arr).save(image)
    last = work / "last.png"
    Image.fromarray(arr[:, ::-1].copy()).save(last)
    out: dict[str, str] = {}
    sample = ROOT / "src/i2v/assets/sample.png"
    for profile in PROFILES:
        gen = ImageToVideoGenerator(device="cpu", profile=profile)
        frames = gen.generate(image_path=sample, prompt="the red circle moves to the right", seed=0)
        out[f"i2v-tiny/{profile}"] = digest(frames)
        print(f"i2v-tiny/{profile}: {out[f'i2v-tiny/{profile}']}", flush=True)
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
            out[key] = digest(result.frames)
            print(f"{key}: {out[key]}", flush=True)
    return out


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
        differ = sorted(k for k in before.keys() | digests.keys() if before.get(k) != digests.get(k))
        print(f"{len(digests) - len(differ)} of {len(digests)} identical" + (f"; differ: {differ}" if differ else ""))
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
