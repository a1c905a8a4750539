"""Sound tracks in i2v.io.video: AAC in mp4, Opus in webm, a WAV beside GIF / WebP / PNG frames.

A 440 Hz tone is written with a short clip and read back with PyAV: the stream's codec, sample rate,
channels and duration, and the tone's frequency (the codecs are lossy, the WAV is exact).
"""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from i2v.io.video import (
    FILE_RECORD_KEY,
    as_audio_array,
    audio_path,
    read_metadata,
    read_video,
    write_video,
)
from i2v.types import GenerationResult

FPS = 24
SECONDS = 1.0


def clip(num_frames: int = int(FPS * SECONDS), size: int = 32) -> np.ndarray:
    """A (T, H, W, 3) uint8 clip whose green channel changes per frame."""
    video = np.zeros((num_frames, size, size, 3), np.uint8)
    video[..., 1] = (np.arange(num_frames) * 9 % 256)[:, None, None]
    return video


def tone(sample_rate: int, seconds: float = SECONDS, channels: int = 2, hz: float = 440.0) -> np.ndarray:
    """(channels, samples) float32: a sine at ``hz``, amplitude 0.5 (the right channel a bit quieter)."""
    t = np.arange(round(sample_rate * seconds)) / sample_rate
    wave = 0.5 * np.sin(2 * np.pi * hz * t)
    return np.stack([wave * (1 - 0.2 * c) for c in range(channels)]).astype(np.float32)


def read_audio(path) -> tuple[np.ndarray, int, str, float | None]:
    """(samples (C, N) float32, sample rate, codec, the stream's duration in seconds) of a file's sound."""
    with av.open(str(path)) as container:
        assert container.streams.audio, f"{path} has no audio stream"
        stream = container.streams.audio[0]
        chunks = []
        for frame in container.decode(stream):
            data = frame.to_ndarray()
            if not frame.format.is_planar:  # packed (1, N * C) -> (C, N)
                data = data.reshape(-1, len(frame.layout.channels)).T
            chunks.append(data.astype(np.float32))
        duration = float(stream.duration * stream.time_base) if stream.duration else None
        return np.concatenate(chunks, axis=1), stream.sample_rate, stream.codec_context.name, duration


def peak_hz(samples: np.ndarray, sample_rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples[0] * np.hanning(samples.shape[1])))
    return float(np.argmax(spectrum) * sample_rate / samples.shape[1])


@pytest.mark.parametrize("rate", [24000, 48000, 16000])
def test_mp4_holds_the_tone_as_aac(tmp_path, rate):
    path = write_video(clip(), tmp_path / "tone.mp4", fps=FPS, audio=tone(rate), audio_sample_rate=rate)
    samples, read_rate, codec, duration = read_audio(path)
    assert (codec, read_rate, samples.shape[0]) == ("aac", rate, 2)
    assert duration == pytest.approx(SECONDS, abs=1e-3)  # the container's edit list trims the encoder's padding
    assert abs(samples.shape[1] - rate * SECONDS) <= 1024  # decoded: at most one AAC frame of padding more
    assert peak_hz(samples, read_rate) == pytest.approx(440, abs=2)
    middle = samples[0, rate // 4: 3 * rate // 4]
    assert np.sqrt(np.mean(middle ** 2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)  # the tone's loudness
    frames, fps = read_video(path)  # the video is untouched by the sound track
    assert frames.shape == clip().shape and fps == FPS
    record = read_metadata(path)[FILE_RECORD_KEY]["audio"]
    assert record == {"sample_rate": rate, "channels": 2, "num_samples": rate, "duration": 1.0, "codec": "aac",
                      "stored_sample_rate": rate}


@pytest.mark.parametrize("rate", [48000, 24000])
def test_webm_holds_the_tone_as_opus_at_48_khz(tmp_path, rate):
    """Opus runs at 48 kHz: a 24 kHz track is resampled, and keeps its duration and pitch."""
    path = write_video(clip(), tmp_path / "tone.webm", fps=FPS, audio=tone(rate), audio_sample_rate=rate)
    samples, read_rate, codec, _ = read_audio(path)
    assert (codec, read_rate, samples.shape[0]) == ("opus", 48000, 2)
    assert abs(samples.shape[1] - 48000 * SECONDS) <= 960  # one Opus frame (20 ms)
    assert peak_hz(samples, read_rate) == pytest.approx(440, abs=2)
    record = read_metadata(path)[FILE_RECORD_KEY]["audio"]
    assert (record["codec"], record["sample_rate"], record["stored_sample_rate"]) == ("opus", rate, 48000)
    assert read_video(path)[0].shape == clip().shape


def test_mono_and_int16_tracks(tmp_path):
    mono = tone(16000, channels=1)[0]  # (samples,)
    pcm = (mono * 32767).astype(np.int16)
    path = write_video(clip(), tmp_path / "mono.mp4", fps=FPS, audio=pcm, audio_sample_rate=16000)
    samples, rate, _, duration = read_audio(path)
    assert (samples.shape[0], rate) == (1, 16000) and duration == pytest.approx(1.0, abs=1e-3)
    assert peak_hz(samples, rate) == pytest.approx(440, abs=2)


@pytest.mark.parametrize("suffix", [".gif", ".webp"])
def test_gif_and_webp_write_a_wav_beside(tmp_path, suffix):
    track = tone(24000)
    out = tmp_path / f"tone{suffix}"
    path = write_video(clip(), out, fps=FPS, audio=track, audio_sample_rate=24000)
    beside = audio_path(out)
    assert beside == tmp_path / f"tone{suffix}.wav" and beside.is_file()
    samples, rate, codec, _ = read_audio(beside)
    assert (codec, rate) == ("pcm_f32le", 24000)
    np.testing.assert_array_equal(samples, track)  # 32-bit float WAV: exact
    assert read_metadata(path)[FILE_RECORD_KEY]["audio"]["file"] == beside.name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, out.name + ".json", beside.name])


def test_png_frames_keep_the_wav_in_their_folder(tmp_path):
    out = tmp_path / "frames"
    track = tone(16000, channels=1)
    for _ in range(2):  # writing again replaces the folder, its audio.wav included
        write_video(clip(), out, fps=FPS, audio=track, audio_sample_rate=16000)
    assert sorted(p.name for p in out.iterdir())[-2:] == ["frame_00023.png", "metadata.json"]
    assert (out / "audio.wav").is_file() and audio_path(out) == out / "audio.wav"
    samples, rate, _, _ = read_audio(out / "audio.wav")
    np.testing.assert_array_equal(samples, track)
    assert json.loads((out / "metadata.json").read_text())[FILE_RECORD_KEY]["audio"]["file"] == "audio.wav"
    assert read_video(out)[0].shape == clip().shape


def test_the_gif_notice_names_the_wav(tmp_path):
    result = GenerationResult(frames=clip(), fps=FPS, settings={"seed": 0}, audio=tone(24000), audio_sample_rate=24000)
    assert result.audio_notice(tmp_path / "a.mp4") is None
    result.save(tmp_path / "a.gif")
    notice = [n for n in result.notices if "cannot hold sound" in n]
    assert len(notice) == 1 and str(tmp_path / "a.gif.wav") in notice[0]
    assert (tmp_path / "a.gif.wav").is_file()
    result.save(tmp_path / "a.mp4")  # the sound goes into the mp4: no notice, no WAV
    assert len([n for n in result.notices if "cannot hold sound" in n]) == 1
    assert not (tmp_path / "a.mp4.wav").exists() and read_audio(tmp_path / "a.mp4")[2] == "aac"
    silent = GenerationResult(frames=clip(), fps=FPS, settings={})
    assert silent.audio_notice(tmp_path / "b.gif") is None
    silent.save(tmp_path / "b.mp4")
    with av.open(str(tmp_path / "b.mp4")) as container:  # no sound given: no audio stream, as before
        assert not container.streams.audio


@pytest.mark.parametrize("audio, rate, match", [
    (np.zeros((3, 100), np.float32), 16000, "1 or 2 channels"),
    (np.zeros((2, 0), np.float32), 16000, "no samples"),
    (np.full((1, 10), np.nan, np.float32), 16000, "finite"),
    (np.zeros(10, np.int32), 16000, "dtype"),
    (np.zeros(10, np.float32), None, "audio_sample_rate"),
    (np.zeros(10, np.float32), 44100.5, "audio_sample_rate"),
    (None, 16000, "without audio"),
])
def test_bad_tracks_are_refused_before_anything_is_written(tmp_path, audio, rate, match):
    with pytest.raises(ValueError, match=match):
        write_video(clip(), tmp_path / "x.mp4", fps=FPS, audio=audio, audio_sample_rate=rate)
    assert list(tmp_path.iterdir()) == []


def test_as_audio_array_clips_and_shapes():
    out = as_audio_array(np.array([0.0, 2.0, -3.0]))
    assert out.shape == (1, 3) and out.dtype == np.float32 and out.tolist() == [[0.0, 1.0, -1.0]]


def test_a_silent_gif_replacing_one_with_sound_takes_its_wav_away(tmp_path):
    out = tmp_path / "clip.gif"
    write_video(clip(), out, fps=FPS, audio=tone(16000), audio_sample_rate=16000)
    assert audio_path(out).is_file()
    write_video(clip(), out, fps=FPS)  # the new sidecar names no sound: the old WAV would lie beside it
    assert not audio_path(out).exists() and "audio" not in read_metadata(out)[FILE_RECORD_KEY]
    other = tmp_path / "other.gif.wav"  # a WAV no sidecar of ours names is never touched
    other.write_bytes(b"RIFF")
    write_video(clip(), tmp_path / "other.gif", fps=FPS)
    assert other.read_bytes() == b"RIFF"
