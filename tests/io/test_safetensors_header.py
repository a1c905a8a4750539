"""Broken weight files are named before any loading: truncated, forged header lengths, bad entries,
missing keys and wrong shapes, through the embedded model's folder and the CLI (exit 2, no traceback)."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from i2v.cli import main
from i2v.errors import WeightsError
from i2v.io.safetensors_header import check_weight_files, read_header, weights_errors


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(4, 3), "b": torch.ones(5, dtype=torch.float16)}, str(path))
    return path


def test_a_good_file_reads_back(weights):
    header = read_header(weights)
    assert header["a"]["shape"] == [4, 3] and header["b"]["dtype"] == "F16"


def test_truncated_file_is_named(weights):
    data = weights.read_bytes()
    weights.write_bytes(data[:-6])
    with pytest.raises(WeightsError, match="truncated: tensor"):
        read_header(weights)


@pytest.mark.parametrize("length", [2**63, 10**9, 200 * 1024 * 1024])
def test_forged_header_length_is_refused_without_reading_it(tmp_path, length):
    path = tmp_path / "w.safetensors"
    path.write_bytes(length.to_bytes(8, "little") + b"{}")
    with pytest.raises(WeightsError, match="broken safetensors header"):
        read_header(path)


@pytest.mark.parametrize("header, match", [
    (b"[1, 2]", "not a JSON object"),
    (b"{not json", "not JSON"),
    (json.dumps({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}}).encode(), "spans 4 bytes"),
    (json.dumps({"a": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}).encode(), "entry for 'a'"),
    (b'{"a": {"dtype": "F32", "shape": [1e400], "data_offsets": [0, 8]}}', "entry for 'a'"),
    (b"[" * 100000 + b"]" * 100000, "not JSON"),
])
def test_bad_headers(tmp_path, header, match):
    path = tmp_path / "w.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + b"\0" * 8)
    with pytest.raises(WeightsError, match=match):
        read_header(path)


def test_short_file(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"abc")
    with pytest.raises(WeightsError, match="not a safetensors file"):
        check_weight_files(tmp_path)


def test_weights_errors_translates_loader_failures_only(tmp_path):
    with pytest.raises(WeightsError, match="do not load: size mismatch"):
        with weights_errors(tmp_path):
            raise RuntimeError("size mismatch for conv.weight\nmore detail")
    with pytest.raises(ZeroDivisionError):  # not a loading failure: left alone
        with weights_errors(tmp_path):
            raise ZeroDivisionError


def broken_copy(tiny_model_dir, tmp_path, how: str):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    unet = model / "unet" / "diffusion_pytorch_model.safetensors"
    if how == "truncated":
        unet.write_bytes(unet.read_bytes()[:-100])
    else:
        state = load_file(str(unet))
        if how == "missing key":
            state.pop(sorted(state)[0])
        elif how == "wrong shape":
            name = next(k for k, v in state.items() if v.ndim == 2)
            state[name] = torch.zeros(state[name].shape[0] + 1, state[name].shape[1])
        save_file(state, str(unet))
    return model


@pytest.mark.parametrize("how, match", [("truncated", "truncated"), ("missing key", "lack|missing"),
                                        ("wrong shape", "do not load")])
def test_broken_model_weights_exit_2_naming_the_folder(tiny_model_dir, sample_image_path, tmp_path, capsys, how,
                                                       match):
    model = broken_copy(tiny_model_dir, tmp_path, how)
    out = tmp_path / "clip.mp4"
    code = main(["generate", str(sample_image_path), "-p", "x", "-m", str(model), "--num-inference-steps", "2",
                 "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert str(model) in err and re.search(match, err), err
    assert not out.exists()
