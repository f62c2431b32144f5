#!/usr/bin/env python
"""What a ROC AUC's interval costs (issue 22 item 5): `importance(metric='RocAucBinary')` with its default interval (a
bootstrap of the rows, 100 resamples) against `interval='repeats'` (the shuffling only, no resamples), on the demo
classifier, timed alternately in one process, one torch thread; best of `--rounds`. Goal: the bootstrap at most ~1.5x
the repeats-only run. Also the loss's default ('rows (paired)') for reference.

Run:  python benchmarks/bench_auc_interval.py [--rows 5000] [--repeats 5] [--rounds 7]
"""
import argparse, sys, time, warnings


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--rows', type=int, default=5000); ap.add_argument('--repeats', type=int, default=5)
    ap.add_argument('--rounds', type=int, default=7)
    a = ap.parse_args(argv)
    warnings.filterwarnings('ignore')
    import torch
    torch.set_num_threads(1)
    from fastai_featimp.all import FeatureInterpretation, demo_learner, make_demo_data
    learn, _ = demo_learner('classification', n=6000, epochs=2, seed=1000)
    it = FeatureInterpretation.from_learner(learn, df=make_demo_data(a.rows, 'classification', seed=3))
    runs = {'AUC, bootstrap (default)': dict(metric='RocAucBinary'), 'AUC, repeats only': dict(metric='RocAucBinary', interval='repeats'),
            'loss, rows (paired)': dict(metric=None)}
    times, labels = {k: [] for k in runs}, {}
    for k, kw in runs.items(): labels[k] = it.importance(n_repeats=a.repeats, seed=0, progress=False, **kw).attrs['interval']   # warm-up
    for _ in range(a.rounds):
        for k, kw in runs.items():
            t0 = time.perf_counter(); it.importance(n_repeats=a.repeats, seed=0, progress=False, **kw); times[k].append(time.perf_counter() - t0)
    print(f"demo classifier, {a.rows:,} rows, 7 features, {a.repeats} repeats, best of {a.rounds} alternating runs, 1 torch thread")
    for k in runs: print(f"  {k:26s} {min(times[k]):.3f} s  ({labels[k]})")
    r = min(times['AUC, bootstrap (default)']) / min(times['AUC, repeats only'])
    print(f"bootstrap / repeats-only: {r:.2f}x (goal ~1.5x)")
    return 0


if __name__ == '__main__':
    sys.exit(main())
