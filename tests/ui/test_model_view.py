"""What the Generate tab shows per model: the optional inputs only for the families that take them."""

from i2v.registry import resolve_model
from i2v.ui.app import model_view


def test_init_video_and_last_image_only_for_the_families_that_take_them():
    tiny, svd = model_view(resolve_model(None)), model_view(resolve_model("svd-xt"))
    assert tiny["init_video"] and not svd["init_video"]
    assert not tiny["last_image"] and svd["motion_strength"] and not tiny["motion_strength"]


def test_camera_path_and_trajectories_only_for_the_models_whose_denoiser_warps(warp_model_dir, tiny_model_dir):
    assert not model_view(resolve_model("i2v-tiny"))["camera_path"]  # a velocity denoiser
    photo = model_view(resolve_model("i2v-photo"))  # a warping denoiser
    assert photo["camera_path"] and photo["trajectory"]
    warp, velocity = model_view(resolve_model(str(warp_model_dir))), model_view(resolve_model(str(tiny_model_dir)))
    assert warp["camera_path"] and warp["trajectory"] and not velocity["camera_path"] and not velocity["trajectory"]
    assert not model_view(resolve_model("svd-xt"))["camera_path"]


def test_the_generate_tab_shows_the_boxes_and_sends_what_they_hold(tmp_path, warp_model_dir, tiny_model_dir,
                                                                   sample_image_path):
    """Without a browser: the model picker's visibility function and the Generate button's function."""
    import shutil

    import gradio as gr
    import pytest

    from i2v.server.app import create_app
    from i2v.server.schemas import ServerConfig
    from i2v.ui.app import build_ui, ui_folders

    config = ServerConfig(data_dir=tmp_path / "data", db_url=f"sqlite:///{tmp_path / 'jobs.db'}",
                          models=(str(warp_model_dir), str(tiny_model_dir)))
    store = create_app(config).state.store
    fns = {f.name: f.fn for f in build_ui(store, config).fns.values()}
    shown = fns["show_inputs"](str(warp_model_dir))[-2:]  # ..., camera path, trajectories
    hidden = fns["show_inputs"](str(tiny_model_dir))[-2:]
    assert [u["visible"] for u in shown] == [True, True] and [u["visible"] for u in hidden] == [False, False]

    image = ui_folders(config)["ui-cache"] / "input.png"
    shutil.copy(sample_image_path, image)
    camera, trajectory = "0.25s: pan right 0.1", "red square: 0.45,0.45 -> 0.6,0.45"

    def submit(model, camera_text, trajectory_text, num_frames=None, window=None):
        # image, last image, init video, strength, prompt, negative, model, the advanced fields (frames, fps, height,
        # width, steps: 1, guidance, window), seed, random seed, motion strength, format, profile, camera path,
        # trajectories
        run = fns["generate"](str(image), None, None, 0.7, "the camera pans", "", str(model), num_frames, None, None,
                              None, 1, None, window, 0, False, 0.5, "mp4", "default", camera_text, trajectory_text)
        try:
            return store.get(next(run)[0]).request["fields"]  # queued: the first update names the job
        finally:
            run.close()

    fields = submit(warp_model_dir, camera, trajectory)
    assert fields["camera_path"] == camera and fields["trajectory"] == trajectory
    assert not {"camera_path", "trajectory"} & set(submit(warp_model_dir, "", " "))  # empty boxes: not given
    assert not {"camera_path", "trajectory"} & set(submit(tiny_model_dir, camera, trajectory))  # hidden: not sent
    with pytest.raises(gr.Error, match="after the video ends"):
        submit(warp_model_dir, "3s: pan right 0.2", "")
    long = submit(tiny_model_dir, "", "", num_frames=12, window=4)  # a long video in chained windows
    assert (long["num_frames"], long["window"]) == (12, 4) and "window" not in submit(tiny_model_dir, "", "")
    with pytest.raises(gr.Error, match="window"):
        submit(tiny_model_dir, "", "", num_frames=4, window=8)
    store.dispose()
