"""PromptReader: per-head logits from MiniLM states, padding ignored, a save/load round trip."""

import torch

from i2v.models.prompt_reader import PromptReader


def _reader():
    torch.manual_seed(0)
    return PromptReader(motions=["move_left", "pan_left", "other"], colours=["red", "none"],
                        shapes=["circle", "any", "none"], text_dim=16).eval()


def test_logits_per_head_and_padding_is_ignored():
    reader = _reader()
    states, mask = torch.randn(2, 5, 16), torch.ones(2, 5)
    logits = reader(states, mask)
    assert {k: tuple(v.shape) for k, v in logits.items()} == {"motion": (2, 3), "colour": (2, 2), "shape": (2, 3)}
    padded, padded_mask = torch.cat([states, torch.randn(2, 3, 16)], 1), torch.cat([mask, torch.zeros(2, 3)], 1)
    for k, v in reader(padded, padded_mask).items():
        torch.testing.assert_close(v, logits[k])


def test_read_names_labels_with_probabilities_and_survives_a_round_trip(tmp_path):
    reader = _reader()
    states, mask = torch.randn(3, 4, 16), torch.ones(3, 4)
    read = reader.read(states, mask)
    assert len(read) == 3 and read[0]["motion"][0] in ("move_left", "pan_left", "other")
    assert all(0 < p <= 1 for r in read for _, p in r.values())
    reader.save_pretrained(tmp_path, safe_serialization=True)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = PromptReader.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert loaded.read(states, mask) == read
