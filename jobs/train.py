"""spark-submit entry point of the ``train`` job: ``spark-submit jobs/train.py --conf ... [args]``."""

import sys
from typing import Sequence

from adspark.cli import main as cli_main


def main(argv: Sequence[str]) -> int:
    """Run ``adspark train`` with these arguments."""
    return cli_main(["train", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
