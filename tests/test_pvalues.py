"""Intervals on very few rows, p-values in importance tables, and the delta-method interval for rmse (issue 20 item 8, issue 21 items 1-2)."""
import warnings
import numpy as np
import pytest
import torch
from torch import nn
from scipy.stats import t as student
from fastai.tabular.all import rmse
from fastai_featimp.all import DEMO_TRUTH, FeatureInterpretation, cv_feature_importance, make_demo_data
from fastai_featimp.analyses.permutation import permutation_importance
from fastai_featimp.core.summary import benjamini_hochberg, t_interval, t_p_value


@pytest.fixture(scope='module')
def mlp_data():
    "A small MLP fitted to `y = 3 x0 + x1` (x2 irrelevant), and 200 fresh rows."
    g = torch.Generator().manual_seed(0)
    X = torch.randn(1000, 3, generator=g)
    y = 3 * X[:, 0] + X[:, 1] + 0.1 * torch.randn(1000, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        mlp = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad(); loss = ((mlp(X).squeeze(1) - y) ** 2).mean(); loss.backward(); opt.step()
    return mlp, X[:200], y[:200]


def _half(t): return ((t.ci_high - t.ci_low) / 2).to_numpy()


@pytest.mark.parametrize('n', [2, 3, 5, 10])
def test_rows_interval_never_narrower_than_repeats_on_few_rows(mlp_data, n):
    mlp, X, y = mlp_data
    kw = dict(feature_names=['x0', 'x1', 'x2'], seed=0, progress=False)
    with pytest.warns(UserWarning, match='below 20 rows the row part of the interval'):
        rows = permutation_importance(mlp, X[:n], y[:n], **kw).set_index('feature')
    reps = permutation_importance(mlp, X[:n], y[:n], interval='repeats', **kw).set_index('feature').reindex(rows.index)
    assert (rows.interval == 'rows (paired)').all() and (reps.interval == 'repeats').all()
    # the 'rows' run takes each score from its per-row losses (float64 mean), the 'repeats' run from the float32 loss:
    # where the floor binds, the two half-widths are the same number up to float32 rounding
    assert (_half(rows) >= _half(reps) * (1 - 1e-5) - 1e-12).all(), (n, _half(rows), _half(reps))
    assert (_half(rows) > 0).all()                                   # never zero width while the repeats spread


def test_no_few_rows_warning_from_20_rows(mlp_data):
    mlp, X, y = mlp_data
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        permutation_importance(mlp, X[:20], y[:20], seed=0, progress=False)
    with pytest.warns(UserWarning, match='only 19 rows'):
        permutation_importance(mlp, X[:19], y[:19], seed=0, progress=False)


# ---- p-values (issue 21 item 1)

def _bh_reference(p):
    "Benjamini-Hochberg by its definition: p_adj(i) = min over j with p_j >= p_i of min(1, m p_j / rank_j)."
    p = np.asarray(p, dtype=float); m = len(p); rank = np.argsort(np.argsort(p, kind='stable'), kind='stable') + 1
    return np.array([min(min(1., m * p[j] / rank[j]) for j in range(m) if p[j] >= p[i]) for i in range(m)])


def test_benjamini_hochberg_matches_its_definition():
    rng = np.random.default_rng(1)
    for p in [rng.uniform(size=12), rng.uniform(size=7) ** 4, np.array([0.2, 0.2, 0.01, 1.0])]:
        np.testing.assert_allclose(benjamini_hochberg(p), _bh_reference(p), rtol=1e-12)


def test_t_p_value_is_the_interval_t_statistic():
    c, se, df = np.array([0.5, 0.1, -0.2, 0.0]), np.array([0.1, 0.1, 0.1, 0.0]), np.array([9, 99, 4, 4])
    np.testing.assert_allclose(t_p_value(c, se, df)[:3], student.sf(c[:3] / se[:3], df[:3]), rtol=1e-12)
    assert t_p_value(c, se, df)[3] == 1.0
    lo, _ = t_interval(c, se, df)
    assert ((lo > 0) == (t_p_value(c, se, df) < 0.025)).all()


def _check_p(t):
    assert {'p_value', 'p_adjusted'} <= set(t.columns)
    assert t.p_value.notna().all() and t.p_value.between(0, 1).all()
    np.testing.assert_allclose(t.p_adjusted, benjamini_hochberg(t.p_value.to_numpy()), rtol=1e-12)
    assert ((t.ci_low > 0) == (t.p_value < 0.025)).all()             # the same t statistic as the interval


@pytest.mark.parametrize('kw', [dict(), dict(interval='repeats'), dict(score=lambda p, t: ((p.reshape(len(p)) - t) ** 2).mean().sqrt(),
                                                                       higher_is_better=False, n_boot=50),
                                dict(n_repeats='auto', max_repeats=6)], ids=['rows', 'repeats', 'bootstrap', 'auto'])
def test_every_permutation_table_has_p_values(mlp_data, kw):
    mlp, X, y = mlp_data
    t = permutation_importance(mlp, X, y, feature_names=['x0', 'x1', 'x2'], seed=0, progress=False, **kw).set_index('feature')
    _check_p(t)
    assert t.loc['x0', 'p_value'] < 1e-3 and t.loc['x1', 'p_value'] < 0.05


def test_per_output_table_has_p_values(mlp_data):
    mlp, X, y = mlp_data
    t = permutation_importance(mlp, X, y.unsqueeze(1), feature_names=['x0', 'x1', 'x2'], seed=0, progress=False, per_output=True)
    _check_p(t)


def test_ignored_column_gets_p_one_not_nan():
    X = torch.randn(50, 3, generator=torch.Generator().manual_seed(2))
    model = lambda x: x[:, :1] * 2.0 + x[:, 1:2]                       # ignores x2 exactly
    y = model(X).squeeze(1) + 0.1
    for how in ('rows', 'repeats'):
        t = permutation_importance(model, X, y, feature_names=['x0', 'x1', 'x2'], seed=0, progress=False, interval=how).set_index('feature')
        assert t.loc['x2', 'importance'] == 0 and t.loc['x2', 'p_value'] == 1.0 and t.loc['x2', 'p_adjusted'] == 1.0, how


def test_fastai_and_fold_tables_have_p_values(reg):
    learn, test_df = reg
    fi = learn.feature_importance(df=test_df, n_repeats=3, seed=0, progress=False).set_index('feature')
    _check_p(fi)
    for f in DEMO_TRUTH['drivers']: assert fi.loc[f, 'p_adjusted'] < 0.05, f
    res = cv_feature_importance([(learn, test_df.iloc[:600]), (learn, test_df.iloc[600:])], n_repeats=3, seed=0, progress=False)
    for t in res.tables: _check_p(t)
    c = res.combined.set_index('feature')
    vals = np.array([[t.set_index('feature').loc[f, 'importance'] for t in res.tables] for f in c.index])
    np.testing.assert_allclose(c.p_value, t_p_value(vals.mean(1), vals.std(1, ddof=1) / np.sqrt(2), 1), rtol=1e-12)
    np.testing.assert_allclose(c.p_adjusted, benjamini_hochberg(c.p_value.to_numpy()), rtol=1e-12)


# ---- rmse by the delta method (issue 21 item 2)

def test_rmse_interval_by_the_delta_method_matches_the_mse_verdict(reg):
    learn, test_df = reg
    it = FeatureInterpretation.from_learner(learn, df=test_df)
    m = it.importance(metric='mse', n_repeats=5, seed=0, progress=False).set_index('feature')
    r = it.importance(metric='rmse', n_repeats=5, seed=0, progress=False).set_index('feature').reindex(m.index)
    assert set(r.interval) == {'rows (delta)'} and set(m.interval) == {'rows (paired)'}
    _check_p(r)
    rel = lambda t: (t.ci_high - t.ci_low) / t.importance.abs()
    ratio = rel(r) / rel(m)
    # sqrt compresses a large importance: to first order the relative width scales by (sqrt(B) + sqrt(P)) / (2 sqrt(P)),
    # B the baseline MSE and P = B + the MSE importance; ~1 for a column whose importance is small against B
    B = m.attrs['baseline']; P = B + m.importance
    expect = (np.sqrt(B) + np.sqrt(P)) / (2 * np.sqrt(P))
    assert (abs(ratio / expect - 1) < 0.15).all(), (ratio / expect).round(3).to_dict()
    small = m.index[m.importance.abs() < 0.05 * B]
    assert len(small) >= 2 and (abs(ratio[small] - 1) < 0.15).all(), ratio[small].round(3).to_dict()
    assert ((r.ci_low > 0) == (m.ci_low > 0)).all()                   # one verdict whatever the metric


def test_rmse_delta_interval_covers_zero_for_irrelevant_columns(reg):
    learn, _ = reg
    tabs = []
    for s in range(100, 140):                                          # 40 fresh test draws of 1,000 rows, model fixed
        it = FeatureInterpretation.from_learner(learn, df=make_demo_data(1000, 'regression', seed=s))
        tabs.append(it.importance(metric=rmse, n_repeats=3, seed=s, progress=False).set_index('feature'))
    assert all(set(t.interval) == {'rows (delta)'} for t in tabs)
    for f in DEMO_TRUTH['irrelevant']:
        assert np.mean([t.loc[f, 'ci_low'] <= 0 <= t.loc[f, 'ci_high'] for t in tabs]) >= 0.9, f
        assert np.mean([t.loc[f, 'p_value'] < 0.05 for t in tabs]) <= 0.15, f
    assert all(t.loc['x1', 'p_value'] < 1e-6 for t in tabs)
    x1 = np.array([t.loc['x1', 'importance'] for t in tabs]); half = np.mean([t.loc['x1', 'ci_high'] - t.loc['x1', 'ci_low'] for t in tabs]) / 2
    assert 0.75 < half / 1.96 / x1.std(ddof=1) < 1.25, (half / 1.96, x1.std(ddof=1))   # the width is the real spread


def test_delta_only_for_fastai_rmse_and_per_output(mlp_data):
    mlp, X, y = mlp_data
    kw = dict(feature_names=['x0', 'x1', 'x2'], seed=0, progress=False)
    assert set(permutation_importance(mlp, X, y.unsqueeze(1), score=rmse, **kw).interval) == {'rows (delta)'}
    po = permutation_importance(mlp, X, y.unsqueeze(1), score=rmse, per_output=True, **kw)
    assert set(po.interval) == {'rows (delta)'}; _check_p(po)
    own = lambda p, t: ((p.reshape(len(p)) - t) ** 2).mean().sqrt()  # a sqrt we cannot see into: the bootstrap
    assert set(permutation_importance(mlp, X, y, score=own, higher_is_better=False, n_boot=20, **kw).interval) == {'rows (bootstrap)'}
    rep = permutation_importance(mlp, X, y.unsqueeze(1), score=rmse, interval='repeats', **kw)
    assert set(rep.interval) == {'repeats'}
