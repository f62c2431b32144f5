"""Shapley attributions (issue 7): exact values on a known additive model, agreement with the `shap` package
(optional: skipped without it), sampling within its standard errors, the fastai entry point, bad inputs."""
import numpy as np
import pandas as pd
import pytest
import torch

from fastai_featimp.shapley import shapley_values


def additive(x):
    "f(x) = 2 x0 - x1^2 + sin(x2) + 0 * x3 : a sum of one-column terms."
    return (2 * x[:, 0] - x[:, 1] ** 2 + torch.sin(x[:, 2]) + 0 * x[:, 3]).unsqueeze(1)


def test_exact_attributions_of_an_additive_model_equal_term_minus_background_mean():
    g = torch.Generator().manual_seed(0)
    X, B = torch.randn(8, 4, generator=g), torch.randn(40, 4, generator=g)
    sv = shapley_values(additive, X, B, method='exact', progress=False)
    terms = lambda z: torch.stack([2 * z[:, 0], -z[:, 1] ** 2, torch.sin(z[:, 2]), 0 * z[:, 3]], 1)
    want = (terms(X) - terms(B).mean(0)).double().numpy()
    got = sv.pivot(index='row', columns='feature', values='attribution')[['x0', 'x1', 'x2', 'x3']].to_numpy()
    np.testing.assert_allclose(got, want, atol=1e-5)
    per_row = sv.groupby('row')
    np.testing.assert_allclose(per_row.attribution.sum(), per_row.prediction.first() - per_row.base_value.first(), atol=1e-9)


def _model():
    g = torch.Generator().manual_seed(1)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    X, B = torch.randn(6, 5, generator=g), torch.randn(25, 5, generator=g)
    return net, X, B


def test_exact_agrees_with_shap_exact_explainer():
    shap = pytest.importorskip('shap')
    net, X, B = _model()
    f = lambda a: net(torch.as_tensor(a, dtype=torch.float32)).detach().numpy()[:, 0]
    ref = shap.explainers.Exact(f, shap.maskers.Independent(B.numpy(), max_samples=len(B)))(X.numpy()).values
    sv = shapley_values(net, X, B, method='exact', progress=False)
    ours = sv.pivot(index='row', columns='feature', values='attribution')[[f'x{i}' for i in range(5)]].to_numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-5)


def test_permutation_sampling_within_standard_errors_of_exact():
    net, X, B = _model()
    ex = shapley_values(net, X, B, method='exact', progress=False)
    pm = shapley_values(net, X, B, method='permutation', n_permutations=16, seed=0, progress=False)
    z = ((pm.attribution - ex.attribution) / pm.std_err)[pm.std_err > 1e-9]
    assert len(z) > 20 and (z.abs() < 4).all() and (z.abs() < 2).mean() > 0.8
    per_row = pm.groupby('row')   # antithetic permutations keep efficiency exactly
    np.testing.assert_allclose(per_row.attribution.sum(), per_row.prediction.first() - per_row.base_value.first(), atol=1e-6)


def test_learner_explain_efficiency_truth_and_nothing_mutated(reg):
    learn, test_df = reg
    rows, bg = test_df.iloc[:10], test_df.iloc[100:160]
    before_rows, before_bg = rows.copy(), bg.copy()
    state = {k: v.clone() for k, v in learn.model.state_dict().items()}
    flags = [m.training for m in learn.model.modules()]
    sv = learn.explain(rows, background=bg, seed=0, progress=False)
    per_row = sv.groupby('row')
    np.testing.assert_allclose(per_row.attribution.sum(), per_row.prediction.first() - per_row.base_value.first(), atol=1e-6)
    with learn.no_bar(): preds = learn.get_preds(dl=learn.dls.test_dl(rows))[0][:, 0].numpy()
    np.testing.assert_allclose(per_row.prediction.first().to_numpy(), preds, atol=1e-5)
    a = sv.groupby('feature').attribution.apply(lambda s: s.abs().mean())
    assert a[['noise', 'zip']].max() < 0.1 * a['x1']
    pd.testing.assert_frame_equal(rows, before_rows); pd.testing.assert_frame_equal(bg, before_bg)
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in state.items())
    assert flags == [m.training for m in learn.model.modules()]


def test_explain_bad_inputs(clf):
    learn, test_df = clf
    rows = test_df.iloc[:3]
    with pytest.raises(ValueError, match=r"rows lacks the input column\(s\)"):
        learn.explain(rows.drop(columns=['x1']), progress=False)
    with pytest.raises(ValueError, match='background is empty'):
        learn.explain(rows, background=rows.iloc[:0], progress=False)
    with pytest.raises(ValueError, match="target 'maybe' is not a class of this learner"):
        learn.explain(rows, target='maybe', progress=False)
    with pytest.raises(ValueError, match="method must be 'auto', 'exact' or 'permutation'"):
        learn.explain(rows, method='kernel', progress=False)
