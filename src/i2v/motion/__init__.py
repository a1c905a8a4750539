"""Motion decided by the user: camera paths and object trajectories, and the flow fields a warping
denoiser holds to follow them."""

# the request fields (and CLI flags, form fields, manifest columns) of a motion decided by the user
MOTION_INPUTS = ("camera_path", "trajectory")
