"""``python -m i2v`` is the ``i2v`` command."""

import sys

from .cli import main

sys.exit(main())
