"""i2v: one image and a text prompt in, a short coherent video out.

Public API::

    from i2v import ImageToVideoGenerator, GenerationRequest
    gen = ImageToVideoGenerator()            # the embedded model, offline
    frames = gen.generate(image_path="in.png", prompt="the red circle moves left", seed=0)
    gen.save_video(frames, "out.mp4")
"""

__version__ = "0.1.0"

__all__ = ["GenerationRequest", "GenerationResult", "ImageToVideoGenerator", "__version__"]


def __getattr__(name):  # lazy: importing i2v does not import torch
    if name in ("GenerationRequest", "GenerationResult", "ImageToVideoGenerator"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'i2v' has no attribute {name!r}")
