"""The photos world: real photographs the embedded model may train on, and clips made from them.

``sources``: gathers photographs from the allowed sources (four Debian wallpaper packages and the
sample images of scikit-image / scikit-learn) into a folder with a manifest; ``python -m
i2v.world.photos.sources --out DIR``. Its helpers: ``licences`` (Debian copyright files),
``library_images`` (the library images and their credits), ``photo_filter`` (photo or flat
graphic), ``splits`` (train / held-out rule), ``store`` (encoding, atomic writes, the manifest).
``procedural``: images with natural statistics (dead leaves, 1/f noise, warped textures).
``camera``: camera clips (pan, tilt, zoom, static) rendered as a crop window over a photo, with
ground truth.

Only the sources named in ``sources`` may feed training; other photographs are kept for judging
the model (see docs/data-card.md).
"""
