"""Folds and seeds (issue 12.1): combining fold tables, plotting them, and `cv_feature_importance`."""
import numpy as np
import pandas as pd
import pytest
import matplotlib
matplotlib.use('Agg')
import matplotlib.pyplot as plt
from matplotlib.collections import PathCollection
from scipy.stats import t as student

from fastai_featimp.all import (importance_table, combine_importance, plot_importance, save_importance_csv, make_demo_data,
                                RetrainRecipe, demo_learner)
from fastai_featimp.retrain.folds import cv_feature_importance, kfold_rows


def three_folds():
    "Three fold tables with known per-repeat values (3 repeats each)."
    vals = {0: {'a': [1.0, 1.2, 1.1], 'b': [0.1, 0.3, 0.2], 'c': [0.0, 0.02, -0.02]},
            1: {'a': [0.8, 1.0, 0.9], 'b': [0.0, 0.0, 0.3], 'c': [0.01, 0.0, -0.01]},
            2: {'a': [1.3, 1.3, 1.4], 'b': [0.2, 0.4, 0.3], 'c': [0.05, -0.05, 0.0]}}
    tabs = [importance_table(list(v), ['continuous', 'categorical', 'continuous'], list(v.values())) for v in vals.values()]
    return vals, tabs


def test_combine_three_fold_tables_by_hand(tmp_path):
    vals, tabs = three_folds()
    cmb = combine_importance(tabs).set_index('feature')
    for f in ['a', 'b', 'c']:
        means = np.array([np.mean(vals[k][f]) for k in range(3)])              # each fold's importance
        within = np.array([np.std(vals[k][f], ddof=1) for k in range(3)])      # each fold's spread over repeats
        half = student.ppf(0.975, 2) * means.std(ddof=1) / np.sqrt(3)
        assert cmb.loc[f, 'importance'] == pytest.approx(means.mean(), abs=1e-12)
        assert cmb.loc[f, 'std_between'] == pytest.approx(means.std(ddof=1), abs=1e-12)
        assert cmb.loc[f, 'std_within'] == pytest.approx(np.sqrt(np.mean(within ** 2)), abs=1e-12)
        assert (cmb.loc[f, 'ci_low'], cmb.loc[f, 'ci_high']) == pytest.approx((means.mean() - half, means.mean() + half), abs=1e-12)
        assert [cmb.loc[f, f'fold:{k}'] for k in range(3)] == pytest.approx(list(means), abs=1e-12)
    assert cmb.n_tables.eq(3).all() and cmb.loc['b', 'type'] == 'categorical'
    # the same from CSV files, and from pd.concat with a fold column (attrs lost)
    paths = [save_importance_csv(t, tmp_path / f'fold{k}.csv') for k, t in enumerate(tabs)]
    pd.testing.assert_frame_equal(combine_importance(paths), combine_importance(tabs), check_dtype=False)
    cat = pd.concat([t.assign(fold=k) for k, t in enumerate(tabs)], ignore_index=True)
    pd.testing.assert_frame_equal(combine_importance(cat), combine_importance(tabs), check_dtype=False)


def test_plot_of_combined_table_has_one_bar_per_feature_and_the_fold_values():
    _, tabs = three_folds()
    cmb = combine_importance(tabs)
    for table in (cmb, pd.concat([t.assign(fold=k) for k, t in enumerate(tabs)], ignore_index=True)):
        ax = plot_importance(table)
        assert len(ax.patches) == 3                                        # one bar per feature, never one per fold
        assert [t.get_text() for t in ax.get_yticklabels()] == list(cmb.feature)
        dots = [c for c in ax.collections if isinstance(c, PathCollection)]
        assert len(dots) == 3                                              # one set of dots per fold
        for k, d in enumerate(dots):
            assert list(np.sort(d.get_offsets()[:, 0])) == pytest.approx(list(np.sort(cmb[f'fold:{k}'].to_numpy())))
        plt.close('all')


def test_cv_feature_importance_on_fold_pairs(reg):
    learn, test_df = reg
    parts = [test_df.iloc[i::3].reset_index(drop=True) for i in range(3)]       # three held-out sets for one learner
    res = cv_feature_importance([(learn, d) for d in parts], n_repeats=3, seed=0, progress=False, labels=['A', 'B', 'C'])
    assert len(res.tables) == 3 and [t.attrs['n_rows'] for t in res.tables] == [len(d) for d in parts]
    c = res.combined.set_index('feature')
    for f in c.index:
        v = [t.set_index('feature').loc[f, 'importance'] for t in res.tables]
        assert c.loc[f, 'importance'] == pytest.approx(np.mean(v)) and c.loc[f, 'std_between'] == pytest.approx(np.std(v, ddof=1))
        assert [c.loc[f, f'fold:{k}'] for k in 'ABC'] == pytest.approx(v)
    one = learn.feature_importance(df=parts[1], n_repeats=3, seed=0, progress=False)
    pd.testing.assert_frame_equal(res.tables[1], one)                          # each fold is exactly feature_importance


def test_cv_feature_importance_with_a_recipe_trains_the_folds():
    learn, _ = demo_learner('regression', n=1500, epochs=2, seed=0)
    recipe = RetrainRecipe.from_learner(learn, make_demo_data(1500, 'regression', seed=0).iloc[:1200], epochs=2)
    res = cv_feature_importance(3, recipe=recipe, n_repeats=2, seed=0, progress=False)
    assert [t.attrs['n_rows'] for t in res.tables] == [400, 400, 400]
    assert res.combined.attrs['labels'] == ['0', '1', '2'] and 'fold:2' in res.combined.columns
    assert sorted(sum(kfold_rows(1200, 3, recipe.seed), [])) == list(range(1200))
