"""i2v's own DiffusionPipeline for the embedded model."""
