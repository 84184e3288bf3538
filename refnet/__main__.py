"""``python -m refnet ...`` is the ``refnet`` command (:mod:`refnet.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
