"""Files in and out: input images (load, validate, fit), videos (read, write atomically), contact sheets,
camera path / trajectory files (``--camera @FILE``)."""
