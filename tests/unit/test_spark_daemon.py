"""Which archives the workers' daemon drops from ``sys.path`` (the installed pyspark's own)."""

from __future__ import annotations

import zipfile
from pathlib import Path

from adspark.spark_daemon import redundant_archives


def _package(root: Path, name: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    return folder


def _zip(path: Path, member: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(member, "")
    return str(path)


def test_the_installed_pysparks_own_zips_and_jars_are_dropped(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    home = _package(site, "pyspark")
    _package(site, "py4j")
    bundled = _zip(home / "python" / "lib" / "pyspark.zip", "pyspark/__init__.py")
    py4j_zip = _zip(home / "python" / "lib" / "py4j-src.zip", "py4j/__init__.py")
    jar = _zip(home / "jars" / "spark-core.jar", "org/apache/spark/SparkContext.class")
    user = _zip(tmp_path / "userFiles" / "deps.zip", "mylib/__init__.py")
    path = [str(tmp_path / "work"), bundled, py4j_zip, jar, user, str(site)]
    assert redundant_archives(path) == [bundled, py4j_zip, jar]


def test_nothing_is_dropped_when_pyspark_or_py4j_only_come_from_an_archive(tmp_path: Path) -> None:
    bundled = _zip(tmp_path / "spark" / "python" / "lib" / "pyspark.zip", "pyspark/__init__.py")
    py4j_zip = _zip(tmp_path / "spark" / "python" / "lib" / "py4j-src.zip", "py4j/__init__.py")
    site = tmp_path / "site-packages"
    site.mkdir()
    assert redundant_archives([bundled, py4j_zip, str(site)]) == []
    home = _package(site, "pyspark")  # pyspark as a folder, py4j only zipped: keep the zips
    inside = _zip(home / "python" / "lib" / "py4j-src.zip", "py4j/__init__.py")
    assert redundant_archives([inside, str(site)]) == []
