"""Training: the embedded model's two stages (autoencoder, video denoiser) and fine-tuning on your own videos, on one shared loop."""
