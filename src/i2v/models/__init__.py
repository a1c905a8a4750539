"""i2v's own networks (the embedded model), on diffusers ModelMixin/ConfigMixin."""
