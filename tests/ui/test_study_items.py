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


def test_a_malformed_csv_is_a_message_not_a_crash(tmp_path):
    table = tmp_path / "s.csv"
    table.write_text("image,prompt\na.png\n")
    with pytest.raises(ValueError, match="line 2 has more or fewer fields"):
        study_items(["/u/a.png"], None, str(table))
    table.write_bytes(b"image,prompt\n\xff\xfe,x\n")
    with pytest.raises(ValueError, match="cannot be read"):
        study_items(["/u/a.png"], None, str(table))


def test_only_files_in_the_upload_cache_are_read(tmp_path):
    from i2v.ui.app import uploaded_file

    cache = tmp_path / "cache"
    (cache / "x").mkdir(parents=True)
    (cache / "x" / "a.png").write_bytes(b"12345")
    (tmp_path / "secret.png").write_bytes(b"secret")
    (cache / "link.png").symlink_to(tmp_path / "secret.png")
    assert uploaded_file(str(cache / "x" / "a.png"), cache, 100, "image") == (cache / "x" / "a.png").resolve()
    for path in (tmp_path / "secret.png", cache / "link.png", cache / "x" / ".." / ".." / "secret.png", cache / "x"):
        with pytest.raises(ValueError, match="not a file uploaded through this page"):
            uploaded_file(str(path), cache, 100, "image")
    with pytest.raises(ValueError, match="larger than the limit"):
        uploaded_file(str(cache / "x" / "a.png"), cache, 4, "image")
