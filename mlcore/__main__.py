"""Entry point for `python -m mlcore`."""

import sys

from mlcore.cli import main

if __name__ == "__main__":
    sys.exit(main())
