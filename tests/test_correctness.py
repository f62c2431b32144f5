"""The numbers are right: known drivers found, irrelevant columns near zero, agreement with scikit-learn,
directions of the metrics, groups, seeds, `cols`, `max_rows`, and one shared permutation per repeat."""
import numpy as np
import pandas as pd
import pytest
from conftest import Recording, evaluating
import torch
from scipy.stats import spearmanr
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.inspection import permutation_importance as sk_permutation_importance
from fastai.tabular.all import Learner, accuracy, rmse
from fastai_featimp.all import DEMO_TRUTH, encode

DRIVERS, IRRELEVANT = DEMO_TRUTH['drivers'], DEMO_TRUTH['irrelevant']




@pytest.mark.parametrize('name', ['reg', 'clf'])
def test_drivers_found_and_irrelevant_columns_near_zero(request, name):
    learn, test_df = request.getfixturevalue(name)
    fi = learn.feature_importance(df=test_df, n_repeats=10, seed=0, progress=False).set_index('feature')
    top = fi.loc[DRIVERS, 'importance'].max()
    # Every true driver is clearly relied on: the 95% CI over repeats lies above 0.
    for f in DRIVERS: assert fi.loc[f, 'ci_low'] > 0, (f, fi.loc[f].to_dict())
    # Irrelevant columns. Permutation importance measures how much *this model* relies on a column, and a fitted net
    # may pick up a tiny spurious dependence on noise (most easily on the 300-level `zip` embedding), which is real
    # for the model (so its CI can exclude 0) yet negligible. Criterion: the column is statistically
    # indistinguishable from 0 (its 95% CI contains 0) OR practically negligible (|importance| < 5% of the most
    # important driver's importance). Either way it must rank below every driver.
    for f in IRRELEVANT:
        lo, hi, imp = fi.loc[f, ['ci_low', 'ci_high', 'importance']]
        assert (lo <= 0 <= hi) or abs(imp) < 0.05 * top, (f, imp, lo, hi, top)
        assert imp < fi.loc[DRIVERS, 'importance'].min()


class EncodedModel(RegressorMixin, BaseEstimator):
    "scikit-learn view of a fitted fastai tabular model on X = [Categorify codes | normalised continuous columns]."
    def __init__(self, model=None, n_cat=0): self.model, self.n_cat = model, n_cat
    def fit(self, X, y=None): return self
    def predict(self, X):
        X = torch.as_tensor(np.asarray(X, dtype=np.float64))
        out = self.model(X[:, :self.n_cat].round().long(), X[:, self.n_cat:].float())
        return out.double().numpy().ravel()


def test_agrees_with_sklearn_permutation_importance(clean):
    """Same model, same rows, same metric (MSE): ours vs `sklearn.inspection.permutation_importance`.
    The `clean` learner has no missing values, so every raw column is exactly one encoded column (no `_na`
    indicator) and sklearn's column-wise shuffles are the same operation as ours on the encoded matrix."""
    learn, test_df = clean
    enc = encode(learn, df=test_df)
    assert not (enc.columns.kind == 'missing-indicator').any()
    names = list(enc.columns.name)  # cat codes first, then continuous values: the order of X's columns
    X = torch.cat([enc.x_cat.double(), enc.x_cont.double()], 1).numpy()
    y = enc.y.double().numpy().ravel()
    R = 10
    with evaluating(learn.model):
        sk = sk_permutation_importance(EncodedModel(learn.model, enc.x_cat.shape[1]), X, y,
                                       scoring='neg_mean_squared_error', n_repeats=R, random_state=0)
        sk_base = float(np.mean((EncodedModel(learn.model, enc.x_cat.shape[1]).predict(X) - y) ** 2))
    ours = learn.feature_importance(df=test_df, metric='mse', n_repeats=R, seed=0, progress=False).set_index('feature')
    assert ours.attrs['metric'] == 'mse' and ours.attrs['higher_is_better'] is False
    assert abs(ours.attrs['baseline'] - sk_base) <= 1e-5 * sk_base
    assert set(ours.index) == set(names)
    o_mean, o_std = ours.loc[names, 'importance'].to_numpy(), ours.loc[names, 'std'].to_numpy()
    s_mean, s_std = sk.importances_mean, sk.importances_std * np.sqrt(R / (R - 1))  # sklearn's std has ddof=0
    # rankings agree
    rho = spearmanr(o_mean, s_mean).statistic
    assert rho >= 0.9, (rho, dict(zip(names, o_mean)), dict(zip(names, s_mean)))
    # each mean within 3 combined standard errors (+1% of the top importance for features near 0)
    se = np.sqrt(o_std ** 2 / R + s_std ** 2 / R)
    tol = 3 * se + 0.01 * o_mean.max()
    bad = {n: (o, s, t) for n, o, s, t in zip(names, o_mean, s_mean, tol) if abs(o - s) > t}
    assert not bad, bad


@pytest.mark.parametrize('name,metric,higher', [
    pytest.param('reg', None, False, id='reg-loss'), pytest.param('reg', 'rmse', False, id='reg-rmse_name'),
    pytest.param('reg', rmse, False, id='reg-rmse_AccumMetric'), pytest.param('reg', 'mse', False, id='reg-mse_name'),
    pytest.param('clf', None, False, id='clf-loss'), pytest.param('clf', 'accuracy', True, id='clf-accuracy_name'),
    pytest.param('clf', accuracy, True, id='clf-accuracy_function')])
def test_direction_drivers_positive(request, name, metric, higher):
    "Importance is 'how much worse', whatever the metric's direction: every driver positive under each metric."
    learn, test_df = request.getfixturevalue(name)
    fi = learn.feature_importance(df=test_df, metric=metric, n_repeats=5, seed=1, progress=False)
    a = fi.attrs
    assert a['higher_is_better'] is higher
    t = fi.set_index('feature')
    for f in DRIVERS:
        assert t.loc[f, 'importance'] > 0, (f, metric)
        permuted = np.mean(a['permuted_scores'][f])
        # the raw scores move the right way: accuracy falls, loss / rmse rise
        assert (permuted < a['baseline']) if higher else (permuted > a['baseline'])
        assert np.isclose(t.loc[f, 'importance'], (a['baseline'] - permuted) if higher else (permuted - a['baseline']))


def test_higher_is_better_override_flips_sign(clf):
    learn, test_df = clf
    a = learn.feature_importance(df=test_df, metric='accuracy', n_repeats=3, seed=2, progress=False).set_index('feature')
    b = learn.feature_importance(df=test_df, metric='accuracy', n_repeats=3, seed=2, progress=False,
                                 higher_is_better=False).set_index('feature')
    assert b.attrs['higher_is_better'] is False and a.attrs['baseline'] == b.attrs['baseline']
    assert np.allclose(a.loc[a.index, 'importance'], -b.loc[a.index, 'importance'])


def test_group_of_duplicated_columns(clean):
    "x1_dup is an exact copy of x1: permuting both together hurts at least as much as permuting either alone."
    learn, test_df = clean
    assert (test_df.x1 == test_df.x1_dup).all()
    alone = learn.feature_importance(df=test_df, n_repeats=5, seed=0, progress=False).set_index('feature')
    grouped = learn.feature_importance(df=test_df, groups=[['x1', 'x1_dup']], n_repeats=5, seed=0,
                                       progress=False).set_index('feature')
    g = grouped.loc['x1+x1_dup']
    assert g['type'] == 'group' and g['members'] == 'x1, x1_dup' and g['columns'] == 'x1, x1_dup'
    assert 'x1' not in grouped.index and 'x1_dup' not in grouped.index
    assert g['importance'] >= max(alone.loc['x1', 'importance'], alone.loc['x1_dup', 'importance'])
    assert g['importance'] > 0
    # the other features are unaffected by the grouping (same seed: same permutations)
    for f in ['x2', 'x3', 'shade', 'zip']: assert grouped.loc[f, 'importance'] == alone.loc[f, 'importance']
    # a named group (dict) gives the same numbers under its own name
    named = learn.feature_importance(df=test_df, groups={'x1 both': ['x1', 'x1_dup']}, n_repeats=5, seed=0,
                                     progress=False).set_index('feature')
    assert named.loc['x1 both', 'importance'] == g['importance']


def test_same_seed_same_results_different_seed_different(reg):
    learn, test_df = reg
    kw = dict(df=test_df, n_repeats=3, progress=False)
    a, b = learn.feature_importance(seed=123, **kw), learn.feature_importance(seed=123, **kw)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a.attrs['repeats'] == b.attrs['repeats'] and a.attrs['seed'] == 123
    c = learn.feature_importance(seed=124, **kw)
    assert c.attrs['baseline'] == a.attrs['baseline']
    for f in a.feature: assert a.attrs['repeats'][f] != c.attrs['repeats'][f], f
    # seed=None draws a fresh seed, reported in attrs, which reproduces the run
    d = learn.feature_importance(seed=None, **kw)
    assert isinstance(d.attrs['seed'], int)
    e = learn.feature_importance(seed=d.attrs['seed'], **kw)
    assert d.attrs['repeats'] == e.attrs['repeats']


def test_cols_subset_matches_full_run(clean):
    "One permutation per repeat is shared by all features, so a subset reproduces the full run's numbers."
    learn, test_df = clean
    kw = dict(df=test_df, n_repeats=4, seed=5, progress=False)
    full = learn.feature_importance(**kw).set_index('feature')
    sub = learn.feature_importance(cols=['zip', 'x3'], **kw).set_index('feature')
    assert sorted(sub.index) == ['x3', 'zip']
    one = learn.feature_importance(cols='noise', **kw).set_index('feature')
    assert list(one.index) == ['noise']
    with_group = learn.feature_importance(cols=['x3'], groups=[['x1', 'x1_dup']], **kw).set_index('feature')
    assert sorted(with_group.index) == ['x1+x1_dup', 'x3']
    for part in (sub, one, with_group):
        for f in part.index.intersection(full.index):
            assert part.attrs['repeats'][f] == full.attrs['repeats'][f], f
            assert part.loc[f, 'importance'] == full.loc[f, 'importance']
            assert part.loc[f, 'std'] == full.loc[f, 'std']
        assert part.attrs['baseline'] == full.attrs['baseline']


def test_max_rows(reg):
    learn, test_df = reg
    kw = dict(df=test_df, n_repeats=2, progress=False)
    a = learn.feature_importance(max_rows=300, seed=9, **kw)
    assert a.attrs['n_rows'] == 300
    b = learn.feature_importance(max_rows=300, seed=9, **kw)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    full = learn.feature_importance(seed=9, **kw)
    assert full.attrs['n_rows'] == len(test_df) and full.attrs['baseline'] != a.attrs['baseline']
    assert learn.feature_importance(max_rows=10 ** 6, seed=9, **kw).attrs['n_rows'] == len(test_df)


def test_chunk_size_does_not_change_results(reg):
    "bs only changes how rows are packed into forward passes (default: all jobs in one pass; 457: split), not the numbers."
    learn, test_df = reg
    kw = dict(df=test_df, n_repeats=2, seed=3, progress=False)
    a = learn.feature_importance(**kw).set_index('feature')
    b = learn.feature_importance(bs=457, **kw).set_index('feature')
    assert np.isclose(a.attrs['baseline'], b.attrs['baseline'], rtol=1e-5)
    for f in a.index: assert np.allclose(a.attrs['repeats'][f], b.attrs['repeats'][f], rtol=1e-4, atol=1e-5), f




def test_each_job_permutes_exactly_one_feature_with_a_shared_permutation(reg):
    """With one job per forward pass (bs = n rows): one unchanged baseline pass, then n_repeats passes per feature,
    each changing only that feature's columns, and repeat r uses the same row permutation for every feature."""
    learn, test_df = reg
    enc = encode(learn, df=test_df)
    n, R = enc.n_rows, 3
    rec = Recording(learn.model)
    spy = Learner(learn.dls, rec, loss_func=learn.loss_func)
    spy.feature_importance(df=test_df, n_repeats=R, seed=0, progress=False, bs=n)
    feats = {f.name: f for f in enc.features}
    assert len(rec.calls) == 1 + R * len(feats)
    xc0, xn0 = rec.calls[0]
    assert torch.equal(xc0, enc.x_cat) and torch.equal(xn0, enc.x_cont)
    # x1 has distinct values: read the permutation of each repeat off it
    i_x1 = list(learn.dls.cont_names).index('x1')
    assert enc.x_cont[:, i_x1].unique().numel() == n
    order = {v: i for i, v in enumerate(enc.x_cont[:, i_x1].tolist())}
    perms = []
    changed_by_feature = {}
    for xc, xn in rec.calls[1:]:
        changed = {(0, c) for c in range(xc.shape[1]) if not torch.equal(xc[:, c], enc.x_cat[:, c])}
        changed |= {(1, c) for c in range(xn.shape[1]) if not torch.equal(xn[:, c], enc.x_cont[:, c])}
        owner = [f for f in feats.values() if changed and changed <= set(f.columns)]
        assert len(owner) == 1, changed
        changed_by_feature.setdefault(owner[0].name, []).append((xc, xn))
        if owner[0].name == 'x1': perms.append(torch.tensor([order[v] for v in xn[:, i_x1].tolist()]))
    assert {k: len(v) for k, v in changed_by_feature.items()} == {f: R for f in feats}
    assert len(perms) == R and all(not torch.equal(p, torch.arange(n)) for p in perms)
    # every feature's r-th pass reads its columns from the rows of the r-th permutation
    for name, passes in changed_by_feature.items():
        for (xc, xn), p in zip(passes, perms):
            for i, c in feats[name].columns:
                x0 = enc.x_cat if i == 0 else enc.x_cont
                got = xc if i == 0 else xn
                assert torch.equal(got[:, c], x0[p, c]), (name, c)
