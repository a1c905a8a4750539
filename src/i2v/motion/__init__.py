"""Motion decided by the user: camera paths and object trajectories, and the flow fields a warping
denoiser holds to follow them."""
