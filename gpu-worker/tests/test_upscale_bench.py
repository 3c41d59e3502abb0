"""The GPU upscale benchmark's own code path, run small on the CPU, so it still works when a GPU
machine runs it full size."""

import json
import subprocess
import sys
from pathlib import Path

GPU_WORKER = Path(__file__).resolve().parents[1]


def test_the_upscale_bench_runs_the_production_upscaler_and_reports_json(tmp_path):
    out = tmp_path / "upscale.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.upscale_bench", "--tiny", "--device", "cpu", "--width", "64", "--height", "80", "--runs", "1", "--out", str(out)],
        cwd=GPU_WORKER, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    assert printed == json.loads(out.read_text())
    assert printed | {"seconds": None, "runs": None, "output_megapixels_per_second": None, "torch": None} == {
        "device": "cpu", "torch": None, "model": "tiny", "architecture": "ESRGAN", "scale": 4, "dtype": "float32",
        "tile": 512, "overlap": 32, "input": "64x80", "output": "256x320",
        "seconds": None, "runs": None, "output_megapixels_per_second": None,
    }
    assert len(printed["runs"]) == 1 and printed["seconds"] > 0
