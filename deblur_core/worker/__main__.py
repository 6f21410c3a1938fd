"""``python -m deblur_core.worker``: see :mod:`deblur_core.worker`."""
import sys

from .serve import main

sys.exit(main())
