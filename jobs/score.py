"""spark-submit entry point of the ``score`` job: ``spark-submit jobs/score.py --conf ... [args]``."""

import sys
from typing import Sequence

from adspark.cli import main as cli_main


def main(argv: Sequence[str]) -> int:
    """Run ``adspark score`` with these arguments."""
    return cli_main(["score", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
