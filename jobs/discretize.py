"""spark-submit entry point of the ``discretize`` job: ``spark-submit jobs/discretize.py --conf ... [args]``."""

import sys
from typing import Sequence

from adspark.cli import main as cli_main


def main(argv: Sequence[str]) -> int:
    """Run ``adspark discretize`` with these arguments."""
    return cli_main(["discretize", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
