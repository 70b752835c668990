"""The alert-core and GPU benchmarks run and check what they claim (their figures come from
`make bench-alerts` and `benchmarks/gpu.py`)."""

import pytest

from benchmarks import alerts_speed, gpu


def test_the_alert_benchmark_checks_one_by_one_against_together(capsys: pytest.CaptureFixture[str]) -> None:
    alerts_speed.main(["--entities", "3", "--nights", "4"])
    out = capsys.readouterr().out
    assert "3 demo entities x 4 nights" in out
    assert "| together, one night per call |" in out and out.rstrip().endswith("rows and states identical across the three")


def test_the_gpu_report_gives_gpu_over_cpu_per_backend_and_keeps_errors() -> None:
    keys = {f"train_{b}_samples_per_s": 1.0 for b in gpu.TRAIN_BATCHES}
    keys.update({f"score_{b}_windows_per_s": 1.0 for b in gpu.SCORE_BATCHES})
    cpu = {"backend": "jax", "device": "cpu: cpu", "cpus": 16, **keys}
    fast = {"backend": "jax", "device": "gpu: H100", "cpus": 16, **{k: 8.0 * v for k, v in keys.items()}}
    missing = {"backend": "torch", "device": "gpu", "error": "no GPU visible to torch (cpu)"}
    text = gpu.report([cpu, fast, missing])
    assert "| jax | GPU / CPU | | 8.0x | 8.0x | 8.0x | 8.0x |" in text
    assert "no GPU visible to torch" in text and "torch | GPU / CPU" not in text
    assert gpu._windows(5).shape == (5, gpu.W * gpu.F)
