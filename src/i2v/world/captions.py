"""Free-English captions for procedural scenes, with a held-out split of phrasings.

Each motion has many sentence shapes and synonyms. ``split="train"`` draws only from the
training phrasings; ``split="heldout"`` draws only from phrasings (templates and a few
synonyms) that training never sees, so the benchmark measures paraphrase generalisation
through the frozen sentence encoder.
"""

from __future__ import annotations

import re

import numpy as np

from .scenes import Scene

# word -> (training synonyms, held-out synonyms)
COLOUR_WORDS: dict[str, tuple[list[str], list[str]]] = {
    "red": (["red", "crimson", "bright red", "cherry red", "ruby"], ["scarlet"]),
    "green": (["green", "lime green", "grass green", "forest green"], ["emerald"]),
    "blue": (["blue", "deep blue", "royal blue", "cobalt"], ["navy blue"]),
    "yellow": (["yellow", "lemon yellow", "canary yellow", "bright yellow"], ["golden"]),
    "orange": (["orange", "tangerine", "bright orange", "pumpkin orange"], ["amber"]),
    "purple": (["purple", "violet", "plum", "deep purple"], ["lilac"]),
    "white": (["white", "snow white", "pure white", "milky white"], ["ivory"]),
    "black": (["black", "jet black", "pitch black", "coal black"], ["dark black"]),
}
SHAPE_WORDS: dict[str, tuple[list[str], list[str]]] = {
    "circle": (["circle", "disc", "ball", "dot", "round shape", "circular shape"], ["orb"]),
    "square": (["square", "box", "block", "square shape"], ["tile"]),
    "triangle": (["triangle", "triangular shape", "wedge", "three-sided shape"], ["pyramid shape"]),
}
DIRECTION_WORDS: dict[str, tuple[list[str], list[str]]] = {
    "left": (["left", "to the left", "toward the left edge", "leftward", "over to the left", "in the left direction"],
             ["towards the left side"]),
    "right": (["right", "to the right", "toward the right edge", "rightward", "over to the right",
               "in the right direction"],
              ["towards the right side"]),
    "up": (["up", "upward", "toward the top", "to the top of the frame", "toward the top edge", "up the frame"],
           ["skyward"]),
    "down": (["down", "downward", "toward the bottom", "to the bottom of the frame", "toward the bottom edge",
              "down the frame"],
             ["towards the floor"]),
    "up_left": (["up and to the left", "diagonally up-left", "toward the top left corner", "up-left"],
                ["to the upper left"]),
    "up_right": (["up and to the right", "diagonally up-right", "toward the top right corner", "up-right"],
                 ["to the upper right"]),
    "down_left": (["down and to the left", "diagonally down-left", "toward the bottom left corner", "down-left"],
                  ["to the lower left"]),
    "down_right": (["down and to the right", "diagonally down-right", "toward the bottom right corner", "down-right"],
                   ["to the lower right"]),
}
MOVE_VERBS = (["moves", "slides", "drifts", "travels", "glides", "goes", "shifts", "creeps", "wanders",
               "sails", "coasts"], ["heads", "floats"])

# Templates: {obj} "the red circle", {verb} a movement verb, {dir} a direction phrase.
TEMPLATES: dict[str, tuple[list[str], list[str]]] = {
    "move": (
        ["{obj} {verb} {dir}", "the {obj_bare} {verb} {dir}", "{obj} {verb} slowly {dir}",
         "a video of {obj} that {verb} {dir}", "{Obj} {verb} {dir}.", "watch {obj} {verb} {dir}",
         "here {obj} {verb} {dir}", "in this clip, {obj} {verb} {dir}", "{obj} {verb} {dir} over time"],
        ["{dir}, {obj} {verb}", "we see {obj} as it {verb} {dir}", "{obj} is moving {dir}"],
    ),
    "grow": (
        ["{obj} grows", "{obj} gets bigger", "{obj} expands", "{Obj} grows larger.", "{obj} swells up",
         "{obj} gets larger", "{obj} scales up", "{obj} enlarges", "{obj} inflates"],
        ["{obj} increases in size", "{obj} becomes larger and larger"],
    ),
    "shrink": (
        ["{obj} shrinks", "{obj} gets smaller", "{obj} contracts", "{Obj} shrinks away.", "{obj} gets tiny",
         "{obj} scales down", "{obj} dwindles", "{obj} deflates"],
        ["{obj} decreases in size", "{obj} becomes smaller and smaller"],
    ),
    "still": (
        ["{obj} stays still", "{obj} does not move", "{obj} remains in place", "{Obj} sits still.",
         "{obj} holds still", "{obj} does not budge", "{obj} stays where it is"],
        ["{obj} is motionless", "{obj} stays put"],
    ),
    "static": (
        ["nothing moves", "a still scene", "everything stays still", "a static shot, no motion",
         "no motion", "a still image", "the shot holds steady", "nothing happens"],
        ["the scene is frozen", "no movement at all"],
    ),
    "pan": (
        ["the camera pans {dir}", "camera pans {dir}", "panning {dir}", "the camera turns {dir}",
         "The view pans {dir}.", "the shot pans {dir}", "the frame pans {dir}", "we pan {dir}",
         "the camera {verb} {dir}", "The camera {verb} {dir}."],
        ["a slow pan {dir}", "the camera swings {dir}"],
    ),
    "zoom_in": (
        ["the camera zooms in", "zoom in", "camera zooming in", "the camera pushes in", "The view zooms in.",
         "the shot zooms in", "zooming in", "the view pushes in", "the camera {verb} in", "the camera {verb} forward",
         "the camera dollies in", "the camera closes in", "a zoom in", "a push-in shot", "the camera approaches",
         "the view tightens", "the shot gets tighter"],
        ["the camera moves closer", "a slow zoom into the scene"],
    ),
    "zoom_out": (
        ["the camera zooms out", "zoom out", "camera zooming out", "the camera pulls back", "The view zooms out.",
         "the shot zooms out", "zooming out", "the view pulls back", "the camera {verb} back",
         "the camera {verb} backward", "the camera dollies out", "the camera backs off", "a zoom out",
         "a pull-back shot", "the camera retreats", "the camera recedes", "the view widens", "the shot gets wider"],
        ["the camera moves away", "a slow zoom away from the scene"],
    ),
}
PAN_WORDS: dict[str, tuple[list[str], list[str]]] = {
    "pan_left": (["left", "to the left", "toward the left"], ["leftwards"]),
    "pan_right": (["right", "to the right", "toward the right"], ["rightwards"]),
    "pan_up": (["up", "upward", "toward the top"], ["upwards"]),
    "pan_down": (["down", "downward", "toward the bottom"], ["downwards"]),
}

# Camera motions whose training templates also say it with an object-movement verb ("the camera
# drifts forward"), so the subject of the verb, not the verb, decides what moves.
CAMERA_MOVE_KEYS = ("pan", "zoom_in", "zoom_out")

# Partial references (training only): "the crimson one", "the disc", "the shiny disc". Naming an
# object by one attribute teaches the denoiser to find it from whichever words it knows, so an
# unknown colour word in front of a known shape still picks out the shape (and vice versa).
#
# Misnamed colours (training only): "the green disc" for the scene's only disc when it is white and
# nothing in the scene is green. People name colours loosely, and a colour word the text encoder
# misreads (a rare synonym) reads as some other colour; either way a shape that picks out one object
# should still find it rather than leave the scene still.
REFERENCE_NOUNS = ["one", "shape", "object", "thing"]
FILLER_ADJECTIVES = ["shiny", "plain", "flat", "solid", "simple", "smooth", "glossy", "matte"]

SPLITS = ("train", "heldout")


def _pick(rng: np.random.Generator, options: tuple[list[str], list[str]], split: str, p_heldout_word: float = 0.5) -> str:
    """Training phrasings for split="train"; for "heldout", a held-out word half of the time."""
    train, held = options
    if split == "heldout" and rng.random() < p_heldout_word:
        return str(rng.choice(held))
    return str(rng.choice(train))


def _target_shape_is_unique(scene: Scene) -> bool:
    """Whether the target's shape alone picks it out (colours are unique within a scene)."""
    target = scene.objects[scene.target]
    return sum(o.shape == target.shape for o in scene.objects) == 1


def _partial_reference(scene: Scene, colour: str, shape: str, rng: np.random.Generator) -> str:
    """The target named by its colour word alone, or by its shape word alone (bare or behind a
    non-colour adjective) when no other object shares that shape."""
    form = rng.integers(3) if _target_shape_is_unique(scene) else 0
    if form == 0:
        return f"{colour} {rng.choice(REFERENCE_NOUNS)}"
    return shape if form == 1 else f"{rng.choice(FILLER_ADJECTIVES)} {shape}"


def _absent_colour_word(scene: Scene, rng: np.random.Generator) -> str:
    """A training word for a colour no object in the scene has."""
    present = {o.colour for o in scene.objects}
    absent = [c for c in COLOUR_WORDS if c not in present]  # 8 colours, at most 3 objects
    return str(rng.choice(COLOUR_WORDS[str(rng.choice(absent))][0]))


def caption_scene(scene: Scene, rng: np.random.Generator, split: str = "train", p_partial: float = 0.0,
                  p_misnamed_colour: float = 0.0) -> str:
    """A caption naming the scene's motion, in the given split's phrasings.

    Training-split augmentations, each making no extra random draw at 0 (captions unchanged):
    ``p_partial``, the chance of naming the target by one attribute (see ``_partial_reference``);
    ``p_misnamed_colour``, of the rest, the chance of giving it a colour no object has when its
    shape alone picks it out (see "Misnamed colours" above).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    heldout = split == "heldout"
    if heldout and (p_partial or p_misnamed_colour):
        raise ValueError("partial references and misnamed colours are training augmentations; "
                         "held-out captions name colour and shape")
    obj_bare = ""
    if scene.target is not None:
        o = scene.objects[scene.target]
        colour, shape = _pick(rng, COLOUR_WORDS[o.colour], split), _pick(rng, SHAPE_WORDS[o.shape], split)
        obj_bare = f"{colour} {shape}"
        if p_partial and rng.random() < p_partial:
            obj_bare = _partial_reference(scene, colour, shape, rng)
        elif p_misnamed_colour and rng.random() < p_misnamed_colour and _target_shape_is_unique(scene):
            obj_bare = f"{_absent_colour_word(scene, rng)} {shape}"
    motion = scene.motion
    if motion.startswith("move_"):
        key, words = "move", {"dir": _pick(rng, DIRECTION_WORDS[motion[5:]], split),
                              "verb": _pick(rng, MOVE_VERBS, split)}
    elif motion.startswith("pan_"):
        key, words = "pan", {"dir": _pick(rng, PAN_WORDS[motion], split)}
    else:
        key, words = motion, {}
    if key in CAMERA_MOVE_KEYS and not heldout:
        # drawn for training captions only, so held-out captions keep their random draws
        words["verb"] = _pick(rng, MOVE_VERBS, split)
    templates = TEMPLATES[key][1 if heldout else 0]
    template = str(rng.choice(templates))
    return template.format(obj=f"the {obj_bare}", Obj=f"The {obj_bare}", obj_bare=obj_bare, **words)


def _synonym_pairs():
    """(training synonyms, held-out synonyms) of every word table."""
    for table in (COLOUR_WORDS, SHAPE_WORDS, DIRECTION_WORDS, PAN_WORDS):
        yield from table.values()
    yield MOVE_VERBS
    yield REFERENCE_NOUNS, []
    yield FILLER_ADJECTIVES, []


def all_training_words() -> set[str]:
    """Every word training captions may use (tests check held-out words are new)."""
    return {w for train, _ in _synonym_pairs() for w in train}


def all_heldout_words() -> set[str]:
    """Every held-out synonym (colours, shapes, directions, pan words, verbs)."""
    return {w for _, held in _synonym_pairs() for w in held}


def heldout_words_in(caption: str) -> list[str]:
    """The held-out synonyms ``caption`` uses, longest first; a held-out caption that uses none
    differs from training captions only in its sentence shape (its template)."""
    text, found = caption.lower(), []
    for word in sorted(all_heldout_words(), key=len, reverse=True):
        pattern = rf"\b{re.escape(word)}\b"
        if re.search(pattern, text):
            found.append(word)
            text = re.sub(pattern, "|", text)  # so a shorter held-out word inside it is not counted again
    return found
