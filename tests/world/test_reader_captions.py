"""The prompt reader's labelled prompts: labels say what the words say, held-out prompts use held-out
phrasings only, and the same seed gives the same prompts."""

from i2v.world.captions import COLOUR_WORDS, SHAPE_WORDS, TEMPLATES
from i2v.world.reader_captions import (ANY, COLOUR_LABELS, MOTIONS, NONE, OTHER, OTHER_SUBJECTS, SHAPE_LABELS,
                                       reader_examples)


def _says(prompt: str, table: dict, label: str) -> bool:
    from i2v.world.reader_captions import EXTRA_WORDS

    train, held = table[label]
    return any(word in prompt for word in train + held + EXTRA_WORDS.get(label, []))


def test_labels_are_what_the_prompt_says():
    examples = reader_examples(600, seed=1)
    assert {e.motion for e in examples} >= set(MOTIONS) - {"grow", "shrink"} | {OTHER}
    for e in examples:
        assert e.motion in MOTIONS and e.colour in COLOUR_LABELS and e.shape in SHAPE_LABELS
        if e.colour != NONE:
            assert _says(e.prompt, COLOUR_WORDS, e.colour), e
        if e.shape not in (NONE, ANY):
            assert _says(e.prompt, SHAPE_WORDS, e.shape), e
        if any(f" {noun}" in e.prompt for noun in OTHER_SUBJECTS) and e.shape == NONE:
            assert e.motion == OTHER or e.motion.startswith("move_")
        if e.motion in ("pan_left", "zoom_in", "static"):
            assert (e.colour, e.shape) == (NONE, NONE)


def test_the_same_seed_gives_the_same_prompts_and_splits_differ():
    assert reader_examples(50, seed=3) == reader_examples(50, seed=3)
    train = {e.prompt for e in reader_examples(400, seed=3)}
    held = {e.prompt for e in reader_examples(400, seed=3, split="heldout")}
    assert not train & held


def test_heldout_object_prompts_use_heldout_sentence_shapes():
    moves = [e for e in reader_examples(300, seed=0, split="heldout") if e.motion.startswith("move_") and
             e.shape != NONE]
    assert moves
    for e in moves:
        assert " is moving " in e.prompt or e.prompt.startswith("we see") or "," in e.prompt, e


def test_the_readers_extra_words_are_not_heldout_words():
    from i2v.world.captions import all_heldout_words
    from i2v.world.reader_captions import EXTRA_WORDS

    held = all_heldout_words()
    for words in EXTRA_WORDS.values():
        for word in words:
            assert not any(word in h or h in word for h in held), word
