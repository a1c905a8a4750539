"""Training the embedded model: the autoencoder stage and the video denoiser stage."""
