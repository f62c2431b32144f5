"""Time `learn.explain` on 100 rows of a 10-feature tabular learner against a 100-row background, and, in the same
run, `shap.PermutationExplainer` wrapped around the same learner (needs `pip install shap`).

Usage: python benchmarks/bench_shapley.py [--rows 100] [--background 100] [--permutations 32]

The learner: the package's demo data widened with three extra continuous columns (10 features), trained briefly.
  ours : learn.explain(rows, background=bg, method='permutation', n_permutations=P) — antithetic permutation sampling,
         every coalition of every row evaluated as batched engine jobs on encoded tensors.
  shap : shap.PermutationExplainer(f, shap.maskers.Independent(bg_encoded, max_samples=len(bg)), max_evals=...)
         where f maps the ENCODED feature matrix (categorical codes and normalised values, encoded once outside the
         timing) through learn.model on all rows in one call — the fastest wrapper a user can write (a wrapper on raw
         rows through test_dl + get_preds is much slower). max_evals is set so shap evaluates as many coalitions per
         row as ours: P/2 antithetic pairs of orders of 10 features.
Printed: seconds for each, the ratio, and the mean |ours - shap| relative to the mean |attribution|.
"""
import argparse, time, warnings
import numpy as np
import torch

warnings.filterwarnings('ignore')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rows', type=int, default=100)
    ap.add_argument('--background', type=int, default=100)
    ap.add_argument('--permutations', type=int, default=32)
    args = ap.parse_args()
    from fastai.tabular.all import TabularDataLoaders, tabular_learner, Categorify, FillMissing, Normalize, RegressionBlock
    from fastai_featimp.all import make_demo_data, isolated_seed, encode
    import fastai_featimp.shapley  # Learner.explain
    df = make_demo_data(8000, 'regression', seed=0)
    rng = np.random.default_rng(1)
    for c in ['e0', 'e1', 'e2']: df[c] = rng.normal(size=len(df))
    df['y'] = df.y + 0.5 * df.e0
    tr, te = df.iloc[:6000], df.iloc[6000:].reset_index(drop=True)
    conts = ['x1', 'x2', 'x3', 'x3_twin', 'noise', 'e0', 'e1', 'e2']
    with isolated_seed(0):
        dls = TabularDataLoaders.from_df(tr, procs=[Categorify, FillMissing, Normalize], cat_names=['shade', 'zip'],
                                         cont_names=conts, y_names='y', y_block=RegressionBlock(), valid_pct=0.2, bs=256)
        learn = tabular_learner(dls, layers=[200, 100])
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(2, 1e-2)
    rows, bg = te.iloc[:args.rows], te.iloc[1000:1000 + args.background]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(rows)} rows x {len(bg)} background rows, "
          f"10 features, {args.permutations} orders per row")

    t0 = time.perf_counter()
    sv = learn.explain(rows, background=bg, method='permutation', n_permutations=args.permutations, seed=0, progress=False)
    ours = time.perf_counter() - t0
    print(f"ours (learn.explain)          : {ours:7.2f} s")
    try:
        import shap
    except ImportError:
        print("shap is not installed: `pip install shap` to time it in the same run"); return
    # encoded matrix: one column per encoded column. x2's `_na` indicator cannot be rebuilt from the filled x2, so it is
    # a column of its own and shap treats x2 and x2_na as two players; we compare the sum of the two with our x2.
    d_rows, d_bg = encode(learn, df=rows), encode(learn, df=bg)
    Xr = torch.cat([d_rows.x_cat.double(), d_rows.x_cont.double()], 1).numpy()
    Xb = torch.cat([d_bg.x_cat.double(), d_bg.x_cont.double()], 1).numpy()
    nc = d_rows.x_cat.shape[1]
    model = learn.model.eval()
    def f(a):
        a = torch.as_tensor(a)
        with torch.inference_mode(): return model(a[:, :nc].round().long(), a[:, nc:].float())[:, 0].numpy()
    m = Xr.shape[1]
    expl = shap.PermutationExplainer(f, shap.maskers.Independent(Xb, max_samples=len(Xb)), seed=0)
    t0 = time.perf_counter()
    ref = expl(Xr, max_evals=args.permutations * m + 1, silent=True).values
    theirs = time.perf_counter() - t0
    names = list(d_rows.columns.name)
    own = sv.pivot(index='row', columns='feature', values='attribution')
    ref_f = {}
    for r in d_rows.columns.itertuples():
        ref_f[r.feature] = ref_f.get(r.feature, 0) + ref[:, names.index(r.name)]
    diff = np.mean([np.abs(own[k].to_numpy() - v).mean() for k, v in ref_f.items()])
    scale = np.mean([np.abs(v).mean() for v in ref_f.values()])
    print(f"shap.PermutationExplainer     : {theirs:7.2f} s")
    print(f"shap / ours                   : {theirs / ours:7.2f}x")
    print(f"mean |ours - shap| / mean |attribution|: {diff / scale:.3f} (both sampled: a few % is sampling noise)")


if __name__ == '__main__':
    main()
