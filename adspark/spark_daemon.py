"""PySpark's Python daemon, with pyspark imported from its installed folder rather than its zip.

The embedded session names this module as ``spark.python.daemon.module``; the daemon then forks
the Python workers as ``pyspark.daemon`` would (it runs :func:`pyspark.daemon.manager`).

Why: Spark puts ``$SPARK_HOME/python/lib/pyspark.zip``, py4j's zip and the spark-core jar first on
the workers' ``PYTHONPATH``, and every task starts with ``importlib.invalidate_caches()`` (PySpark's
``setup_spark_files``). On Python < 3.12 that re-reads the file list of every zip archive an
import went through, once per package imported from it (CPython gh-103200): with the pyspark
subpackages a pandas or Arrow function loads, about 80 ms per task (measured), more than many of adspark's
tasks compute. A pip-installed pyspark holds the same modules as a folder (the zip ships inside
it), so the archives inside that folder are dropped from ``sys.path`` before pyspark is imported.
Anything else on the path (``--py-files`` archives included) is left alone, and nothing is
dropped when pyspark is not installed as a folder.
"""

from __future__ import annotations

import sys
from importlib.machinery import PathFinder
from pathlib import Path


def redundant_archives(path: list[str]) -> list[str]:
    """The entries of ``path`` that are files inside the pyspark package folder found on the
    rest of it (its bundled ``pyspark.zip``, py4j zip and jars), given that py4j is importable
    without them too; ``[]`` when pyspark or py4j is only available from an archive."""
    folders = [p for p in path if not Path(p or ".").is_file()]
    spec = PathFinder.find_spec("pyspark", folders)
    if spec is None or not spec.submodule_search_locations or PathFinder.find_spec("py4j", folders) is None:
        return []
    home = Path(next(iter(spec.submodule_search_locations))).resolve()
    return [p for p in path if p and Path(p).is_file() and Path(p).resolve().is_relative_to(home)]


def main() -> None:
    """Drop the redundant archives from ``sys.path`` (and the importers that finding this module
    already cached for them), then run PySpark's daemon."""
    drop = set(redundant_archives(sys.path))
    sys.path[:] = [p for p in sys.path if p not in drop]
    for p in drop:
        sys.path_importer_cache.pop(p, None)
    from pyspark import daemon

    daemon.manager()


if __name__ == "__main__":
    main()
