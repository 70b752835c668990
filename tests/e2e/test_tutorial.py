"""``docs/your-own-data.md`` as a user runs it: every command of its ``bash`` blocks, as written.

The commands run in a temporary folder holding the repository's ``conf/`` and ``tests/data/``
(links), with the virtual environment's ``adspark`` first on the PATH, so the tutorial's relative
paths (the warehouse, the landed files, the report) land there and nothing in the checkout
changes. Slow (a JVM per command and a real training run): ``make test-slow``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "your-own-data.md"


def tutorial_commands(text: str) -> list[str]:
    """The commands of the document's ``bash`` blocks, in order (comments and blank lines left out)."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_the_tutorial_has_the_steps_a_user_needs() -> None:
    commands = tutorial_commands(DOC.read_text())
    verbs = [shlex.split(c)[1] for c in commands if c.startswith("adspark ")]
    assert verbs[:2] == ["labels", "run"] and {"sql", "report", "evaluate"} <= set(verbs)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "conf").symlink_to(ROOT / "conf")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "data").symlink_to(ROOT / "tests" / "data")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PYTHONPATH": str(ROOT)}
    outputs, timings = [], []
    for command in tutorial_commands(DOC.read_text()):
        t0 = time.perf_counter()
        done = subprocess.run(command, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=1800)
        timings.append((command[:60], round(time.perf_counter() - t0, 1)))
        assert done.returncode == 0, f"{command}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    print("\n".join(f"{s:>7} s  {c}" for c, s in timings))
    labels_line = next(o for c, o in zip(tutorial_commands(DOC.read_text()), outputs, strict=True)
                       if c.startswith("adspark labels"))
    assert "read 14 rows" in labels_line and "loaded 14, rejected 0" in labels_line
    run_out = outputs[[i for i, c in enumerate(tutorial_commands(DOC.read_text())) if c.startswith("adspark run")][0]]
    assert all(f"[{stage} " in run_out for stage in ("discretize", "window", "train", "score", "evaluate")), run_out
    evaluate_out = outputs[[i for i, c in enumerate(tutorial_commands(DOC.read_text()))
                            if c.startswith("adspark evaluate")][-1]]
    assert "2 models on the same nights and labels" in evaluate_out, evaluate_out  # champion and challenger
    assert (tmp_path / "reports" / "adexchange.html").stat().st_size > 10_000
    wh = tmp_path / "warehouse-tutorial" / "adexchange"
    for table in ("features", "windows", "models", "scores", "intervals", "labels", "evaluations"):
        assert (wh / table / "_delta_log").is_dir(), table
