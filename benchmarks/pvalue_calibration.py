#!/usr/bin/env python
"""Calibration of the permutation importance p-values on fresh test draws (issue 21 item 1).

A demo learner (`fastai_featimp.demo.demo_learner`, trained on its own draw of the demo data, seed 1000) is scored on
`--draws` fresh test sets drawn from the same generator (`make_demo_data(rows, task, seed=s)`, s = 0, 1, ...), with
the model fixed. For each score — the loss and two metrics per task — and each column it records the share of draws
with `p_value < 0.05` (and `p_adjusted < 0.05`). A calibrated test gives the irrelevant columns (`noise`, `zip`)
about 5% and the drivers (`x1`, `x2`, `x3`, `shade`) about 100%, whatever the score and its interval
('rows (paired)', 'rows (delta)', 'rows (bootstrap)').

Run:  python benchmarks/pvalue_calibration.py [--draws 100] [--rows 1000] [--repeats 5] [--task regression|classification|both]
"""
from __future__ import annotations
import argparse, sys, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import pandas as pd
import torch

SCORES = {'regression': [None, 'rmse', 'mae'], 'classification': [None, 'accuracy', 'RocAucBinary']}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--draws', type=int, default=100); ap.add_argument('--rows', type=int, default=1000)
    ap.add_argument('--repeats', type=int, default=5); ap.add_argument('--task', default='both')
    ap.add_argument('--threads', type=int, default=1)
    a = ap.parse_args(argv)
    warnings.filterwarnings('ignore')
    torch.set_num_threads(a.threads)
    from fastai_featimp.all import FeatureInterpretation, demo_learner, make_demo_data, DEMO_TRUTH
    tasks = ['regression', 'classification'] if a.task == 'both' else [a.task]
    failures = []
    cols = DEMO_TRUTH['drivers'] + DEMO_TRUTH['irrelevant']
    for task in tasks:
        t0 = time.perf_counter()
        learn, _ = demo_learner(task, n=6000, epochs=4, seed=1000)
        rec = {str(m): [] for m in SCORES[task]}
        labels = {}
        for s in range(a.draws):
            interp = FeatureInterpretation.from_learner(learn, df=make_demo_data(a.rows, task, seed=s))
            for m in SCORES[task]:
                t = interp.importance(metric=m, n_repeats=a.repeats, seed=s, progress=False).set_index('feature')
                rec[str(m)].append(t.loc[cols, ['p_value', 'p_adjusted']])
                labels[str(m)] = t.interval.iloc[0]
        print(f"\n=== {task}: {a.draws} fresh test draws of {a.rows} rows, {a.repeats} repeats "
              f"({time.perf_counter() - t0:.0f} s) — share of draws with p < 0.05 (p_adjusted < 0.05)")
        rows = []
        for m, tabs in rec.items():
            p = np.stack([x.p_value.to_numpy() for x in tabs]); q = np.stack([x.p_adjusted.to_numpy() for x in tabs])
            nan = int(np.isnan(p).sum())
            limit = 0.05 + 2.33 * np.sqrt(0.05 * 0.95 / a.draws)            # one-sided 99% above a calibrated 5%
            for j, c in enumerate(cols):
                share = (p[:, j] < 0.05).mean()
                if c in DEMO_TRUTH['irrelevant'] and share > limit: failures.append(f"{task} {m} {c}: {share:.1%} > {limit:.1%}")
                if c in DEMO_TRUTH['drivers'] and share < 0.95: failures.append(f"{task} {m} {c}: drivers found in {share:.1%} < 95%")
            if nan: failures.append(f"{task} {m}: {nan} NaN p-values")
            rows.append([m if m != 'None' else 'loss', labels[m]] + [f"{(p[:, j] < 0.05).mean():.1%} ({(q[:, j] < 0.05).mean():.1%})" for j in range(len(cols))]
                        + [nan])
        print(pd.DataFrame(rows, columns=['score', 'interval'] + cols + ['NaN p']).to_string(index=False))
        se = np.sqrt(0.05 * 0.95 / a.draws)
        print(f"(a calibrated share of an irrelevant column is 5%: its binomial standard error over {a.draws} draws is {se:.1%}, "
              f"so shares within 5% +/- {2 * se:.1%} are consistent with calibration)")
    print("\ngoal (irrelevant columns at most 5% + 2.33 binomial SE, drivers at least 95%, no NaN): "
          + ("met" if not failures else "NOT MET: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
