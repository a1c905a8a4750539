"""Train the prompt reader (``models.prompt_reader``) on the world's labelled prompts.

    i2v train reader --output-dir runs/reader
    i2v train reader --score src/i2v/weights/i2v-photo/reader      # held-out prompts and scenes

The frozen MiniLM encodes every prompt once (the states are kept in memory); the reader's three heads
then train with AdamW on cross-entropy, and are scored on held-out prompts (``reader_captions``'s
held-out templates and words). Writes the reader (safetensors) and ``report.json`` (held-out accuracy
per head, and of the decision the planner makes from them) to the output folder. A few minutes on a
CPU.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import TrainingSetupError
from ..models.prompt_reader import HEADS, PromptReader, readable_layers
from ..validate import check_output_folder
from ..world.reader_captions import COLOUR_LABELS, MOTIONS, SHAPE_LABELS, ReaderExample, reader_examples


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="i2v train reader", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output-dir", default=None, help="where to write the trained reader (required unless --score)")
    p.add_argument("--examples", type=int, default=24_000, help="training prompts")
    p.add_argument("--heldout", type=int, default=2_000, help="held-out prompts to score")
    p.add_argument("--steps", type=int, default=3_000)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--scenes", type=int, default=456, help="held-out world scenes to plan on (the grounded score)")
    p.add_argument("--layers", default=None,
                   help="the text encoder's hidden layers each head mixes, e.g. 0,1,2,3,4,5,6 (0: its input embeddings, "
                        "6: its last; the last must be 6); default: the last alone")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--score", default=None, metavar="READER_DIR",
                   help="score this trained reader (held-out prompts and scenes) instead of training one")
    return p.parse_args(argv)


def encode(examples: list[ReaderExample], text_encoder, layers: list[int] | None = None,
           batch: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts -> MiniLM states (N, L, 384), or with ``layers`` those hidden layers' (N, L, K, 384) in fp16
    (the reader computes in fp32), and mask (N, L), padded to the longest prompt."""
    states, masks = [], []
    for i in range(0, len(examples), batch):
        prompts = [e.prompt for e in examples[i:i + batch]]
        if layers:
            hidden, mask = text_encoder.encode_layers(prompts, layers)  # (B, L, K, D), (B, L)
            for h, m in zip(hidden, mask):
                n = int(m.sum())
                states.append(h[:n].half())
                masks.append(m[:n])
            continue
        text = text_encoder._encode_uncached(prompts)
        states += [t.states[0] for t in text]
        masks += [t.mask[0] for t in text]
    length = max(s.shape[0] for s in states)
    out = torch.zeros(len(states), length, *states[0].shape[1:], dtype=states[0].dtype)
    mask = torch.zeros(len(states), length)
    for i, (s, m) in enumerate(zip(states, masks)):
        out[i, :s.shape[0]], mask[i, :m.shape[0]] = s, m
    return out, mask


def targets(examples: list[ReaderExample]) -> dict[str, torch.Tensor]:
    return {
        "motion": torch.tensor([MOTIONS.index(e.motion) for e in examples]),
        "colour": torch.tensor([COLOUR_LABELS.index(e.colour) for e in examples]),
        "shape": torch.tensor([SHAPE_LABELS.index(e.shape) for e in examples]),
    }


@torch.no_grad()
def score(reader: PromptReader, states: torch.Tensor, mask: torch.Tensor, examples: list[ReaderExample]) -> dict:
    """Held-out accuracy per head, and of the planner's decision (which object moves where, or nothing)."""
    from ..motion.prompt_motion import plans_object

    reads = []
    for i in range(0, len(examples), 512):
        reads += reader.read(states[i:i + 512], mask[i:i + 512])
    out = {head: sum(r[head][0] == getattr(e, head) for r, e in zip(reads, examples)) / len(examples)
           for head in HEADS}

    def decision(motion, colour, shape):
        return (motion, colour, shape) if plans_object(motion, shape) else None

    out["decision"] = sum(decision(*(r[h][0] for h in HEADS)) == decision(e.motion, e.colour, e.shape)
                          for r, e in zip(reads, examples)) / len(examples)
    return out


def grounded_score(reader: PromptReader, text_encoder, scenes: int) -> dict:
    """Plans on the shapes benchmark's held-out scenes (their held-out prompts and first frames): the share
    of object moves, grows and shrinks planned on the named object the right way, and of the other
    motions (camera, still) left unplanned."""
    from ..motion.prompt_motion import moves_an_object, plan_from_prompt
    from ..world.scenes import OBJECT_DIRECTIONS, render
    from ..world.scoring import heldout_cases

    right = {"object": [], "other": []}
    for scene, prompt in heldout_cases(scenes):
        planned = plan_from_prompt(reader, text_encoder, prompt, render(scene)[0])
        motion = scene.motion
        if not moves_an_object(motion):
            right["other"].append(planned is None)
            continue
        target = scene.objects[scene.target]
        path = None if planned is None else planned.trajectory
        ok = path is not None and path.name.split()[0] == target.colour
        if ok and motion.startswith("move_"):
            (_, x0, y0), (_, x1, y1) = path.points
            dx, dy = OBJECT_DIRECTIONS[motion[5:]]
            ok = (x1 - x0) * dx + (y1 - y0) * dy > 0.7 * math.hypot(x1 - x0, y1 - y0)  # within 45 degrees
        elif ok:
            ok = path.sizes is not None and (path.sizes[-1] > 1) == (motion == "grow")
        right["object"].append(ok)
    return {f"{k}_right": sum(v) / len(v) if v else None for k, v in right.items()} | {
        f"{k}_cases": len(v) for k, v in right.items()}


def parse_layers(text: str | None) -> list[int] | None:
    """``"0,3,6"`` -> [0, 3, 6], checked: hidden layers of MiniLM (0-6), rising, ending with the last (6)."""
    if text is None:
        return None
    try:
        layers = [int(k) for k in text.split(",")]
    except ValueError:
        raise TrainingSetupError(f"--layers: numbers 0 to 6 separated by commas, got {text!r}") from None
    if not readable_layers(layers):
        raise TrainingSetupError(f"--layers: rising hidden layers of MiniLM (0 to 6), ending with 6, got {text!r}")
    return layers


def main(argv=None) -> dict:
    from ..conditioning import MiniLMTextEncoder

    args = parse_args(argv)
    if min(args.examples, args.heldout, args.steps, args.batch_size, args.scenes) < 1 or not args.learning_rate > 0:
        raise TrainingSetupError("--examples, --heldout, --steps, --batch-size and --scenes must be >= 1 and "
                                 "--learning-rate > 0")
    if (args.output_dir is None) == (args.score is None):
        raise TrainingSetupError("give --output-dir (train a reader) or --score READER_DIR (score one)")
    if args.score is not None and args.layers is not None:
        raise TrainingSetupError("--layers is for training; --score reads the layers the reader was trained on")
    layers = parse_layers(args.layers)
    text_encoder = MiniLMTextEncoder()
    if args.score is not None:  # an existing reader, scored
        from ..motion.prompt_motion import read_reader_folder

        folder = Path(args.score)
        if not (folder / "config.json").is_file():
            raise TrainingSetupError(f"--score {args.score}: no prompt reader there (no config.json)")
        reader = read_reader_folder(folder)
        held = reader_examples(args.heldout, args.seed, "heldout")
        report = {"heldout": score(reader, *encode(held, text_encoder, reader.config.layers), held),
                  "grounded": grounded_score(reader, text_encoder, args.scenes)}
        print(json.dumps(report, indent=2))
        return report
    out = Path(args.output_dir)
    check_output_folder(out, [])
    torch.manual_seed(args.seed)
    train_set = reader_examples(args.examples, args.seed, "train")
    heldout_set = reader_examples(args.heldout, args.seed, "heldout")
    t0 = time.perf_counter()
    states, mask = encode(train_set, text_encoder, layers)
    held_states, held_mask = encode(heldout_set, text_encoder, layers)
    print(f"encoded {len(train_set) + len(heldout_set)} prompts in {time.perf_counter() - t0:.0f} s", flush=True)
    labels = targets(train_set)

    reader = PromptReader(motions=list(MOTIONS), colours=list(COLOUR_LABELS), shapes=list(SHAPE_LABELS), layers=layers)
    optimizer = torch.optim.AdamW(reader.parameters(), lr=args.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.learning_rate, total_steps=args.steps)
    generator = torch.Generator().manual_seed(args.seed)
    for step in range(1, args.steps + 1):
        reader.train()
        idx = torch.randint(len(train_set), (args.batch_size,), generator=generator)
        logits = reader(states[idx], mask[idx])
        loss = sum(F.cross_entropy(logits[h], labels[h][idx]) for h in HEADS)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 500 == 0 or step == args.steps:
            print(f"step {step}: loss {loss.item():.4f}", flush=True)

    report = {"heldout": score(reader, held_states, held_mask, heldout_set),
              "train": score(reader, states[:2000], mask[:2000], train_set[:2000]),
              "grounded": grounded_score(reader, text_encoder, args.scenes),
              "examples": args.examples, "steps": args.steps, "seed": args.seed}
    reader.save_pretrained(out, safe_serialization=True)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("heldout", "grounded")}, indent=2))
    return report


if __name__ == "__main__":
    main()
