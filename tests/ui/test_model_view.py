"""What the Generate tab shows per model: the optional inputs only for the families that take them."""

from i2v.registry import resolve_model
from i2v.ui.app import model_view


def test_init_video_and_last_image_only_for_the_families_that_take_them():
    tiny, svd = model_view(resolve_model(None)), model_view(resolve_model("svd-xt"))
    assert tiny["init_video"] and not svd["init_video"]
    assert not tiny["last_image"] and svd["motion_strength"] and not tiny["motion_strength"]
