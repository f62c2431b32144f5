"""Intervals that cover the test rows (issue 12.2) and adaptive repeats (issue 13.4).

One learner is trained once (the session fixtures `reg` and `clf` of conftest); fresh test rows are drawn from the
same process with `make_demo_data(n, seed=s)`. An irrelevant column's 95% interval must contain 0 in at least 90% of
40 draws, and `x1`'s must exclude 0 in all of them. Both kinds are checked on every run (40 draws of 1,000 rows,
3 repeats; about 10 s each): the paired interval (the loss, a mean over rows) and the bootstrap interval (RMSE, not
a mean over rows, `n_boot` scorings per feature).
"""
import numpy as np
import pandas as pd
import pytest
import torch
from fastai_featimp.all import make_demo_data, FeatureInterpretation, DEMO_TRUTH, row_scorer
from fastai_featimp.core.engine import eval_mode, forward

IRRELEVANT = DEMO_TRUTH['irrelevant']          # ['noise', 'zip']


def coverage(learn, task, draws, n=1000, n_repeats=3, **kw):
    "Share of draws whose interval contains 0, per column, and the tables (one per draw)."
    tabs = []
    for s in range(100, 100 + draws):
        df = make_demo_data(n, task, seed=s)
        tabs.append(FeatureInterpretation.from_learner(learn, df=df).importance(n_repeats=n_repeats, seed=s, progress=False, **kw)
                    .set_index('feature'))
    contains = {f: np.mean([t.loc[f, 'ci_low'] <= 0 <= t.loc[f, 'ci_high'] for t in tabs]) for f in tabs[0].index}
    return contains, tabs


@pytest.mark.parametrize('name,task', [('reg', 'regression'), ('clf', 'classification')])
def test_rows_interval_covers_zero_for_irrelevant_columns(request, name, task):
    learn, _ = request.getfixturevalue(name)
    contains, tabs = coverage(learn, task, draws=40)
    rep_contains, _ = coverage(learn, task, draws=40, interval='repeats')
    print(f"\n{name}: share of 40 fresh test draws whose 95% interval contains 0 -- rows (paired): "
          + ", ".join(f"{f} {contains[f]:.0%}" for f in ['x1'] + IRRELEVANT)
          + " | repeats only: " + ", ".join(f"{f} {rep_contains[f]:.0%}" for f in IRRELEVANT))
    assert all(set(t.interval) == {'rows (paired)'} for t in tabs)
    for f in IRRELEVANT: assert contains[f] >= 0.9, (f, contains[f])
    assert contains['x1'] == 0                                   # x1's interval excludes 0 in every draw
    for f in DEMO_TRUTH['drivers']: assert all(t.loc[f, 'ci_low'] > 0 for t in tabs), f
    # the width is right for a strongly used column too: x1's standard error (half-width / t) against the real spread
    # of its importance over the 40 test sets, within 25% (rows as donors count: a target-only SE is ~1/3 too small)
    x1 = np.array([t.loc['x1', 'importance'] for t in tabs]); half = np.mean([t.loc['x1', 'ci_high'] - t.loc['x1', 'ci_low'] for t in tabs]) / 2
    assert 0.75 < half / 1.96 / x1.std(ddof=1) < 1.25, (half / 1.96, x1.std(ddof=1))
    # the repeat-only interval is the one that misleads: it excludes 0 for irrelevant columns far more often
    assert min(rep_contains[f] for f in IRRELEVANT) < min(contains[f] for f in IRRELEVANT)


def test_bootstrap_interval_for_a_metric_that_is_not_a_mean(reg):
    learn, _ = reg
    # fastai's rmse now gets the delta method (tests/test_pvalues.py); a sqrt the package cannot see into keeps the bootstrap
    own_rmse = lambda p, t: ((p.view(-1) - t.view(-1)) ** 2).mean().sqrt()
    contains, tabs = coverage(learn, 'regression', draws=40, metric=own_rmse, higher_is_better=False, n_boot=100)
    print("\nreg, rmse, 40 draws: interval contains 0 -- rows (bootstrap): "
          + ", ".join(f"{f} {contains[f]:.0%}" for f in ['x1'] + IRRELEVANT))
    assert all(set(t.interval) == {'rows (bootstrap)'} for t in tabs)
    assert contains['x1'] == 0
    for f in IRRELEVANT: assert contains[f] >= 0.9, (f, contains[f])
    # and the interval's width matches the real spread of x1's importance over the 40 test sets (within 25%)
    x1 = np.array([t.loc['x1', 'importance'] for t in tabs]); half = np.mean([t.loc['x1', 'ci_high'] - t.loc['x1', 'ci_low'] for t in tabs]) / 2
    assert 0.75 < half / 1.96 / x1.std(ddof=1) < 1.25, (half / 1.96, x1.std(ddof=1))


def test_row_scores_average_to_the_score(reg, clf):
    "The per-row form of each mean-type score reproduces the score itself (so the paired interval is centred right)."
    for learn, test_df, metrics in [(reg[0], reg[1], [None, 'mse', 'mae']), (clf[0], clf[1], [None, 'accuracy', 'error_rate'])]:
        it = FeatureInterpretation.from_learner(learn, df=test_df)
        x, y = it.inputs, it.targets()
        with eval_mode(learn.model): preds = forward(learn.model, x)     # the raw model outputs, as the engine computes them
        for m in metrics:
            sc = it.spec.scorer(m)
            rows = row_scorer(sc)
            assert rows is not None, m
            assert np.isclose(float(rows(preds, y).mean()), sc(preds, y), rtol=1e-5), m
        for m in ['rmse' if learn is reg[0] else 'RocAucBinary']: assert row_scorer(it.spec.scorer(m)) is None


def test_weighted_loss_falls_back_to_the_bootstrap(clf):
    "A class-weighted cross-entropy is not a plain mean over rows: the per-row check catches it."
    learn, test_df = clf
    w = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 3.0]))
    fi = learn.feature_importance(df=test_df, metric=lambda p, t: w(p, t.view(-1).long()), higher_is_better=False,
                                  n_repeats=2, seed=0, progress=False, n_boot=20)
    assert set(fi.interval) == {'rows (bootstrap)'}
    import copy
    from fastai.losses import CrossEntropyLossFlat
    lw = copy.copy(learn); lw.loss_func = CrossEntropyLossFlat(weight=torch.tensor([1.0, 3.0]))
    fw = lw.feature_importance(df=test_df, n_repeats=2, seed=0, progress=False, n_boot=20)
    assert set(fw.interval) == {'rows (bootstrap)'} and 'average to the score' in fw.attrs['interval_note']


def test_adaptive_repeats_deterministic_capped_and_ranks_drivers(clf):
    learn, test_df = clf
    it = FeatureInterpretation.from_learner(learn, df=test_df)
    a = it.importance(n_repeats='auto', max_repeats=12, seed=0, progress=False)
    b = it.importance(n_repeats='auto', max_repeats=12, seed=0, progress=False)
    pd.testing.assert_frame_equal(a, b)                               # deterministic with a seed
    assert a.repeats_used.max() <= 12 and a.repeats_used.min() >= 3
    assert a.attrs['n_jobs'] == 1 + a.repeats_used.sum()
    t = a.set_index('feature')
    assert t.loc[DEMO_TRUTH['drivers'], 'importance'].min() > t.loc[IRRELEVANT, 'importance'].max()
    assert t.loc['x1', 'repeats_used'] == 3                          # the clear-cut top feature stops early
    capped = it.importance(n_repeats='auto', max_repeats=4, tol=0.0, seed=0, progress=False).set_index('feature')
    assert capped.repeats_used.max() == 4                            # tol=0: columns at 0 run to the cap
    fixed = it.importance(n_repeats=12, seed=0, progress=False)
    for f in t.index:                                                 # repeat r is the same permutation
        k = t.loc[f, 'repeats_used']
        assert a.attrs['repeats'][f] == fixed.attrs['repeats'][f][:k]
    print("\nrepeats used per feature:", t.repeats_used.to_dict(), f"-> {a.attrs['n_jobs']} passes vs {1 + 12 * len(t)} with 12 repeats")
