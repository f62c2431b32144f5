"""Snapshot the package's numbers, to check that a refactoring changes none of them.

    python tools/result_snapshot.py save before.pkl      # on the old commit (e.g. in a `git worktree`, with PYTHONPATH set)
    python tools/result_snapshot.py save after.pkl       # on the new one
    python tools/result_snapshot.py compare before.pkl after.pkl
    python tools/result_snapshot.py compare before.pkl after.pkl 1e-5   # numbers within 1e-5 of each table's scale

`save` runs ~40 seeded analyses through the public API (`fastai_featimp.all`): importance with the loss, a metric,
groups, conditional strata and adaptive repeats; correlations; double permutation; PDP/ICE (1-D, 2-D); ALE
(continuous, categorical); H; exact and sampled Shapley; sensitivity — on two small demo learners — and the generic
functions on a torch model. `compare` checks every table bit for bit (`assert_frame_equal(check_exact=True)`; attrs are
left out) and exits 1 on any difference. Takes about a minute on 2 cores.
"""
import pickle, sys, warnings
import pandas as pd


def snapshot() -> dict:
    import torch
    from torch import nn
    from fastai_featimp.all import (demo_learner, FeatureInterpretation, partial_dependence, accumulated_local_effects, h_statistic,
                                    permutation_importance, feature_sensitivity, shapley_values, double_permutation)
    warnings.simplefilter('ignore'); torch.set_num_threads(1)
    out = {}
    def rec(k, v):
        if isinstance(v, pd.DataFrame): v = v.copy(); v.attrs = {}
        out[k] = v
    for task in ['classification', 'regression']:
        learn, test = demo_learner(task, n=3000, epochs=2, seed=0)
        m = 'accuracy' if task == 'classification' else 'rmse'
        rec(f'{task}/fi', learn.feature_importance(df=test, seed=0, progress=False))
        rec(f'{task}/fi_metric', learn.feature_importance(df=test, seed=1, metric=m, progress=False))
        if task == 'classification':
            rec(f'{task}/fi_auc', learn.feature_importance(df=test, seed=1, metric='RocAucBinary', progress=False))
            rec(f'{task}/fi_auc_rep', learn.feature_importance(df=test, seed=1, metric='RocAucBinary', interval='repeats', progress=False))
        rec(f'{task}/fi_groups', learn.feature_importance(df=test, seed=2, groups='auto', progress=False))
        rec(f'{task}/fi_cond', learn.feature_importance(df=test, seed=2, conditional=True, progress=False))
        rec(f'{task}/fi_auto', learn.feature_importance(df=test, seed=3, n_repeats='auto', progress=False))
        it = FeatureInterpretation.from_learner(learn, df=test)
        rec(f'{task}/corr', it.correlations())
        rec(f'{task}/dp', it.double_permutation(cols=['x1', 'x2', 'shade'], seed=0, progress=False))
        rec(f'{task}/pdp', it.partial_dependence('x1', kind='both', max_rows=200, seed=0, progress=False))
        rec(f'{task}/pdp2', it.partial_dependence(['x1', 'shade'], max_rows=200, seed=0, progress=False))
        rec(f'{task}/ale', it.ale('x2', seed=0)); rec(f'{task}/ale_cat', it.ale('shade', seed=0))
        rec(f'{task}/h', it.h_statistic(['x1', 'x2', 'shade'], max_rows=60, n_repeats=2, seed=0, progress=False))
        rec(f'{task}/sv', it.explain(range(5), n_background=30, seed=0, progress=False))
        rec(f'{task}/svp', it.explain(range(3), n_background=20, method='permutation', n_permutations=8, seed=0, progress=False))
        rec(f'{task}/sens', it.sensitivity(seed=0, progress=False))
        rec(f'{task}/sensn', it.sensitivity(method='noise', seed=0, progress=False, per_output=True))
        rec(f'{task}/score', it.score())
    g = torch.Generator().manual_seed(0)
    X = torch.randn(400, 4, generator=g); X[:, 3] = torch.randint(0, 5, (400,), generator=g).float()
    with torch.random.fork_rng():
        torch.manual_seed(0); net = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    y = net(X).detach()[:, :1] + 0.1 * torch.randn(400, 1, generator=g); yy = torch.cat([y, y], 1)
    rec('generic/pdp', partial_dependence(net, X, 0, kind='both', max_rows=100, seed=0))
    rec('generic/pdp2', partial_dependence(net, X, [0, 3], categorical=[False, True], grid_resolution=5))
    rec('generic/ale', accumulated_local_effects(net, X, 1, n_bins=8))
    rec('generic/ale_cat', accumulated_local_effects(net, X, 3, categorical=True))
    rec('generic/h', h_statistic(net, X, max_rows=50, n_repeats=2, seed=0, output=0, progress=False))
    rec('generic/pi', permutation_importance(net, X, yy, seed=0, progress=False))
    rec('generic/fs', feature_sensitivity(net, X, seed=0, progress=False))
    rec('generic/sv', shapley_values(net, X[:5], X[100:140], seed=0, progress=False))
    rec('generic/dp', double_permutation(net, X, yy, seed=0, progress=False))
    return out


def _scaled_gap(a: pd.DataFrame, b: pd.DataFrame) -> float:
    """Largest |a - b| of the numeric columns over the table's largest |b| (a column of differences, such as an interaction
    or its interval, is near float32 rounding at its own scale: the full passes themselves move it by ~5e-5 of it between
    chunk sizes); the other columns and the layout must be equal."""
    import numpy as np
    num = [c for c in a.columns if pd.api.types.is_numeric_dtype(a[c]) and not pd.api.types.is_bool_dtype(a[c])]
    pd.testing.assert_frame_equal(a.drop(columns=num), b.drop(columns=num), check_exact=True)
    gap, scale = 0.0, 0.0
    for c in num:
        x, y = a[c].to_numpy(np.float64), b[c].to_numpy(np.float64)
        if not np.array_equal(np.isnan(x), np.isnan(y)): return float('inf')
        gap = max(gap, np.nanmax(np.abs(x - y), initial=0.0)); scale = max(scale, np.nanmax(np.abs(y), initial=0.0))
    return gap / scale if scale > 0 else gap


def compare(a: dict, b: dict, rtol: float = 0.0) -> int:
    "Bit for bit (rtol=0), or the numeric columns of each table within `rtol` of its largest absolute value."
    bad, worst = 0, 0.0
    for k in a:
        if k not in b: print('missing', k); bad += 1; continue
        try:
            if isinstance(a[k], pd.DataFrame):
                if rtol:
                    g = _scaled_gap(a[k], b[k]); worst = max(worst, g)
                    assert g <= rtol, f'largest scaled difference {g:.3g} > {rtol:g}'
                else: pd.testing.assert_frame_equal(a[k], b[k], check_exact=True)
            else: assert a[k] == b[k] if not rtol else abs(a[k] - b[k]) <= rtol * max(abs(b[k]), 1e-300), (a[k], b[k])
        except AssertionError as e: print('DIFFERS', k, str(e)[:300]); bad += 1
    print(f'compared {len(a)} results: {bad} differ' + (f' (rtol {rtol:g}; largest scaled difference {worst:.3g})' if rtol else ''))
    return bad


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == 'save':
        s = snapshot(); pickle.dump(s, open(sys.argv[2], 'wb')); print(f'saved {len(s)} results to {sys.argv[2]}')
    elif len(sys.argv) in (4, 5) and sys.argv[1] == 'compare':
        rtol = float(sys.argv[4]) if len(sys.argv) == 5 else 0.0
        sys.exit(1 if compare(pickle.load(open(sys.argv[2], 'rb')), pickle.load(open(sys.argv[3], 'rb')), rtol) else 0)
    else: sys.exit(__doc__)
