"""Null importance (issue 12.3) and feature selection (issue 12.4).

Fast tests use a tiny recipe (1,500 demo rows, 2 epochs) and few retrains: the tables, the p-value arithmetic, the
noise floor, determinism, errors before training. The slow tests are the issue's done-criteria on the demo data:
20 null models give the drivers p < 0.05 and `noise`, `zip` p > 0.05; backward elimination drops `noise` and `zip`,
keeps the drivers, and ends no worse than the full model beyond the noise floor (run them with `-m slow`).
"""
import numpy as np
import pandas as pd
import pytest

from fastai_featimp.all import (benjamini_hochberg, demo_learner, make_demo_data, RetrainRecipe, null_importance, select_features, DEMO_TRUTH,
                                null_p_values, plot_null_importance)

DRIVERS, IRRELEVANT = DEMO_TRUTH['drivers'], DEMO_TRUTH['irrelevant']


def recipe_for(task, n, epochs):
    learn, test_df = demo_learner(task, n=n, epochs=epochs, seed=0)
    return learn, test_df, RetrainRecipe.from_learner(learn, make_demo_data(n, task, seed=0).iloc[:int(0.8 * n)], epochs=epochs)


@pytest.fixture(scope='module')
def tiny():
    return recipe_for('regression', 1500, 2)


def test_null_importance_table_and_p_values(tiny):
    learn, test_df, recipe = tiny
    ni = null_importance(recipe, test_df, n_null=3, n_repeats=2, seed=0, progress=False)
    nulls = [f'null:{k}' for k in range(3)]
    assert list(ni.columns[:10]) == ['feature', 'type', 'importance', 'null_mean', 'null_std', 'null_q95', 'p_value', 'p_adjusted', 'p_parametric', 'fit']
    np.testing.assert_allclose(ni.p_adjusted, benjamini_hochberg(ni.p_value.to_numpy()))
    assert list(ni.columns[10:]) == nulls and ni.importance.is_monotonic_decreasing
    for r in ni.itertuples():
        v = np.array([getattr(r, f'_{11 + k}') for k in range(3)])
        assert r.p_value == pytest.approx((1 + (v >= r.importance).sum()) / 4)         # empirical, +1 corrected
        assert r.null_mean == pytest.approx(v.mean()) and r.null_std == pytest.approx(v.std(ddof=1))
        assert (r.p_value, r.p_parametric, r.fit) == pytest.approx(null_p_values(v, r.importance))
    again = null_importance(recipe, test_df, n_null=3, n_repeats=2, seed=0, progress=False)
    pd.testing.assert_frame_equal(ni, again)                                           # seeded: the same nulls
    assert plot_null_importance(ni) is not None


def test_null_models_learn_nothing(tiny):
    "A null model's target is a permutation of the real one: same values, no relation to the inputs."
    _, _, recipe = tiny
    seen = {}
    def spy(df, cats, conts, emb, seed): seen['y'] = df.y.to_numpy(); return None
    r = RetrainRecipe(recipe.df, recipe.cat_names, recipe.cont_names, recipe.y_names, train_fn=spy)
    r.train(shuffle_target=5)
    assert sorted(seen['y']) == sorted(recipe.df.y)
    assert abs(np.corrcoef(seen['y'], recipe.df.x1)[0, 1]) < 0.1 < abs(np.corrcoef(recipe.df.y, recipe.df.x1)[0, 1])


def test_select_features_history_and_the_paired_test(tiny):
    from scipy.stats import t as t_dist
    _, test_df, recipe = tiny
    sel = select_features(recipe, test_df, n_seeds=2, max_seeds=2, max_drops=1, n_repeats=2, seed=0, progress=False)
    h = sel.history
    assert list(h.columns) == ['step', 'dropped', 'n_features', 'score', 'delta', 'se', 'tolerance', 'p_value', 'n_seeds', 'limit',
                               'accepted', 'kept']
    assert h.step.tolist() == list(range(len(h))) and len(h) == 2 and h.n_features.tolist() == [7, 6]
    assert h.dropped[0] == '' and h.dropped[1] in recipe.features
    assert h.limit[0] == pytest.approx(h.score[0] + h.tolerance[0])                     # a loss: limit = full score + tolerance
    assert h.tolerance[0] == pytest.approx(2 * h.attrs['noise_sd'], rel=0.5) and h.tolerance[0] > 0
    assert h.accepted[1] == (h.p_value[1] < 0.05)                                       # H0: the drop costs at least the tolerance
    assert h.p_value[1] == pytest.approx(t_dist.cdf((h.delta[1] - h.tolerance[1]) / h.se[1], 1), abs=0.2)   # df between 1 and Welch's
    assert sel.history.attrs['n_retrains'] == 4                                        # 2 models x 2 seeds
    assert set(sel.kept) == set(recipe.features) - ({h.dropped[1]} if h.accepted[1] else set())
    assert sel.plot() is not None


def test_select_features_errors_before_training(tiny, monkeypatch):
    learn, test_df, recipe = tiny
    calls = []
    monkeypatch.setattr(RetrainRecipe, 'train', lambda self, *a, **k: calls.append(1))
    for kw, msg in [(dict(by='shap'), "by must be one of"), (dict(n_seeds=1), 'n_seeds'), (dict(min_features=9), 'min_features'),
                    (dict(folds=1), r'k \(folds\) must be an int >= 2'), (dict(executor='spark'), 'executor must be None')]:
        with pytest.raises((ValueError, TypeError), match=msg): select_features(recipe, test_df, **kw)
    with pytest.raises(ValueError, match='n_null must be an int >= 2'): null_importance(recipe, test_df, n_null=0)
    assert calls == []


@pytest.mark.slow
@pytest.mark.parametrize('task', ['regression', 'classification'])
def test_null_importance_on_the_demo(task):
    _, test_df, recipe = recipe_for(task, 3000, 3)
    ni = null_importance(recipe, test_df, n_null=20, seed=0, progress=False).set_index('feature')
    print(f"\n{task}:", ni[['importance', 'null_mean', 'null_std', 'p_value', 'p_parametric', 'fit']].to_string())
    for f in DRIVERS: assert ni.loc[f, 'p_value'] < 0.05, f
    for f in IRRELEVANT: assert ni.loc[f, 'p_value'] > 0.05, f


@pytest.mark.slow
@pytest.mark.parametrize('task', ['regression', 'classification'])
def test_select_features_on_the_demo(task):
    _, test_df, recipe = recipe_for(task, 6000, 4)
    sel = select_features(recipe, test_df, seed=0, progress=False)
    h = sel.history
    print(f"\n{task}:\n", h.drop(columns='kept').to_string())
    for f in IRRELEVANT: assert f not in sel.kept, f
    for f in DRIVERS: assert f in sel.kept, f
    assert (h.delta[h.accepted] <= h.tolerance[h.accepted]).all()                     # every kept drop costs less than the tolerance
    assert h.n_seeds.max() <= h.attrs['max_seeds']
