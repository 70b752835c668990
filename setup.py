"""adspark packaging: the library, the table contracts and the ``adspark`` console script."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent


def _requirements() -> list[str]:
    lines = (ROOT / "requirements" / "base.in").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


setup(
    name="adspark",
    version="0.1.0",
    description="Deep anomaly detection on event tables with Spark, Delta and autoencoders",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11,<3.13",
    packages=find_packages(include=["adspark", "adspark.*", "schemas", "schemas.*"]),
    package_data={"adspark": ["log4j2-quiet.properties"]},
    install_requires=_requirements(),
    extras_require={
        # horovod is built from source by `make setup` (see README); listed for completeness.
        "horovod": ["horovod==0.28.1"],
        # GPU executors: TensorFlow with CUDA instead of tensorflow-cpu (see README, GPU).
        "gpu": ["tensorflow[and-cuda]==2.18.1"],
        "dev": ["pytest", "pytest-timeout", "hypothesis", "pillow"],
    },
    entry_points={"console_scripts": ["adspark=adspark.cli:main"]},
)
