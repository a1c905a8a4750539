"""PromptReader: per-head logits from MiniLM states, padding ignored, a save/load round trip."""

import pytest
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


def test_a_reader_of_several_layers_mixes_them_per_head_and_starts_from_their_mean(tmp_path):
    """With ``layers``, each head reads a learned softmax mix of the layers' states (equal weights at the
    start); the sentence embedding stays the last layer's mean. It survives a round trip."""
    torch.manual_seed(0)
    reader = PromptReader(motions=["move_left", "other"], colours=["red", "none"], shapes=["circle", "none"],
                          text_dim=16, layers=[2, 4, 6]).eval()
    states, mask = torch.randn(2, 5, 3, 16), torch.ones(2, 5)
    head = reader.heads["motion"]
    sentence = torch.nn.functional.normalize(states[:, :, -1].mean(1), dim=-1)
    mixed = head(states, mask, sentence)
    mean = states.mean(2, keepdim=True).expand(-1, -1, 3, -1).contiguous()  # every layer: the layers' mean
    torch.testing.assert_close(mixed, head(mean, mask, sentence))
    with torch.no_grad():
        head.mix.copy_(torch.tensor([-30.0, -30.0, 30.0]))  # all weight on the last layer
    only_last = head(states, mask, sentence)
    torch.testing.assert_close(only_last, head(states[:, :, -1:].expand(-1, -1, 3, -1).contiguous(), mask, sentence))
    assert not torch.allclose(only_last, mixed)
    with pytest.raises(ValueError, match="layers"):  # the last layer's states alone are not what it reads
        reader(states[:, :, -1], mask)
    reader.save_pretrained(tmp_path, safe_serialization=True)
    loaded = PromptReader.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert loaded.config.layers == [2, 4, 6] and loaded.read(states, mask) == reader.read(states, mask)
