"""Where the frozen MiniLM puts each held-out synonym: its nearest training synonym, layer by layer.

    .venv/bin/python benchmarks/probe_text_encoder.py [--table colour shape direction pan]

The denoiser learns what words mean only from the training split's captions, so it can place a
held-out word ("golden") only as far as the text encoder already puts it near training words of the
same class ("yellow", "lemon yellow", ...). For every held-out synonym in ``captions.py`` this
script sets the word in a caption ("the golden circle moves to the left") and compares its MiniLM
token states (mean over its word pieces) with those of every training synonym in the same caption,
at each hidden layer: 0 is the input embeddings, 6 the final states the denoiser cross-attends to.
It also compares the sentence embeddings of the bare phrases (mean-pooled final states, what MiniLM
was trained to make similar for paraphrases). It prints the nearest training synonym's class per
layer (upper case where it is the word's own class) and, per layer, how many held-out words land in
their own class.
"""

from __future__ import annotations

import argparse

import torch

from i2v.conditioning import MiniLMTextEncoder
from i2v.data.captions import COLOUR_WORDS, DIRECTION_WORDS, PAN_WORDS, SHAPE_WORDS

# table name -> (word table, caption with {} where the word goes)
TABLES = {
    "colour": (COLOUR_WORDS, "the {} circle moves to the left"),
    "shape": (SHAPE_WORDS, "the red {} moves to the left"),
    "direction": (DIRECTION_WORDS, "the red circle moves {}"),
    "pan": (PAN_WORDS, "the camera pans {}"),
}
SENTENCE = "sentence"  # the column of the pooled sentence embedding of the bare phrase


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


def probe(encoder: MiniLMTextEncoder, table: dict, caption: str) -> list[dict]:
    """One row per held-out synonym: its class and, per layer, the class of its nearest training synonym."""
    training = [(word, cls) for cls, (train, _) in table.items() for word in train]
    train_states = torch.stack([phrase_states(encoder, caption.format(w), w) for w, _ in training])  # (N, layers, D)
    train_pooled = encoder.encode([w for w, _ in training]).pooled  # (N, D)
    rows = []
    for cls, (_, heldout) in table.items():
        for word in heldout:
            states = phrase_states(encoder, caption.format(word), word)  # (layers, D)
            sims = torch.einsum("nld,ld->ln", train_states, states)  # (layers, N)
            nearest = {layer: training[int(i)] for layer, i in enumerate(sims.argmax(-1))}
            nearest[SENTENCE] = training[int((train_pooled @ encoder.encode([word]).pooled[0]).argmax())]
            rows.append({"word": word, "class": cls, "nearest": nearest})
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--table", nargs="+", default=list(TABLES), choices=list(TABLES))
    args = p.parse_args(argv)
    encoder = MiniLMTextEncoder()
    for name in args.table:
        table, caption = TABLES[name]
        rows = probe(encoder, table, caption)
        columns = list(rows[0]["nearest"])  # layers 0..6, then the sentence embedding
        labels = [c if c == SENTENCE else f"L{c}" for c in columns]
        print(f"\n{name} (in {caption.format('…')!r}): class of the nearest training synonym, "
              "UPPER CASE where it is the word's own class")
        print(f"{'held-out':24} {'class':11} " + " ".join(f"{label:>11}" for label in labels))
        for row in rows:
            classes = [row["nearest"][c][1] for c in columns]
            cells = [cls.upper() if cls == row["class"] else cls for cls in classes]
            print(f"{row['word']:24} {row['class']:11} " + " ".join(f"{cell:>11}" for cell in cells))
        right = [sum(r["nearest"][c][1] == r["class"] for r in rows) for c in columns]
        print(f"{'in their own class':36} " + " ".join(f"{f'{n}/{len(rows)}':>11}" for n in right))


if __name__ == "__main__":
    main()
