"""`to_shap` (issue 23 item 3): a Shapley table as a `shap.Explanation` that shap's own plots draw (waterfall, beeswarm,
bar under Agg with show=False), for a regression, a binary classifier, several classes (a list, or one by `output=`),
`target='predicted'`, groups, and the generic `shapley_values`."""
import numpy as np
import pandas as pd
import pytest
import torch
from fastai_featimp.all import to_shap, shapley_values

shap = pytest.importorskip('shap')
plt = pytest.importorskip('matplotlib.pyplot')


def _draw(ex):
    "shap's waterfall (one row), beeswarm and bar draw the Explanation."
    shap.plots.waterfall(ex[0], show=False); plt.close('all')
    shap.plots.beeswarm(ex, show=False); plt.close('all')
    shap.plots.bar(ex, show=False); plt.close('all')


def _check(ex, t, output=None):
    t = t if output is None else t[t.output == output]
    rows = list(pd.unique(t.row))
    feats = list(ex.feature_names)
    assert ex.values.shape == (len(rows), len(feats))
    want = t.pivot(index='row', columns='feature', values='attribution').loc[rows, feats].to_numpy(float)
    np.testing.assert_array_equal(ex.values, want)
    np.testing.assert_allclose(ex.values.sum(1) + ex.base_values, t.groupby('row', sort=False).prediction.first().loc[rows], atol=1e-4)


def test_regression_explanation_and_plots(reg):
    learn, test_df = reg
    rows = test_df.iloc[:30]
    sv = learn.explain(rows, n_background=60, seed=0, progress=False)
    ex = to_shap(sv)
    assert isinstance(ex, shap.Explanation) and ex.feature_names == sv.attrs['features']
    _check(ex, sv)
    assert ex.data.dtype == object   # shade and zip are levels (strings)
    for f in ('x1', 'x3', 'noise'): np.testing.assert_allclose(ex.data[:, ex.feature_names.index(f)].astype(float), rows[f].to_numpy())
    assert list(ex.data[:, ex.feature_names.index('shade')]) == list(rows.shade)
    x2 = ex.data[:, ex.feature_names.index('x2')].astype(float)
    assert np.array_equal(np.isnan(x2), rows.x2.isna().to_numpy())   # missing stays missing
    _draw(ex)


def test_binary_classifier_one_output(clf):
    learn, test_df = clf
    sv = learn.explain(test_df.iloc[:20], n_background=50, seed=0, progress=False)
    assert sv.output.nunique() == 1   # the positive class
    ex = to_shap(sv)
    _check(ex, sv); _draw(ex)
    assert np.all((ex.base_values > 0) & (ex.base_values < 1))   # probabilities


def test_several_classes_a_list_or_one(multiclass):
    learn, test_df = multiclass
    sv = learn.explain(test_df.iloc[:15], n_background=40, seed=0, progress=False)
    outs = list(pd.unique(sv.output))
    assert len(outs) == 3
    exs = to_shap(sv)
    assert isinstance(exs, list) and len(exs) == 3
    for o, ex in zip(outs, exs): _check(ex, sv, o)
    np.testing.assert_allclose(sum(ex.base_values for ex in exs), 1, atol=1e-5)   # the classes' probabilities
    one = to_shap(sv, output=outs[1])
    np.testing.assert_array_equal(one.values, exs[1].values)
    _draw(one)
    pred = learn.explain(test_df.iloc[:15], n_background=40, seed=0, target='predicted', progress=False)
    ex = to_shap(pred)   # each row its own class: one Explanation
    assert ex.values.shape == (15, len(ex.feature_names))
    _draw(ex)


def test_groups_and_generic_shapley_values(reg):
    learn, test_df = reg
    sv = learn.explain(test_df.iloc[:10], n_background=30, seed=0, groups=[['x3', 'x3_twin']], progress=False)
    ex = to_shap(sv)
    assert 'x3, x3_twin' in ex.feature_names or any('x3' in f and 'twin' in f for f in ex.feature_names)
    _check(ex, sv); _draw(ex)
    g = torch.Generator().manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    x, bg = torch.randn(12, 4, generator=g), torch.randn(40, 4, generator=g)
    t = shapley_values(net, x, bg, feature_names=list('abcd'), method='exact', progress=False)
    ex = to_shap(t)
    assert ex.data.dtype == np.float64 and ex.feature_names == list('abcd')
    np.testing.assert_allclose(ex.data, x.numpy(), rtol=1e-6)
    _check(ex, t); _draw(ex)


def test_bad_tables(reg):
    learn, test_df = reg
    sv = learn.explain(test_df.iloc[:3], n_background=20, seed=0, progress=False)
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['base_value'\]"): to_shap(sv.drop(columns='base_value'))
    with pytest.raises(ValueError, match='shapley_table is empty'): to_shap(sv.iloc[:0])
    with pytest.raises(ValueError, match='does not hold every'): to_shap(sv.iloc[1:])
    with pytest.raises(TypeError, match='must be the DataFrame'): to_shap([1, 2])
