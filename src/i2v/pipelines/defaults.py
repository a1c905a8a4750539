"""The embedded model's own generation defaults, read by its pipeline and its backend (no torch here)."""

# What a request gets for the fields it leaves unset; frames and size come from the model's configs.
DEFAULT_SETTINGS = {"fps": 8, "num_inference_steps": 10, "guidance_scale": 3.0, "sampler": "dpmpp_2m"}
# Frames the pipeline decodes at once (bounds the decoder's activations; the --memory profile uses 2).
DECODE_CHUNK = 16
# A warping denoiser's guidance scales its motion plan (the flow): 3 would triple the prompt's motion
WARP_GUIDANCE = 1.0
