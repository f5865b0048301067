"""Entry point for `python -m handoff_edge`."""

import sys

from handoff_edge.cli import main

if __name__ == "__main__":
    sys.exit(main())
