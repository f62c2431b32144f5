"""Correlated columns (issue 3): associations against references, auto groups, double permutation on exact
duplicates, conditional permutation, bad inputs, and that nothing the caller owns is changed."""
import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats

from fastai.tabular.all import Normalize, RegressionBlock
from fastai_featimp.all import (RetrainRecipe, association_matrix, auto_groups, cramers_v, correlation_ratio, spearman,
                                top_correlated, within_strata_permutation, strata_codes)


def _direct_cramers_v(a, b):
    "Bias-corrected Cramér's V written out from scipy's chi-square (Bergsma 2013)."
    tab = pd.crosstab(a, b)
    chi2 = stats.chi2_contingency(tab, correction=False)[0]
    n = tab.to_numpy().sum(); r, k = tab.shape
    phi2 = max(0.0, chi2 / n - (k - 1) * (r - 1) / (n - 1))
    rc, kc = r - (r - 1) ** 2 / (n - 1), k - (k - 1) ** 2 / (n - 1)
    return np.sqrt(phi2 / min(rc - 1, kc - 1))


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_associations_match_references(seed):
    rng = np.random.default_rng(seed)
    n = 700
    u = rng.normal(size=n); v = u + rng.normal(size=n) * (seed + 0.5)
    a = rng.integers(0, 5, n); b = np.where(rng.random(n) < 0.5, a, rng.integers(0, 7, n))
    assert abs(spearman(u, v) - stats.spearmanr(u, v).statistic) < 1e-6
    assert abs(cramers_v(a, b) - _direct_cramers_v(a, b)) < 1e-6
    df = pd.DataFrame({'u': u, 'v': v, 'a': a.astype(str), 'b': b.astype(str)})
    A = association_matrix(df, cat_names=['a', 'b'], cont_names=['u', 'v'])
    assert abs(A.loc['u', 'v'] - abs(stats.spearmanr(u, v).statistic)) < 1e-6
    assert abs(A.loc['a', 'b'] - _direct_cramers_v(a, b)) < 1e-6
    eta_plain = np.sqrt(pd.Series(u).groupby(a).transform('mean').sub(u.mean()).pow(2).sum() / ((u - u.mean()) ** 2).sum())
    assert abs(correlation_ratio(a, u, bias_correction=False) - eta_plain) < 1e-6
    assert np.allclose(A.to_numpy(), A.to_numpy().T) and np.allclose(np.diag(A), 1)


def test_association_bad_inputs():
    df = pd.DataFrame({'u': np.arange(10.), 'a': list('ab' * 5)})
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['zz'\]"):
        association_matrix(df, cat_names=['zz'], cont_names=['u'])
    with pytest.raises(ValueError, match='both categorical and continuous'):
        association_matrix(df, cat_names=['u'], cont_names=['u'])
    A = association_matrix(df, cat_names=['a'], cont_names=['u'])
    for t in (-0.1, 1.5, 'high'):
        with pytest.raises((ValueError, TypeError), match='threshold must be a number'):
            auto_groups(A, t)
        with pytest.raises((ValueError, TypeError), match='threshold must be a number'):
            top_correlated(A, t)


def test_within_strata_permutation_is_uniform_within_strata():
    s = np.repeat([0, 1, 2], [5, 50, 200])
    g = torch.Generator().manual_seed(0)
    counts = np.zeros((5, 5))
    for _ in range(2000):
        p = within_strata_permutation(s, g).numpy()
        assert (s[p] == s).all()
        counts[np.arange(5), p[:5]] += 1
    assert np.abs(counts / 2000 - 0.2).max() < 0.05   # each of the 5 rows of stratum 0 lands anywhere in it equally


def _train_continuous(df, cont_names, n_train):
    "A small seeded regression learner on the first `n_train` rows of `df` (target `y`); returns `(learn, test_df)`."
    tr, te = df.iloc[:n_train], df.iloc[n_train:].reset_index(drop=True)
    # the recipe's seeded 20% validation sample (it replaced fastai's RandomSplitter(valid_pct=0.2) here: another split, the same design)
    learn = RetrainRecipe(tr.reset_index(drop=True), cat_names=[], cont_names=list(cont_names), y_names=['y'], procs=[Normalize],
                          y_block=RegressionBlock(), learner_kwargs=dict(layers=[64, 32]), epochs=4, bs=128, seed=0).train()
    return learn, te


@pytest.fixture(scope='module')
def dup_learner():
    "y = 2a + b + noise with `a_dup` an exact copy of `a`; `noise` irrelevant."
    rng = np.random.default_rng(0); n = 4000
    df = pd.DataFrame({'a': rng.normal(size=n), 'b': rng.normal(size=n), 'noise': rng.normal(size=n)})
    df['a_dup'] = df.a
    df['y'] = 2 * df.a + df.b + 0.1 * rng.normal(size=n)
    return _train_continuous(df, ['a', 'a_dup', 'b', 'noise'], n_train=3000)


def test_exact_duplicates_group_and_double_permutation(dup_learner):
    learn, te = dup_learner
    fi = learn.feature_importance(df=te, seed=0, progress=False).set_index('feature')
    grp = learn.feature_importance(df=te, groups=[['a', 'a_dup']], seed=0, progress=False).set_index('feature')
    joint = grp.loc['a+a_dup', 'importance']
    # each copy alone scores far below the pair (the model can read the other copy)
    assert fi.loc['a', 'importance'] < 0.6 * joint and fi.loc['a_dup', 'importance'] < 0.6 * joint
    dp = learn.double_permutation(df=te, cols=['a', 'a_dup', 'b'], seed=0, progress=False)
    row = dp[(dp.feature_a == 'a') & (dp.feature_b == 'a_dup')].iloc[0]
    # The interaction is clearly away from 0. Its sign is POSITIVE here, as the arithmetic predicts for a model that
    # splits an additive reliance over two copies under a squared loss (imp(a)∝w1², imp(a_dup)∝w2², joint∝(w1+w2)²);
    # see nbs/08_interactions. (The issue text expected negative; that is the off-manifold case, tested on diamonds.)
    assert row.ci_low > 0 and row.joint_share > 1.4
    other = dp[(dp.feature_a != 'a') | (dp.feature_b != 'a_dup')]
    assert (other.interaction.abs() < 0.1 * row.interaction).all()
    A = learn.feature_correlations(df=te)
    assert auto_groups(A, 0.9) == [['a', 'a_dup']]
    auto = learn.feature_importance(df=te, groups='auto', seed=0, progress=False)
    assert auto.attrs['auto_groups'] == [['a', 'a_dup']]
    assert abs(auto.set_index('feature').loc['a+a_dup', 'importance'] - joint) < 1e-9


@pytest.fixture(scope='module')
def twin_learner():
    "y = x + 0.5 z + noise; `x_twin` is x plus a little noise (corr ~0.999) with no effect of its own."
    rng = np.random.default_rng(1); n = 5000
    x, z = rng.normal(size=(2, n))
    df = pd.DataFrame({'x': x, 'x_twin': x + 0.05 * rng.normal(size=n), 'z': z})
    df['y'] = df.x + 0.5 * df.z + 0.1 * rng.normal(size=n)
    return _train_continuous(df, ['x', 'x_twin', 'z'], n_train=3500)


def test_conditional_removes_credit_of_correlated_irrelevant_column(twin_learner):
    learn, te = twin_learner
    plain = learn.feature_importance(df=te, seed=0, progress=False).set_index('feature')
    cond = learn.feature_importance(df=te, conditional='strata', n_bins=10, seed=0, progress=False)
    assert cond.attrs['partners'] == {'x': ['x_twin'], 'x_twin': ['x']}
    c = cond.set_index('feature')
    # plain permutation credits the twin heavily (the net reads x partly through it) ...
    assert plain.loc['x_twin', 'ci_low'] > 0 and plain.loc['x_twin', 'importance'] > 0.2 * plain.loc['x', 'importance']
    # ... conditional permutation, which only shuffles the twin among rows with similar x, takes nearly all of it away:
    # what is left is small next to a real driver's importance
    assert c.loc['x_twin', 'importance'] < 0.1 * plain.loc['x_twin', 'importance']
    assert abs(c.loc['x_twin', 'importance']) < 0.05 * c.loc['z', 'importance']
    # a column without partners is scored exactly as in the plain run (same seed, same shared permutation)
    assert c.loc['z', 'importance'] == plain.loc['z', 'importance']
    # the model sampler (conditional=True) takes the twin's shared credit away too, and leaves the independent z alone
    m = learn.feature_importance(df=te, conditional=True, seed=0, progress=False).set_index('feature')
    assert abs(m.loc['x_twin', 'importance']) < 0.1 * plain.loc['x_twin', 'importance']
    assert abs(m.loc['z', 'importance'] / plain.loc['z', 'importance'] - 1) < 0.25


def test_correlated_bad_inputs_and_nothing_mutated(twin_learner):
    learn, te = twin_learner
    before_df = te.copy()
    state = {k: v.clone() for k, v in learn.model.state_dict().items()}
    flags = [m.training for m in learn.model.modules()]
    with pytest.raises(ValueError, match=r"unknown column\(s\) in cols \['nope'\]"):
        learn.double_permutation(df=te, cols=['x', 'nope'], progress=False)
    with pytest.raises(ValueError, match=r"unknown group member\(s\) \['nope'\]"):
        learn.feature_importance(df=te, groups=[['x', 'nope']], progress=False)
    with pytest.raises(ValueError, match='empty'):
        learn.feature_importance(df=te, groups=[[]], progress=False)
    with pytest.raises(ValueError, match='auto_threshold must be a number >= 0 and <= 1'):
        learn.feature_importance(df=te, groups='auto', auto_threshold=1.5, progress=False)
    with pytest.raises(ValueError, match='cond_threshold must be a number >= 0 and <= 1'):
        learn.feature_importance(df=te, conditional=True, cond_threshold=-1, progress=False)
    with pytest.raises(ValueError, match=r"unknown partner column\(s\) \['nope'\]"):
        learn.feature_importance(df=te, conditional={'x': ['nope']}, progress=False)
    with pytest.raises(ValueError, match='at least 2 columns'):
        learn.double_permutation(df=te, cols=['x'], progress=False)
    with pytest.raises(ValueError, match='threshold must be a number >= 0 and <= 1'):
        learn.feature_correlations(df=te, threshold=2)
    learn.feature_importance(df=te, groups='auto', conditional=True, seed=0, progress=False)
    learn.double_permutation(df=te, seed=0, progress=False)
    pd.testing.assert_frame_equal(te, before_df)
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in state.items())
    assert flags == [m.training for m in learn.model.modules()]


def test_strata_codes_bins_and_levels():
    fr = pd.DataFrame({'u': np.arange(100.), 'c': ['a', 'b'] * 50})
    s = strata_codes(fr, {'u': 'continuous', 'c': 'categorical'}, n_bins=5)
    assert len(np.unique(s)) == 10
    assert (pd.Series(s).groupby(pd.cut(fr.u, 5, labels=False).to_numpy() * 2 + (fr.c == 'b')).nunique() == 1).all()
