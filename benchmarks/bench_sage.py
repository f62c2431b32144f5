#!/usr/bin/env python
"""Time `learn.sage_importance` (SAGE) against the authors' `sage-importance` package on the same model, rows and
background, in one run.

Usage: python benchmarks/bench_sage.py [--rows 500] [--background 32] [--permutations 32] [--rounds 3] [--threads 1]
                                       [--task regression|classification] [--no-converged]

A `tabular_learner` with 10 features (the package's demo data without missing values plus three continuous columns,
as `bench_shapley.py`, `common.demo_with_extras`) is trained for two epochs; `--rows` test rows are explained against `--background` of them
(the background ours draws with its seed; the package gets exactly those rows).

  ours          : learn.sage_importance(df=rows, n_background=B, n_permutations=P, seed=0) end to end (encoding
                  included). One of its orders is walked on every row at once: P orders are P x rows marginal
                  contributions per feature; a coalition's loss is computed once and reused by every order reaching it.
  sage (same P) : sage.PermutationEstimator(sage.GroupedMarginalImputer(f, background, groups), loss) with
                  n_permutations = P x rows (the package's permutation is one (row, order) sample: the same number
                  of marginal contributions as ours), detect_convergence=False, batch_size=512; f runs learn.model
                  on tensors made from its numpy matrix (the package's best case).
  converged     : both until their own convergence rule holds at 0.025 (ours n_permutations='auto', tol=0.025; the
                  package's thresh=0.025 with n_permutations=None).

The two are timed alternately (ours, sage, ours, sage, ...), `--rounds` times each, with one torch thread; the best of
each is reported, with the ratio sage / ours, the model rows each evaluated, the largest standard error over the
range of the values (the convergence measure both use), the package's time extrapolated to ours' precision (standard
errors fall as 1/sqrt(samples)), and the largest |difference| between the two in combined standard errors.
"""
import argparse, time, warnings
import numpy as np
import torch

import common as C

warnings.filterwarnings('ignore')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rows', type=int, default=500)
    ap.add_argument('--background', type=int, default=32)
    ap.add_argument('--permutations', type=int, default=32)
    ap.add_argument('--rounds', type=int, default=3)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--task', default='regression', choices=['regression', 'classification'])
    ap.add_argument('--no-converged', action='store_true')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import sage
    from importlib.metadata import version
    from fastai_featimp.all import FeatureInterpretation

    learn, test = C.demo_with_extras(args.task)
    rows = test.iloc[:args.rows].reset_index(drop=True)
    R, B, P, clf = len(rows), args.background, args.permutations, args.task == 'classification'
    interp = FeatureInterpretation.from_learner(learn, df=rows)
    x_cat, x_cont = (t.cpu() for t in interp.inputs)
    k = x_cat.shape[1]
    X = torch.cat([x_cat.double(), x_cont.double()], 1).numpy()
    groups = [[c if i == 0 else k + c for i, c in f.columns] for f in interp.features]
    names = [f.name for f in interp.features]
    M = len(names)
    y = interp.targets().cpu().numpy()
    y = y.reshape(-1).astype(int) if clf else y
    model = learn.model.eval()

    def f(Z):
        Z = torch.as_tensor(Z)
        with torch.inference_mode():
            out = model(Z[:, :k].long(), Z[:, k:].float())
            return (torch.softmax(out, -1) if clf else out).double().numpy()

    loss = 'cross entropy' if clf else 'mse'
    print(C.machine_line())
    print(f"torch {torch.__version__}, sage-importance {version('sage-importance')}, {torch.get_num_threads()} thread(s); "
          f"{args.task}: {R} rows, {B} background rows, {M} features; {P} orders ({P // 2} antithetic pairs)")

    def ours(**kw):
        return learn.sage_importance(df=rows, n_background=B, seed=0, progress=False, **kw)

    warm = ours(n_permutations=4)                                        # warm-up; also gives the background rows
    bg = X[warm.attrs['background_index']]

    def theirs(**kw):
        est = sage.PermutationEstimator(sage.GroupedMarginalImputer(f, bg, groups), loss, random_state=0)
        return est(X, y, batch_size=512, bar=False, **kw)

    def ratio(values, se):
        values, se = np.asarray(values, float), np.asarray(se, float)
        return float(se.max() / max(values.max() - values.min(), 1e-12))

    def compare(label, kw_ours, kw_theirs):
        t_o, t_t = [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter(); a = ours(**kw_ours); t_o.append(time.perf_counter() - t0)
            t0 = time.perf_counter(); b = theirs(**kw_theirs); t_t.append(time.perf_counter() - t0)
        a = a.set_index('feature').loc[names]
        sv, sse = np.asarray(b.values), np.asarray(b.std)
        z = np.abs(a.sage.to_numpy() - sv) / np.sqrt(a['std'].to_numpy() ** 2 + sse ** 2 + 1e-30)
        n_perm_theirs = kw_theirs.get('n_permutations')
        rows_theirs = f"{n_perm_theirs * (M + 1) * B:,}" if n_perm_theirs else "?"
        print(f"\n[{label}]")
        print(f"  ours : best {min(t_o):7.2f} s  (runs {', '.join(f'{t:.2f}' for t in t_o)}); {a.attrs['n_permutations']} orders, "
              f"{a.attrs['n_coalitions']} distinct coalitions (of {a.attrs['n_permutations'] * (M - 1) + 1} visited), "
              f"{a.attrs['n_model_rows']:,} model rows; max SE / range = {ratio(a.sage, a['std']):.4f}")
        print(f"  sage : best {min(t_t):7.2f} s  (runs {', '.join(f'{t:.2f}' for t in t_t)}); "
              f"{n_perm_theirs if n_perm_theirs else 'until converged'} (row, order) samples, {rows_theirs} model rows; "
              f"max SE / range = {ratio(sv, sse):.4f}")
        r_o, r_t = ratio(a.sage, a['std']), ratio(sv, sse)
        print(f"  sage extrapolated to ours' precision (time x (its SE ratio / ours)^2, SE ~ 1/sqrt(samples)): "
              f"{min(t_t) * (r_t / r_o) ** 2:,.1f} s = {min(t_t) * (r_t / r_o) ** 2 / min(t_o):,.0f}x ours")
        print(f"  ratio sage / ours: {min(t_t) / min(t_o):6.1f}x    agreement: max |ours - sage| = {z.max():.2f} combined SE "
              f"(mean z^2 = {np.mean(z ** 2):.2f})")

    compare(f'same number of marginal contributions: {P} orders x {R} rows', dict(n_permutations=P),
            dict(n_permutations=P * R, detect_convergence=False))
    if not args.no_converged:
        compare('each until converged (0.025)', dict(n_permutations='auto', tol=0.025), dict(thresh=0.025))


if __name__ == '__main__':
    main()
