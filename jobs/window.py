"""spark-submit entry point of the ``window`` job: ``spark-submit jobs/window.py --conf ... [args]``."""

import sys
from typing import Sequence

from adspark.cli import main as cli_main


def main(argv: Sequence[str]) -> int:
    """Run ``adspark window`` with these arguments."""
    return cli_main(["window", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
