"""The Compare tab's items: from a CSV naming uploaded images, or uploads and prompt lines."""

import pytest

from i2v.ui.app import study_items


def test_uploads_and_prompt_lines_repeat_the_shorter_list():
    assert study_items(["/u/a.png", "/u/b.png"], "p1\n\np2\np3\n", None) == [
        ("/u/a.png", "p1"), ("/u/b.png", "p2"), ("/u/a.png", "p3")]
    assert study_items(["/u/a.png"], "", None) == [("/u/a.png", "")]


def test_a_csv_picks_images_by_name(tmp_path):
    table = tmp_path / "s.csv"
    table.write_text("image,prompt\nb.png,the camera pans left\na.png, x \n")
    assert study_items(["/u/a.png", "/u/b.png"], "ignored", str(table)) == [
        ("/u/b.png", "the camera pans left"), ("/u/a.png", "x")]
    table.write_text("image,prompt\nc.png,x\n")
    with pytest.raises(ValueError, match="not uploaded: c.png"):
        study_items(["/u/a.png"], None, str(table))
    table.write_text("picture,prompt\na.png,x\n")
    with pytest.raises(ValueError, match="'image' column"):
        study_items(["/u/a.png"], None, str(table))
