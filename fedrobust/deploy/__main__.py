"""``python -m fedrobust.deploy``: one job, running :func:`fedrobust.deploy.cli.main`."""

import sys

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
