"""``python -m i2v`` is the ``i2v`` command."""

from .cli import run

run()
