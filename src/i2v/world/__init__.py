"""The procedural worlds the embedded model is trained and judged on.

``scenes``: the shapes world (scene sampling and rendering, the held-out seed split).
``captions``: free-English captions of a scene, training and held-out phrasings.
``batches``: training batches drawn from the world as a pure function of a seed.
``tracking``: colour-based object tracking and camera-motion estimation on rendered clips.
``scoring``: a generated clip scored against its scene's ground truth, and the summary.
``benchmark``: ``i2v benchmark``, a model run over held-out cases, with reports and contact sheets.
"""
