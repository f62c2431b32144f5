#!/usr/bin/env python
"""Time `learn.explain` (Shapley values) against the `shap` package's PermutationExplainer on the same learner, in one run.

Usage: python benchmarks/bench_shapley.py [--rows 100] [--background 100] [--permutations 32] [--predict-rows 5]
                                          [--threads 1] [--exact]

A `tabular_learner` with 10 features (the package's synthetic demo data without missing values, plus three extra
continuous columns: 2 categoricals, 8 continuous) is trained for two epochs. Then `--rows` rows are explained against
the same `--background` rows, with the same number of antithetic permutation pairs (`--permutations / 2`) everywhere:

  ours        : learn.explain(rows, background=bg, method='permutation', n_permutations=P) end to end (encoding
                included); every (row, coalition) is averaged over the background in batched forward passes.
  floor       : the same number of model rows (`attrs['n_model_rows']`) as bare forward passes of learn.model over
                prebuilt tensors in chunks of `default_bs` (as ours uses), under torch.inference_mode() — no
                virtual-row building, no activation, no averaging.
  shap/model  : shap.PermutationExplainer on the bare model: features as numbers (category codes, normalised
                continuous values), f(X) calls learn.model on tensors (shap's best case), max_evals = (P/2) * (2M + 1),
                all rows.
  shap/predict: shap.PermutationExplainer wrapped around the learner's own prediction path, as users do it: f(X) turns
                the numbers back into a raw DataFrame and calls learn.get_preds(dl=learn.dls.test_dl(df)); timed on
                `--predict-rows` rows only (it is slow) and compared per row.
  exact       : with --exact, also learn.explain(method='exact') (2**10 coalitions per row).

Printed: seconds, seconds per row, model rows evaluated, the ratios shap/ours (per row) and ours/floor, and the
agreement between our attributions and shap's (both are estimates; their difference should be about their noise).
"""
import argparse, time, warnings
import numpy as np
import pandas as pd
import torch

import common as C

warnings.filterwarnings('ignore')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rows', type=int, default=100)
    ap.add_argument('--background', type=int, default=100)
    ap.add_argument('--permutations', type=int, default=32)
    ap.add_argument('--predict-rows', type=int, default=5)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--exact', action='store_true')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import shap
    from fastai_featimp.all import encode, default_bs
    import fastai_featimp.all  # noqa: F401  (patches Learner.explain)

    learn, test = C.demo_with_extras(extra_signal=True)
    rows, bg = test.iloc[:args.rows], test.iloc[args.rows:args.rows + args.background]
    n_feat, P = 10, args.permutations
    print(f"torch {torch.__version__}, shap {shap.__version__}, {torch.get_num_threads()} thread(s); {len(rows)} rows explained, "
          f"{len(bg)} background rows, {n_feat} features, {P} permutations ({P // 2} antithetic pairs) per row")

    # ours
    learn.explain(rows.iloc[:2], background=bg.iloc[:10], n_background=None, method='permutation', n_permutations=4, progress=False)  # warm-up
    t0 = time.perf_counter()
    ours = learn.explain(rows, background=bg, n_background=None, method='permutation', n_permutations=P, seed=0, progress=False)
    t_ours = time.perf_counter() - t0
    n_model_rows = ours.attrs['n_model_rows']

    # floor: the same number of bare forward passes
    data = encode(learn, df=pd.concat([rows, bg]), labelled=False)
    g = torch.Generator().manual_seed(0)
    cr = default_bs(data.inputs, predict=learn.model)
    idx = torch.randint(0, data.n_rows, (cr,), generator=g)
    xc, xn = data.x_cat[idx], data.x_cont[idx]
    model = learn.model.eval()
    t0 = time.perf_counter()
    with torch.inference_mode():
        left = n_model_rows
        while left > 0:
            k = min(left, cr); model(xc[:k], xn[:k]); left -= k
    t_floor = time.perf_counter() - t0

    # shap on the bare model, features as numbers
    enc_rows = encode(learn, df=rows, labelled=False); enc_bg = encode(learn, df=bg, labelled=False)
    n_cat = enc_rows.x_cat.shape[1]
    as_num = lambda d: np.hstack([d.x_cat.numpy().astype(float), d.x_cont.numpy().astype(float)])

    def f_model(X):
        X = torch.as_tensor(X)
        with torch.inference_mode(): return model(X[:, :n_cat].long(), X[:, n_cat:].float())[:, 0].double().numpy()

    max_evals = (P // 2) * (2 * n_feat + 1)
    np.random.seed(0)   # shap draws its orders from NumPy's global generator
    expl = shap.explainers.Permutation(f_model, shap.maskers.Independent(as_num(enc_bg), max_samples=len(bg)))
    t0 = time.perf_counter()
    sh = expl(as_num(enc_rows), max_evals=max_evals, silent=True).values
    t_shap_model = time.perf_counter() - t0

    # shap around the learner's own prediction path (raw DataFrame -> test_dl -> get_preds)
    cats, conts = list(learn.dls.cat_names), list(learn.dls.cont_names)
    classes = learn.dls.classes
    raw_num = lambda df: np.hstack([np.stack([df[c].map({v: i for i, v in enumerate(classes[c])}).to_numpy(float) for c in cats], 1),
                                    df[conts].to_numpy(float)])

    def f_predict(X):
        df = pd.DataFrame({c: np.asarray(classes[c], dtype=object)[X[:, i].astype(int)] for i, c in enumerate(cats)})
        for j, c in enumerate(conts): df[c] = X[:, len(cats) + j]
        with learn.no_bar(): return learn.get_preds(dl=learn.dls.test_dl(df))[0][:, 0].double().numpy()

    k = min(args.predict_rows, len(rows))
    expl2 = shap.explainers.Permutation(f_predict, shap.maskers.Independent(raw_num(bg), max_samples=len(bg)))
    t0 = time.perf_counter()
    sh2 = expl2(raw_num(rows.iloc[:k]), max_evals=max_evals, silent=True).values
    t_shap_predict = time.perf_counter() - t0

    t_exact = None
    if args.exact:
        t0 = time.perf_counter()
        ex = learn.explain(rows, background=bg, n_background=None, method='exact', progress=False)
        t_exact = time.perf_counter() - t0

    a = ours.attribution.to_numpy().reshape(len(rows), n_feat)
    order = [list(ours.feature.unique()).index(c) for c in ['shade', 'zip'] + conts]   # shap's column order
    a = a[:, order]
    se = ours.std_err.to_numpy().reshape(len(rows), n_feat)[:, order]
    z = (sh - a) / np.sqrt(2 * se ** 2 + 1e-30)   # both are estimates with about the same noise
    per = lambda t, n: t / n
    print(f"model rows evaluated by ours: {n_model_rows:,} ({ours.attrs['n_coalitions']:,} distinct (row, coalition) pairs "
          f"x {len(bg)} background rows)")
    print(f"ours  (learn.explain, permutation)     : {t_ours:8.2f} s  ({per(t_ours, len(rows)):.3f} s/row)")
    print(f"floor (bare forward passes, same rows, {cr:,} per pass): {t_floor:8.2f} s")
    print(f"shap/model   (PermutationExplainer)     : {t_shap_model:8.2f} s  ({per(t_shap_model, len(rows)):.3f} s/row)")
    print(f"shap/predict (get_preds on test_dl), {k} rows: {t_shap_predict:8.2f} s  ({per(t_shap_predict, k):.3f} s/row)")
    if t_exact is not None: print(f"ours exact (2**{n_feat} coalitions per row)  : {t_exact:8.2f} s")
    print(f"ratio shap/model   / ours (per row)     : {per(t_shap_model, len(rows)) / per(t_ours, len(rows)):8.1f}")
    print(f"ratio shap/predict / ours (per row)     : {per(t_shap_predict, k) / per(t_ours, len(rows)):8.1f}")
    print(f"ratio ours / floor                      : {t_ours / t_floor:8.2f}")
    print(f"agreement with shap/model: mean z^2 = {np.mean(z ** 2):.2f} (about 1 if both are unbiased with these errors), "
          f"corr = {np.corrcoef(a.ravel(), sh.ravel())[0, 1]:.4f}; shap/predict vs ours on {k} rows: "
          f"max |diff| = {np.abs(sh2 - a[:k]).max():.3g} (our median std_err {np.median(se):.3g})")


if __name__ == '__main__':
    main()
