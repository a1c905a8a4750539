"""Labelled prompts for the prompt reader (``models.prompt_reader``): what each caption says.

The world's own captions (``captions.caption_scene``, ``photos.captions.caption_camera``) name a
scene's motion; here the labels are what the words say, so the reader learns to read rather than to
guess the scene: an object named by colour and shape, by colour alone ("the crimson one": shape
``any``) or by shape alone (colour ``none``); camera moves (no object); and prompts about other
subjects ("the red car drives left", "the dog runs"), which name no shape, so nothing is planned
for them. ``split="heldout"`` uses only held-out templates and words, as the benchmarks do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .captions import (COLOUR_WORDS, DIRECTION_WORDS, FILLER_ADJECTIVES, MOVE_VERBS, REFERENCE_NOUNS, SHAPE_WORDS,
                       SPLITS, TEMPLATES, _pick)
from .photos.camera import CAMERA_MOTIONS
from .photos.captions import caption_camera
from .scenes import COLOURS, MOTION_WEIGHTS, SHAPES

OTHER = "other"  # a motion none of the world's: "the dog runs"
NONE = "none"  # no colour / no shape named
ANY = "any"  # an object named by colour alone: "the red one"
MOTIONS = (*MOTION_WEIGHTS, OTHER)
COLOUR_LABELS = (*COLOURS, NONE)
SHAPE_LABELS = (*SHAPES, ANY, NONE)
OBJECT_MOTIONS = tuple(m for m in MOTION_WEIGHTS if m.startswith("move_") or m in ("grow", "shrink", "still"))

# Subjects the world does not have, each with verbs of its own; a direction may follow.
OTHER_SUBJECTS: dict[str, list[str]] = {
    "dog": ["runs", "walks", "trots", "wags its tail"], "cat": ["walks", "jumps", "stretches"],
    "car": ["drives", "speeds", "turns"], "bird": ["flies", "soars", "flaps its wings"],
    "boat": ["sails", "drifts", "rocks on the water"], "man": ["walks", "waves", "turns his head"],
    "woman": ["walks", "smiles", "dances"], "child": ["runs", "plays", "jumps"], "horse": ["gallops", "trots"],
    "train": ["rolls", "speeds"], "leaf": ["falls", "flutters"], "flower": ["sways", "blooms"],
    "tree": ["sways in the wind", "bends"], "clouds": ["drift", "roll by"], "waves": ["crash", "roll in"],
    "plane": ["flies", "takes off"], "cyclist": ["rides", "pedals"], "robot": ["walks", "turns"],
    "water": ["ripples", "flows"], "smoke": ["rises", "curls"], "person": ["walks", "turns around"],
}
# More training words for the reader than the world's captions use (none of them a held-out word or part of
# one): a reader that has seen "brick" and "slab" for a square reads a held-out "tile" as a shape, not as a
# subject it does not know.
EXTRA_WORDS: dict[str, list[str]] = {
    "red": ["vermilion", "blood red", "rose red", "brick red"], "green": ["jade", "olive green", "mint green", "sage"],
    "blue": ["sapphire", "azure", "sky blue", "indigo"],
    "yellow": ["mustard", "butter yellow", "saffron", "sunny yellow"],
    "orange": ["copper", "apricot", "carrot orange", "rust orange"],
    "purple": ["mauve", "lavender", "grape", "magenta"],
    "white": ["pearl", "cream", "chalk white", "bone white"], "black": ["charcoal", "ebony", "onyx", "inky black"],
    "circle": ["sphere", "bubble", "marble", "coin", "ring", "globe", "round blob"],
    "square": ["cube", "brick", "slab", "crate", "rectangle", "panel", "four-sided shape"],
    "triangle": ["arrowhead", "cone", "spike", "delta", "pointed shape", "triangle shape"],
    "up": ["higher", "northward", "to the top side"], "down": ["southward", "to the bottom side", "downhill"],
    "left": ["westward", "to the left-hand side"], "right": ["eastward", "to the right-hand side"],
}

OTHER_ACTIONS = ["the {noun} {verb}", "a {noun} {verb}", "the {noun} slowly {verb}", "watch the {noun} as it {verb}"]


@dataclass(frozen=True)
class ReaderExample:
    prompt: str
    motion: str  # a key of MOTIONS
    colour: str  # of COLOUR_LABELS
    shape: str  # of SHAPE_LABELS


def _word(rng: np.random.Generator, table: dict, key: str, split: str) -> str:
    """A word for ``key``: training prompts draw from the world's training words and EXTRA_WORDS, held-out
    prompts as the world's held-out captions do."""
    train, held = table[key]
    return _pick(rng, (train + (EXTRA_WORDS.get(key, []) if split == "train" else []), held), split)


def _object_phrase(rng: np.random.Generator, split: str) -> tuple[str, str, str]:
    """(words, colour label, shape label): colour and shape, colour alone, or shape alone."""
    colour, shape = str(rng.choice(list(COLOURS))), str(rng.choice(SHAPES))
    colour_word, shape_word = _word(rng, COLOUR_WORDS, colour, split), _word(rng, SHAPE_WORDS, shape, split)
    form = rng.random()
    if form < 0.7:
        return f"{colour_word} {shape_word}", colour, shape
    if form < 0.85:
        return f"{colour_word} {rng.choice(REFERENCE_NOUNS)}", colour, ANY
    if rng.random() < 0.5:
        return shape_word, NONE, shape
    return f"{rng.choice(FILLER_ADJECTIVES)} {shape_word}", NONE, shape


def _object_example(rng: np.random.Generator, split: str) -> ReaderExample:
    motion = str(rng.choice(OBJECT_MOTIONS))
    words, colour, shape = _object_phrase(rng, split)
    key, fill = motion, {}
    if motion.startswith("move_"):
        key = "move"
        fill = {"dir": _word(rng, DIRECTION_WORDS, motion[5:], split), "verb": _pick(rng, MOVE_VERBS, split)}
    template = str(rng.choice(TEMPLATES[key][1 if split == "heldout" else 0]))
    prompt = template.format(obj=f"the {words}", Obj=f"The {words}", obj_bare=words, **fill)
    return ReaderExample(prompt, motion, colour, shape)


def _other_example(rng: np.random.Generator, split: str) -> ReaderExample:
    noun = str(rng.choice(list(OTHER_SUBJECTS)))
    colour = NONE
    if rng.random() < 0.4:
        colour = str(rng.choice(list(COLOURS)))
        noun_words = f"{_word(rng, COLOUR_WORDS, colour, split)} {noun}"
    else:
        noun_words = noun
    if rng.random() < 0.5:  # a move in a direction, in the world's own sentence shapes
        direction = str(rng.choice(list(DIRECTION_WORDS)))
        verb = str(rng.choice(OTHER_SUBJECTS[noun] if rng.random() < 0.5 else MOVE_VERBS[0]))
        template = str(rng.choice(TEMPLATES["move"][1 if split == "heldout" else 0]))
        prompt = template.format(obj=f"the {noun_words}", Obj=f"The {noun_words}", obj_bare=noun_words,
                                 dir=_word(rng, DIRECTION_WORDS, direction, split), verb=verb)
        return ReaderExample(prompt, f"move_{direction}", colour, NONE)
    prompt = str(rng.choice(OTHER_ACTIONS)).format(noun=noun_words, verb=rng.choice(OTHER_SUBJECTS[noun]))
    return ReaderExample(prompt, OTHER, colour, NONE)


def _camera_example(rng: np.random.Generator, split: str) -> ReaderExample:
    kind = str(rng.choice(CAMERA_MOTIONS))
    return ReaderExample(caption_camera(kind, rng, split), kind, NONE, NONE)


def reader_examples(n: int, seed: int, split: str = "train") -> list[ReaderExample]:
    """``n`` labelled prompts (same seed and split -> same prompts): objects (60%), camera (20%), other
    subjects (20%)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    makers = (_object_example, _camera_example, _other_example)
    return [makers[int(rng.choice(3, p=[0.6, 0.2, 0.2]))](rng, split) for _ in range(n)]
