"""Time `learn.double_permutation` (top_k=10 pairs) on 50,000 rows on CPU, against the floor of bare forward passes.

Usage: python benchmarks/bench_double_permutation.py [--rows 50000] [--top-k 10] [--repeats 5]

The data is the package's synthetic demo data widened with five extra continuous columns (12 features in all), so ten
features can be paired. What is timed, in one run:
  ours  : learn.double_permutation(df=..., top_k=K, n_repeats=R) end to end (encoding, a ranking pass over all
          features, then the K singles and K(K-1)/2 pairs, all batched through the engine)
  floor : the same number of bare forward passes of learn.model over the prebuilt tensors, no permutation or scoring
Printed: seconds, the number of forward passes, and the ratio ours/floor.
"""
import argparse, time, warnings
import numpy as np
import torch

import common as C

warnings.filterwarnings('ignore')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--rows', type=int, default=50_000)
    ap.add_argument('--top-k', type=int, default=10)
    ap.add_argument('--repeats', type=int, default=5)
    args = ap.parse_args()
    from fastai_featimp.all import make_demo_data, encode, default_bs
    n = args.rows
    df = make_demo_data(2 * n, 'regression', seed=0)
    rng = np.random.default_rng(1)
    extra = [f'e{i}' for i in range(5)]
    for i, c in enumerate(extra): df[c] = rng.normal(size=len(df)) + (0.5 * df.x1 if i == 0 else 0)
    df['y'] = df.y + 0.5 * df.e1
    train, test = df.iloc[:n].reset_index(drop=True), df.iloc[n:].reset_index(drop=True)
    conts = ['x1', 'x2', 'x3', 'x3_twin', 'noise'] + extra
    learn = C.train(train, dict(cat_names=['shade', 'zip'], cont_names=conts, y_names='y', task='regression'), epochs=1, bs=1024,
                    n_valid=len(train) // 5)
    n_feat, k, r = 12, args.top_k, args.repeats
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(test)} scored rows, {n_feat} features, "
          f"top_k={k}, {r} repeats")

    t0 = time.perf_counter()
    dp = learn.double_permutation(df=test, top_k=k, n_repeats=r, seed=0, progress=False)
    ours = time.perf_counter() - t0
    passes = 1 + n_feat * r + 1 + (k * (k - 1) // 2) * r   # ranking run (baseline + all singles), pair run (baseline + pairs)

    data = encode(learn, df=test)
    xc, xn = data.x_cat, data.x_cont
    cr = default_bs((xc, xn), predict=learn.model)
    model = learn.model
    was = model.training
    model.eval()
    t0 = time.perf_counter()
    with torch.inference_mode():
        for _ in range(passes):
            for a in range(0, len(xc), cr): model(xc[a:a + cr], xn[a:a + cr])
    floor = time.perf_counter() - t0
    model.train(was)
    print(f"pairs scored: {len(dp)}; forward passes over {len(test)} rows: {passes}")
    print(f"ours  (learn.double_permutation): {ours:7.2f} s")
    print(f"floor (bare forward passes)     : {floor:7.2f} s")
    print(f"ours / floor                    : {ours / floor:7.2f}")
    print(dp.head(5).round(4).to_string(index=False))


if __name__ == '__main__':
    main()
