"""Fixtures for the diffusers backends: tiny seeded pipelines saved as model folders, built once."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from . import (tiny_components, tiny_cosmos, tiny_framepack, tiny_helios, tiny_hunyuan15, tiny_kandinsky5,
               tiny_ltx2, tiny_motif_video, tiny_sana_video, tiny_skyreels, tiny_wan_vace)

BUILDERS = {
    "svd": tiny_components.build_svd,
    "animatediff": tiny_components.build_animatediff,
    "wan": tiny_components.build_wan,
    "wan-flf": lambda: tiny_components.build_wan(first_last_frame=True),
    "cogvideox": tiny_components.build_cogvideox,
    "ltx": tiny_components.build_ltx,
    "hunyuan": tiny_components.build_hunyuan,
    "hunyuan-33ch": lambda: tiny_components.build_hunyuan("latent_concat"),
    "hunyuan15": tiny_hunyuan15.build_hunyuan15,
    "skyreels": tiny_skyreels.build_skyreels,
    "skyreels-flf": lambda: tiny_skyreels.build_skyreels(first_last_frame=True),
    "skyreels-df": tiny_skyreels.build_skyreels_df,
    "wan_vace": tiny_wan_vace.build_wan_vace,
    "cosmos": tiny_cosmos.build_cosmos2,
    "cosmos-25": tiny_cosmos.build_cosmos25,
    "ltx2": tiny_ltx2.build_ltx2,
    "framepack": tiny_framepack.build_framepack,
    "kandinsky5": tiny_kandinsky5.build_kandinsky5,
    "sana_video": tiny_sana_video.build_sana_video,
    "sana_video-t2v": tiny_sana_video.build_sana_video_t2v_folder,  # the released folder's layout
    "helios": tiny_helios.build_helios,
    "helios-mid": tiny_helios.build_helios_pyramid,
    "helios-distilled": lambda: tiny_helios.build_helios_pyramid(distilled=True),
    "motif_video": tiny_motif_video.build_motif_video,
}

# folders that are another one copied under a name that means something: (the folder copied, the copy's name).
# FramePack reads "F1" in a folder's name as FramePack-F1 (sampled forward); the weights are the same.
COPIES = {
    "framepack-f1": ("framepack", "FramePack_F1_tiny"),
}


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory):
    """``tiny_folder(name)`` -> a saved tiny pipeline folder (safetensors), built on first use (a name in
    ``COPIES``: the other folder, copied under its name)."""
    cache: dict[str, str] = {}

    def get(name: str) -> str:
        if name not in cache:
            if name in COPIES:
                source, folder_name = COPIES[name]
                folder = tmp_path_factory.mktemp(f"tiny-{name}") / folder_name
                shutil.copytree(get(source), folder)
            else:
                folder = tmp_path_factory.mktemp(f"tiny-{name}")
                BUILDERS[name]().save_pretrained(folder)
            cache[name] = str(folder)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def square_image(tmp_path_factory):
    """A 40x40 RGB image with a red square, as a file."""
    arr = np.full((40, 40, 3), 110, np.uint8)
    arr[10:25, 12:28] = (220, 30, 30)
    arr += np.random.default_rng(0).integers(0, 6, arr.shape, dtype=np.uint8)
    path = tmp_path_factory.mktemp("images") / "square.png"
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture(scope="session")
def portrait_image(tmp_path_factory):
    """A 60x100 (width x height) portrait image, as a file."""
    arr = np.full((100, 60, 3), 90, np.uint8)
    arr[30:60, 10:40] = (30, 200, 40)
    path = tmp_path_factory.mktemp("images") / "portrait.png"
    Image.fromarray(arr).save(path)
    return path
