"""spark-submit entry point of the ``generate`` job: ``spark-submit jobs/generate.py --conf ... [args]``."""

import sys
from typing import Sequence

from adspark.cli import main as cli_main


def main(argv: Sequence[str]) -> int:
    """Run ``adspark generate`` with these arguments."""
    return cli_main(["generate", *argv])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
