"""Prompt schedules: parsing, checking against the video's length, and the refusal by one-prompt models."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from i2v.cli import main
from i2v.errors import InvalidRequestError
from i2v.prompt_schedule import (PromptSegment, format_schedule, is_schedule, parse_schedule_text, resolve_schedule,
                                 segment_at)


def test_text_schedule_resolves_to_its_segments():
    text, segments = resolve_schedule("0s: the red ball rolls right; 3s: it rolls up;6 s :the camera zooms out",
                                      num_frames=200, fps=24)
    assert segments == (PromptSegment(0.0, "the red ball rolls right"), PromptSegment(3.0, "it rolls up"),
                        PromptSegment(6.0, "the camera zooms out"))
    assert text == "0s: the red ball rolls right; 3s: it rolls up; 6s: the camera zooms out"


def test_a_plain_prompt_is_no_schedule_even_with_semicolons_and_times_inside():
    for prompt in ("a cat; then a dog", "a clock shows 12:30", "the ball; 3s: a dog", ""):
        assert not is_schedule(prompt)
        assert resolve_schedule(prompt, 16, 8) == (prompt, ())


def test_a_semicolon_inside_a_segment_stays_in_its_prompt():
    _, segments = resolve_schedule("0s: red; then blue; 1.5s: green", 24, 8)
    assert [s.prompt for s in segments] == ["red; then blue", "green"]


def test_one_segment_is_a_plain_prompt():
    assert resolve_schedule("0s: the camera pans left", 16, 8) == ("the camera pans left", ())


def test_lists_pairs_and_plain_prompts_share_the_video():
    assert resolve_schedule([(0, "a"), (1.5, "b")], 32, 8)[1] == (PromptSegment(0.0, "a"), PromptSegment(1.5, "b"))
    text, segments = resolve_schedule(["a", "b", "c", "d"], 32, 8)  # 4 s: one second each
    assert [s.start for s in segments] == [0.0, 1.0, 2.0, 3.0] and text == "0s: a; 1s: b; 2s: c; 3s: d"


@pytest.mark.parametrize("prompt, message", [
    ("1s: late start; 2s: b", "must start at 0s"),
    ("0s: a; 2s: b; 1s: c", "times must rise"),
    ("0s: a; 0s: b", "times must rise"),
    ("0s: a; 5s: b", "starts after the video ends"),
    ("0s: a; 1s:   ", "has no prompt"),
    ([], "the list is empty"),
    ([(0, "a"), "b"], "(seconds, prompt) pair"),
    ([(0, "a"), (True, "b")], "(seconds, prompt) pair"),
    ([(0, "a"), (float("nan"), "b")], "not a number of seconds"),
    (b"0s: a", "must be text or a list"),
    (7, "must be text or a list"),
])
def test_bad_schedules_are_refused_with_the_reason(prompt, message):
    with pytest.raises(InvalidRequestError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve_schedule(prompt, num_frames=32, fps=8)  # 4 s


def test_segment_at_gives_the_segment_playing_at_a_frame():
    segments = (PromptSegment(0, "a"), PromptSegment(1, "b"), PromptSegment(2.5, "c"))
    assert [segment_at(segments, f, 8) for f in (0, 7, 8, 19, 20, 31)] == [0, 0, 1, 1, 2, 2]


prompts = st.text(alphabet=st.characters(blacklist_characters=";", blacklist_categories=("Cs",)), min_size=1,
                  max_size=20).map(str.strip).filter(bool)


@given(st.lists(prompts, min_size=2, max_size=5), st.lists(st.integers(1, 40), min_size=4, max_size=4))
def test_the_recorded_text_gives_the_same_schedule_back(texts, gaps):
    starts = [0.0]
    for gap in gaps[: len(texts) - 1]:
        starts.append(starts[-1] + gap / 4)
    segments = [PromptSegment(s, t) for s, t in zip(starts, texts)]
    text, resolved = resolve_schedule([(s.start, s.prompt) for s in segments], num_frames=10_000, fps=24)
    assert resolved == tuple(segments)
    assert parse_schedule_text(text) == segments and format_schedule(segments) == text


def test_a_one_prompt_model_refuses_a_schedule_before_loading(sample_image_path, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    assert main(["generate", str(sample_image_path), "-p", "0s: the ball moves left; 1s: the ball moves up",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "takes one prompt a pass, not a prompt schedule" in err and "--window" in err and "Traceback" not in err
    assert not out.exists()


def test_duration_sets_the_frame_count_and_schedules_fit_it(sample_image_path):
    from i2v import GenerationRequest, ImageToVideoGenerator

    backend = ImageToVideoGenerator(device="cpu").backend
    notices = []
    settings = backend.resolve(GenerationRequest(image=sample_image_path, duration=3, seed=0), notices)
    assert settings.num_frames == 24 and "duration 3s at 8 fps: 24 frames" in notices
    with pytest.raises(InvalidRequestError, match="num_frames or duration, not both"):
        backend.resolve(GenerationRequest(image=sample_image_path, duration=3, num_frames=16, seed=0), [])
    for bad in (-1, float("inf"), "3"):
        with pytest.raises(InvalidRequestError, match="duration must be a finite number"):
            backend.resolve(GenerationRequest(image=sample_image_path, duration=bad, seed=0), [])
