"""The diffusers adapter: every image-to-video pipeline diffusers ships, behind i2v's request vocabulary.

``loading``     safe loading: model folders checked before anything loads, variants, configs, weight sizes
``options``     dtype, offload and VAE switches applied to a loaded pipeline
``schedulers``  which schedulers can replace a model's own without changing its schedule
``progress``    diffusers' step callback -> (step, total) and timings; pipeline output -> uint8 frames
``base``        ``DiffusersBackend``, what every family shares
and one module per family: its ``Family`` descriptor, registered models and verified defaults, folder
rules and pipeline arguments. Adding a family means adding one module here; ``i2v.registry`` finds it.

Nothing here loads weights at import; a pipeline is loaded on the first ``generate``, so that
``resolve`` (validation, snapping, defaults) runs before any weights are read.
"""
