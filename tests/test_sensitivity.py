"""Beyond tabular learners (issue 6): the generic entry point on plain models, numpy and 3-D inputs, agreement with
scikit-learn, label-free sensitivity, per-output tables, and bad inputs."""
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import fastai_featimp.core.engine as engine
from fastai_featimp.all import permutation_importance, feature_sensitivity, reconstruction_importance


@pytest.fixture(scope='module')
def mlp_data():
    "A small MLP fitted to y = 3 x0 + x1 - 0.5 x2 (x3 irrelevant)."
    g = torch.Generator().manual_seed(0)
    X = torch.randn(3000, 4, generator=g)
    y = 3 * X[:, 0] + X[:, 1] - 0.5 * X[:, 2] + 0.1 * torch.randn(3000, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        mlp = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 1))
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad(); loss = ((mlp(X).squeeze(1) - y) ** 2).mean(); loss.backward(); opt.step()
    return mlp, X, y


def test_agrees_with_sklearn_on_a_plain_model(mlp_data):
    from sklearn.base import BaseEstimator, RegressorMixin
    from sklearn.inspection import permutation_importance as sk_pi
    mlp, X, y = mlp_data

    class Wrapped(BaseEstimator, RegressorMixin):
        def fit(self, X, y): return self
        def predict(self, A):
            with torch.no_grad(): return mlp(torch.as_tensor(A, dtype=torch.float32)).squeeze(1).numpy()

    r = 10
    sk = sk_pi(Wrapped().fit(X.numpy(), y.numpy()), X.numpy(), y.numpy(), scoring='neg_mean_squared_error',
               n_repeats=r, random_state=0)
    ours = permutation_importance(lambda A: mlp(torch.from_numpy(A)).squeeze(1).detach().numpy(), X.numpy(), y.numpy(),
                                  feature_names=['x0', 'x1', 'x2', 'x3'], n_repeats=r, seed=0, progress=False).set_index('feature')
    mine = ours.loc[['x0', 'x1', 'x2', 'x3']]
    assert list(np.argsort(-sk.importances_mean)) == list(np.argsort(-mine.importance.to_numpy()))   # same ranking
    se = np.sqrt(sk.importances_std ** 2 / r + mine['std'].to_numpy() ** 2 / r)
    assert (np.abs(sk.importances_mean - mine.importance.to_numpy()) <= 3 * se + 0.01 * mine.importance.max()).all()


def test_feature_axis_and_sequence_layouts_give_the_same_numbers():
    g = torch.Generator().manual_seed(1)
    seq = torch.randn(500, 6, 3, generator=g)
    w = torch.tensor([1., -2., 0.])
    f = lambda x: (x * w).sum((1, 2))          # samples x time x features
    y = f(seq) + 0.1 * torch.randn(500, generator=g)
    a = permutation_importance(f, seq, y, feature_names=['a', 'b', 'c'], seed=0, progress=False)
    b = permutation_importance(lambda x: f(x.transpose(1, 2)), seq.transpose(1, 2).contiguous(), y, feature_axis=1,
                               feature_names=['a', 'b', 'c'], seed=0, progress=False)
    c = permutation_importance(lambda x: f(torch.from_numpy(x)).numpy(), seq.numpy(), y.numpy(),
                               feature_names=['a', 'b', 'c'], seed=0, progress=False)
    np.testing.assert_allclose(a.importance, b.importance, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.importance, c.importance, rtol=1e-5, atol=1e-6)
    assert list(a.feature) == ['b', 'a', 'c'] and abs(a.set_index('feature').loc['c', 'importance']) < 1e-6


def test_sensitivity_noise_expectation_on_a_linear_model():
    "For a linear model y = X w, noise of sd s on column j changes the output by N(0, (w_j s)^2): RMS = |w_j| s."
    g = torch.Generator().manual_seed(2)
    X = torch.randn(20000, 3, generator=g) * torch.tensor([1., 2., 0.5])
    w = torch.tensor([1., -3., 0.])
    t = feature_sensitivity(lambda x: x @ w, X, feature_names=['a', 'b', 'c'], method='noise', noise_scale=0.2,
                            noise_units='absolute', n_repeats=3, seed=0, progress=False).set_index('feature')
    np.testing.assert_allclose(t.loc[['a', 'b', 'c'], 'sensitivity'], [0.2, 0.6, 0.0], rtol=0.03, atol=1e-6)
    np.testing.assert_allclose(t.loc[['a', 'b'], 'mean_abs_change'], np.array([0.2, 0.6]) * np.sqrt(2 / np.pi), rtol=0.03)
    s = feature_sensitivity(lambda x: x @ w, X, feature_names=['a', 'b', 'c'], method='noise', noise_scale=0.2,
                            n_repeats=3, seed=0, progress=False, normalize=True).set_index('feature')
    np.testing.assert_allclose(s.loc[['a', 'b'], 'sensitivity'], [0.2 * 1, 0.2 * 3 * 2], rtol=0.03)   # std units
    assert abs(s.share.sum() - 1) < 1e-9


def test_per_output_matrix_and_reconstruction():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(2000, 3, generator=g)
    M = torch.tensor([[1., 0., 0.], [0., 2., 0.], [0., 0., 0.]])   # output k reads input k only; output 2 is constant
    f = lambda x: x @ M.T
    t = feature_sensitivity(f, X, feature_names=['a', 'b', 'c'], per_output=True, output_names=['p', 'q', 'r'],
                            seed=0, progress=False)
    m = t.pivot(index='feature', columns='output', values='sensitivity')
    off = m.to_numpy()[~np.eye(3, dtype=bool)]
    assert np.allclose(off, 0, atol=1e-6) and m.loc['b', 'q'] > m.loc['a', 'p'] > 0.5
    imp = permutation_importance(f, X, X, feature_names=['a', 'b', 'c'], per_output=True, seed=0, progress=False)
    assert set(imp.output) == {'out0', 'out1', 'out2'} and len(imp) == 9


def test_generic_and_fastai_paths_share_the_engine(monkeypatch):
    "No second implementation: every path evaluates the model through engine.predict_jobs."
    import fastai_featimp.analyses.permutation as imp_mod, fastai_featimp.analyses.sensitivity as sens_mod
    calls = []
    real = engine.predict_jobs
    def spy(*a, **k):
        calls.append(1); return real(*a, **k)
    monkeypatch.setattr(imp_mod, 'predict_jobs', spy); monkeypatch.setattr(sens_mod, 'predict_jobs', spy)
    X = torch.randn(100, 2); y = X[:, 0]
    permutation_importance(lambda x: x[:, 0], X, y, progress=False)
    feature_sensitivity(lambda x: x[:, 0], X, progress=False)
    assert len(calls) == 2


def test_bad_inputs():
    X = torch.randn(50, 4, 3)
    f = lambda x: x.sum((1, 2))
    with pytest.raises(ValueError, match='feature_axis=3 is out of range'):
        feature_sensitivity(f, X, feature_axis=3, progress=False)
    with pytest.raises(ValueError, match='feature_axis=0 is out of range'):
        permutation_importance(f, X, X.sum((1, 2)), feature_axis=0, progress=False)
    with pytest.raises(ValueError, match='feature_names has 2 names but the inputs have 3 features'):
        feature_sensitivity(f, X, feature_names=['a', 'b'], progress=False)
    with pytest.raises(ValueError, match='one prediction per row'):
        feature_sensitivity(lambda x: x[:10].sum((1, 2)), X, progress=False)
    with pytest.raises(ValueError, match='one prediction per row'):
        permutation_importance(lambda x: x.sum(), X, X.sum((1, 2)), progress=False)
    with pytest.raises(ValueError, match=r"method must be one of \['permute', 'noise'\]"):
        feature_sensitivity(f, X, method='zero', progress=False)
    with pytest.raises(ValueError, match=r"noise_units must be one of \[.std., .absolute.\]"):
        feature_sensitivity(f, X, method='noise', noise_units='percent', progress=False)
    with pytest.raises(ValueError, match='has no feature axis'):
        feature_sensitivity(lambda x: x, torch.randn(10), progress=False)
    with pytest.raises(TypeError, match='inputs must be a tensor or numpy array'):
        feature_sensitivity(f, [[1, 2], [3, 4]], progress=False)
    with pytest.raises(ValueError, match='one target column per output|one output per feature'):
        reconstruction_importance(lambda x: x[:, :2], torch.randn(30, 3), progress=False)


def test_fastai_sensitivity_unlabelled_and_learner_untouched(clf):
    learn, test_df = clf
    state = {k: v.clone() for k, v in learn.model.state_dict().items()}
    before = test_df.copy()
    t = learn.feature_sensitivity(df=test_df.drop(columns='y'), method='noise', seed=0, progress=False).set_index('feature')
    assert t.loc['shade', 'method'] == 'permute' and t.loc['x1', 'method'] == 'noise'
    assert t.loc['x1', 'sensitivity'] > 5 * t.loc['noise', 'sensitivity']      # like with like: both continuous, noise
    p = learn.feature_sensitivity(df=test_df.drop(columns='y'), seed=0, progress=False).set_index('feature')
    assert (p.method == 'permute').all()
    assert min(p.loc[d, 'sensitivity'] for d in ['x1', 'x2', 'x3', 'shade']) > 3 * p.loc['noise', 'sensitivity']
    pd.testing.assert_frame_equal(before, test_df)
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in state.items())


def test_fastai_per_output_importance_for_multi_target(multitarget):
    learn, test_df = multitarget
    t = learn.feature_importance(df=test_df, per_output=True, seed=0, progress=False)
    assert set(t.output) == set(learn.dls.y_names) and len(t) == len(learn.dls.y_names) * t.feature.nunique()
