"""Where the frozen MiniLM puts each held-out synonym, layer by layer, by two readouts.

    .venv/bin/python benchmarks/probe_text_encoder.py [--table colour shape direction pan] [--report REPORT.json]

The denoiser learns what words mean only from the training split's captions, so it can place a
held-out word ("golden") only as far as the text encoder's states for it relate to those of the
training words ("yellow", "lemon yellow", ...). For every held-out synonym in ``captions.py`` this
script sets the word in captions ("the golden circle moves to the left") and takes its MiniLM token
states (mean over its word pieces) at each hidden layer: 0 is the input embeddings, 6 the final
states the denoiser cross-attends to. Two readouts, each printed as the class it gives every
held-out word per layer (upper case where it is the word's own class) and a count per layer:

* nearest: the class of the most similar training synonym in the same caption, and in the
  sentence embeddings of the bare phrases (mean-pooled final states, what MiniLM was trained to
  make similar for paraphrases);
* linear: a ridge regression fitted on the training synonyms (in four captions) to what the class
  means in the world (a colour's RGB, a direction's unit vector, a shape's one-hot), read out for
  the held-out word and mapped to the nearest class. A learned denoiser reads the states through
  learned maps, so this is the closer estimate of what training can generalise to.

With ``--report`` (the ``report.json`` of ``i2v benchmark --phrasing both``) it then splits that run's
held-out-word cases by the linear readout at layer 6: cases whose held-out words it all places in their
own class, and cases with a word it does not place (no denoiser trained on the training words can read
that word). Held-out verbs ("heads", "floats") are in no table, so they do not decide a case's group.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from i2v.world.benchmark import paraphrase_breakdown
from i2v.conditioning import MiniLMTextEncoder
from i2v.world.captions import COLOUR_WORDS, DIRECTION_WORDS, PAN_WORDS, SHAPE_WORDS
from i2v.world.scenes import CAMERA_PANS, COLOURS, OBJECT_DIRECTIONS, SHAPES

# table name -> (word table, what each class means as a vector, captions with {} where the word
# goes; the nearest readout uses the first)
TABLES = {
    "colour": (COLOUR_WORDS, {c: np.array(rgb) / 255 for c, rgb in COLOURS.items()},
               ["the {} circle moves to the left", "the {} square grows", "watch the {} triangle drift up",
                "the {} ball stays still"]),
    "shape": (SHAPE_WORDS, {s: np.eye(len(SHAPES))[i] for i, s in enumerate(SHAPES)},
              ["the red {} moves to the left", "the blue {} grows", "watch the white {} drift up",
               "the green {} stays still"]),
    "direction": (DIRECTION_WORDS, OBJECT_DIRECTIONS,
                  ["the red circle moves {}", "the blue square drifts {}", "watch the white disc slide {}",
                   "the green wedge travels {}"]),
    "pan": (PAN_WORDS, CAMERA_PANS, ["the camera pans {}", "the shot pans {}", "we pan {}", "the view pans {}"]),
}
DENOISER_LAYER = 6  # the final states, which the denoiser cross-attends to
SENTENCE = "sentence"  # the nearest readout's column of the pooled sentence embeddings
RIDGE = 0.1  # the linear readout's L2 penalty; 384-dim states, a few hundred training rows


@torch.no_grad()
def phrase_states(encoder: MiniLMTextEncoder, caption: str, phrase: str) -> torch.Tensor:
    """(layers, 384) L2-normalised mean token state of ``phrase`` inside ``caption``, every layer."""
    tokens = encoder.tokenizer(caption, return_tensors="pt")
    pieces = encoder.tokenizer(phrase, add_special_tokens=False)["input_ids"]
    seq = tokens["input_ids"][0].tolist()
    start = next(i for i in range(len(seq)) if seq[i:i + len(pieces)] == pieces)
    hidden = encoder.model(**tokens, output_hidden_states=True).hidden_states  # layers x (1, L, 384)
    states = torch.stack([h[0, start:start + len(pieces)].mean(0) for h in hidden])
    return torch.nn.functional.normalize(states, dim=-1)


def table_states(encoder: MiniLMTextEncoder, table: dict, captions: list[str]) -> dict[str, torch.Tensor]:
    """word -> (captions, layers, D) states of every training and held-out synonym in ``table``."""
    words = [w for train, heldout in table.values() for w in (*train, *heldout)]
    return {w: torch.stack([phrase_states(encoder, c.format(w), w) for c in captions]) for w in words}


def nearest_readout(encoder: MiniLMTextEncoder, table: dict, states: dict[str, torch.Tensor]) -> list[dict]:
    """One row per held-out synonym: its class and, per layer, the class of its nearest training synonym
    (in the first caption), and of its nearest in the sentence embeddings of the bare phrases."""
    training = [(word, cls) for cls, (train, _) in table.items() for word in train]
    train_states = torch.stack([states[w][0] for w, _ in training])  # (N, layers, D)
    train_pooled = encoder.encode([w for w, _ in training]).pooled  # (N, D)
    rows = []
    for cls, (_, heldout) in table.items():
        for word in heldout:
            sims = torch.einsum("nld,ld->ln", train_states, states[word][0])  # (layers, N)
            classes = {layer: training[int(i)][1] for layer, i in enumerate(sims.argmax(-1))}
            classes[SENTENCE] = training[int((train_pooled @ encoder.encode([word]).pooled[0]).argmax())][1]
            rows.append({"word": word, "class": cls, "classes": classes})
    return rows


def linear_readout(table: dict, meaning: dict, states: dict[str, torch.Tensor]) -> list[dict]:
    """One row per held-out synonym: its class and, per layer, the class a ridge readout gives it."""
    names = list(table)
    targets = torch.tensor(np.stack([meaning[c] for c in names]), dtype=torch.float32)  # (K, d)
    training = [(word, k) for k, c in enumerate(names) for word in table[c][0]]
    x = torch.cat([states[w] for w, _ in training]).transpose(0, 1)  # (layers, N * captions, D)
    y = targets[[k for w, k in training for _ in range(len(states[w]))]]  # (N * captions, d)
    eye = torch.eye(x.shape[-1])
    readout = torch.stack([torch.linalg.solve(a.T @ a + RIDGE * eye, a.T @ y) for a in x])  # (layers, D, d)
    rows = []
    for cls, (_, heldout) in table.items():
        for word in heldout:
            read = torch.einsum("cld,ldk->lk", states[word], readout) / len(states[word])  # (layers, d)
            nearest = torch.cdist(read, targets).argmin(-1)  # (layers,)
            rows.append({"word": word, "class": cls, "classes": {layer: names[int(k)] for layer, k in enumerate(nearest)}})
    return rows


def print_table(title: str, rows: list[dict]) -> None:
    columns = list(rows[0]["classes"])  # layers 0..6, then (nearest readout) the sentence embedding
    labels = [c if c == SENTENCE else f"L{c}" for c in columns]
    print(f"\n{title}, UPPER CASE where it is the word's own class")
    print(f"{'held-out':24} {'class':11} " + " ".join(f"{label:>11}" for label in labels))
    for row in rows:
        cells = [cls.upper() if cls == row["class"] else cls for cls in row["classes"].values()]
        print(f"{row['word']:24} {row['class']:11} " + " ".join(f"{cell:>11}" for cell in cells))
    right = [sum(r["classes"][c] == r["class"] for r in rows) for c in columns]
    print(f"{'in their own class':36} " + " ".join(f"{f'{n}/{len(rows)}':>11}" for n in right))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", nargs="+", default=list(TABLES), choices=list(TABLES))
    p.add_argument("--report", default=None,
                   help="report.json of `i2v benchmark --phrasing both`: split its gap by the words placed at layer 6")
    args = p.parse_args(argv)
    encoder = MiniLMTextEncoder()
    unplaced = set()
    for name in args.table:
        table, meaning, captions = TABLES[name]
        states = table_states(encoder, table, captions)
        print_table(f"{name} (in {captions[0].format('…')!r}): class of the nearest training synonym",
                    nearest_readout(encoder, table, states))
        linear = linear_readout(table, meaning, states)
        print_table(f"{name} (in {len(captions)} captions): class nearest the linear readout", linear)
        unplaced |= {r["word"] for r in linear if r["classes"][DENOISER_LAYER] != r["class"]}
    if args.report:
        cases = json.loads(Path(args.report).read_text())["cases"]
        breakdown = paraphrase_breakdown(cases, unplaced)
        print(f"\nheld-out words the layer-{DENOISER_LAYER} linear readout does not place: {', '.join(sorted(unplaced))}")
        print(f"{'held-out-word cases of ' + args.report:60} {'cases':>6} {'held-out':>9} {'training':>9} {'gap':>8}")
        for group, label in (("placed", "every held-out word placed"), ("unplaced", "a word not placed")):
            g = breakdown[group]
            gap = f"{100 * (g['heldout'] - g['train']):+.1f}" if g["n"] else "n/a"
            print(f"{label:60} {g['n']:>6} {g['heldout']:>9.1%} {g['train']:>9.1%} {gap:>8}")


if __name__ == "__main__":
    main()
