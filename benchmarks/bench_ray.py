#!/usr/bin/env python
"""Retrains on Ray against retrains in this process: 8 drop-column retrains of the demo recipe.

`drop_column_importance(recipe, test_df, cols=<6 columns>, n_seeds=2)` is 8 independent retrains (2 full-model seeds
+ 6 dropped columns) of a `tabular_learner` on the demo data (`--rows` training rows, `--epochs` epochs). It runs:

  (a) in process, one torch thread per retrain (the default, `executor=None`);
  (b) in process, `--threads-local` torch threads per retrain (default 2: what a plain loop would use on 2 cores);
  (c) on a local Ray cluster, `ray.init(num_cpus=<cores>)`, one CPU and one torch thread per retrain (`executor='ray'`),
      with the cluster already started (its start-up time is reported separately).

For each: wall time, and the CPU time (user + sys) of this process and of its child processes (the Ray workers'
CPU time is read with psutil when available). The numbers of (a) and (c) must be identical (same seeds, same threads).
The machine is shared: the 1-minute load average is printed before each run.

Run:  python benchmarks/bench_ray.py [--rows 4800] [--epochs 4] [--cores 2]
"""
from __future__ import annotations
import argparse, os, resource, time, warnings

warnings.filterwarnings('ignore')


def cpu_self():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def ray_workers_cpu():
    "Sum of user+sys CPU seconds of this process's descendants (the Ray workers), or None without psutil."
    try: import psutil
    except ImportError: return None
    tot = 0.0
    for p in psutil.Process().children(recursive=True):
        try: t = p.cpu_times(); tot += t.user + t.system
        except psutil.Error: pass
    return tot


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rows', type=int, default=4800, help='training rows of the recipe')
    ap.add_argument('--epochs', type=int, default=4)
    ap.add_argument('--cores', type=int, default=2, help='CPUs given to the local Ray cluster')
    ap.add_argument('--threads-local', type=int, default=2, help='torch threads per retrain for run (b)')
    args = ap.parse_args()

    import torch
    from fastai_featimp.all import demo_learner, make_demo_data, RetrainRecipe, drop_column_importance
    n = int(args.rows / 0.8)
    learn, test_df = demo_learner('regression', n=n, epochs=args.epochs, seed=0)
    recipe = RetrainRecipe.from_learner(learn, make_demo_data(n, 'regression', seed=0).iloc[:args.rows], epochs=args.epochs)
    cols = ['x1', 'x2', 'x3', 'x3_twin', 'noise', 'shade']
    kw = dict(cols=cols, n_seeds=2, progress=False, verbose=False)
    print(f"8 retrains (2 full-model seeds + {len(cols)} dropped columns), demo regression recipe: {args.rows} training rows, "
          f"{args.epochs} epochs, layers {recipe.learner_kwargs.get('layers')}; {os.cpu_count()} CPUs visible; torch {torch.__version__}")

    def run(label, **extra):
        load = os.getloadavg()[0]
        c0, w0 = cpu_self(), ray_workers_cpu()
        t0 = time.perf_counter()
        dc = drop_column_importance(recipe, test_df, **kw, **extra)
        wall = time.perf_counter() - t0
        c1, w1 = cpu_self(), ray_workers_cpu()
        workers = f", Ray workers {w1 - w0:.1f} s" if w0 is not None and extra.get('executor') == 'ray' else ''
        print(f"  {label:<44} wall {wall:6.1f} s | CPU: this process {c1 - c0:.1f} s{workers} | load before {load:.2f}")
        return wall, dc

    wa, a = run('(a) in process, 1 torch thread per retrain')
    wb, b = run(f'(b) in process, {args.threads_local} torch threads per retrain', threads=args.threads_local)
    import ray
    t0 = time.perf_counter()
    ray.init(num_cpus=args.cores, include_dashboard=False, log_to_driver=False)
    print(f"  Ray start-up (ray.init, num_cpus={args.cores}): {time.perf_counter() - t0:.1f} s")
    try:
        drop_column_importance(recipe, test_df, cols=['x1'], n_seeds=2, progress=False, verbose=False, executor='ray')  # warm the workers
        wc, c = run(f'(c) Ray, {args.cores} CPUs, 1 torch thread per retrain', executor='ray')
    finally: ray.shutdown()
    same = (a.importance.to_numpy() == c.importance.to_numpy()).all() and a.attrs['full_scores'] == c.attrs['full_scores']
    print(f"speed-up of Ray over (a): {wa / wc:.2f}x; over (b): {wb / wc:.2f}x. "
          f"Numbers of (a) and (c) identical: {same}; (b) differs from (a) by up to "
          f"{abs(a.set_index('feature').importance - b.set_index('feature').importance).max():.2g} (threads change the sums)")
    print(a[['feature', 'importance', 'z', 'above_noise']].to_string(index=False))


if __name__ == '__main__': main()
