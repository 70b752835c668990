"""spark-submit entry point of the ``nightly`` job: ``spark-submit jobs/nightly.py --conf ... [args]``."""

import sys
from typing import Sequence

from adspark.cli import main as cli_main


def main(argv: Sequence[str]) -> int:
    """Run ``adspark nightly`` with these arguments."""
    return cli_main(["nightly", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
