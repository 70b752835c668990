"""``LoopParams.pin_cores``: a training process pins itself to one core by local rank (in a child
process here, so that the test session keeps its cores)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = """
import os, numpy as np
from adspark.train.backend import LocalBackend
from adspark.train.feed import ArrayFeed
from adspark.train.loop import LoopParams, train_reconstruction
x = np.random.default_rng(0).normal(size=(64, 6)).astype(np.float32)
r = LocalBackend().run(train_reconstruction, (ArrayFeed(x), LoopParams(epochs=1, batch_size=16, hidden=(4,),
                                                                       bottleneck=2, pin_cores=True)))[0]
print(sorted(os.sched_getaffinity(0)), len(r.losses))
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_a_pinned_process_trains_on_its_first_core():
    cores = sorted(os.sched_getaffinity(0))
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == f"[{cores[0]}] 1"  # local rank 0: the first core it may use
