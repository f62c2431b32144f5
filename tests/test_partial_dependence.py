"""Partial dependence, ICE, ALE and the H-statistic: agreement with `sklearn.inspection.partial_dependence`
(method='brute') on the same learner, exact values on known functions, and bad inputs that leave the learner and the
DataFrame untouched."""
import inspect
import itertools
import random
import warnings
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
import fastcore.test as fct
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.inspection import partial_dependence as sk_partial_dependence
from fastai_featimp.all import encode, make_demo_data
from fastai_featimp.analyses.ale import accumulated_local_effects
from fastai_featimp.analyses.hstat import h_statistic
from fastai_featimp.adapters.tabular.encode import encode_column_values as encode_values, raw_frame
from fastai_featimp.plots.dependence import plot_partial_dependence, plot_ale, plot_h_statistic


# ---------------------------------------------------------------------------------------------------------------
# scikit-learn views of a fitted fastai tabular learner
# ---------------------------------------------------------------------------------------------------------------

class RawLearner(BaseEstimator):
    """X = raw feature columns (a DataFrame, as the training data was); predictions through the learner's own
    pipeline: `learn.dls.test_dl(X)` and `learn.get_preds` (which applies the loss's activation)."""
    def __init__(self, learn=None): self.learn = learn
    def fit(self, X, y=None): return self
    def __sklearn_is_fitted__(self): return True
    def _preds(self, X):
        state = random.getstate()
        try:
            dl = self.learn.dls.test_dl(X)
            with self.learn.no_bar(), self.learn.no_logging(): p, _ = self.learn.get_preds(dl=dl)
        finally: random.setstate(state)
        return p.double().numpy()

class RawRegressor(RegressorMixin, RawLearner):
    def predict(self, X):
        p = self._preds(X)
        return p[:, 0] if p.shape[1] == 1 else p

class RawClassifier(ClassifierMixin, RawLearner):
    @property
    def classes_(self): return np.array([str(c) for c in self.learn.dls.vocab])
    def predict_proba(self, X): return self._preds(X)


class EncodedLearner(BaseEstimator):
    "X = [Categorify codes | normalised continuous columns] as floats; the wrapper rebuilds x_cat / x_cont."
    def __init__(self, learn=None, n_cat=0): self.learn, self.n_cat = learn, n_cat
    def fit(self, X, y=None): return self
    def __sklearn_is_fitted__(self): return True
    def _preds(self, X):
        X = torch.as_tensor(np.asarray(X, dtype=np.float64))
        m = self.learn.model
        flags = [(mod, mod.training) for mod in m.modules()]
        try:
            m.eval()
            with torch.no_grad(): out = m(X[:, :self.n_cat].round().long(), X[:, self.n_cat:].float())
        finally:
            for mod, t in flags: mod.training = t
        return self.learn.loss_func.activation(out).double().numpy()

class EncodedClassifier(ClassifierMixin, EncodedLearner):
    @property
    def classes_(self): return np.array([str(c) for c in self.learn.dls.vocab])
    def predict_proba(self, X): return self._preds(X)


# `custom_values` arrived in scikit-learn 1.7 and the result key `grid_values` in 1.3 (before: `values`); the oldest
# supported set (.ci/oldest.txt) has 1.2, where an explicit grid is evaluated by `brute_average` below instead.
SK_CUSTOM = 'custom_values' in inspect.signature(sk_partial_dependence).parameters

def brute_average(est, X, features, grids):
    """scikit-learn's `method='brute'` average written out (`_partial_dependence_brute`), for an explicit grid:
    each grid point (first feature slowest) written into a copy of X, predictions averaged over the rows;
    binary classifiers keep the positive class. Returns (n_outputs, n_grid_points)."""
    clf = hasattr(est, 'predict_proba')
    X_eval, avg = X.copy(), []
    for point in itertools.product(*grids):
        for f, v in zip(features, point):
            if isinstance(X_eval, pd.DataFrame): X_eval[f] = v
            else: X_eval[:, f] = v
        avg.append(np.asarray(est.predict_proba(X_eval) if clf else est.predict(X_eval), dtype=np.float64).mean(0))
    a = np.array(avg).T.reshape(-1, len(avg))
    return a[1:] if clf and len(a) == 2 else a

def sk_average(learn, df, cols, grid_resolution=20, custom=None):
    "scikit-learn's brute-force PD through `RawLearner`, as (n_outputs, n_grid_points), and its grid values."
    X = df.drop(columns=list(learn.dls.y_names))
    cats = [c for c in learn.dls.cat_names if c in X.columns]
    clf = getattr(learn.dls, 'vocab', None) is not None
    est = RawClassifier(learn) if clf else RawRegressor(learn)
    if custom and not SK_CUSTOM:
        assert set(custom) == set(cols), 'an explicit grid for some of the columns needs scikit-learn >= 1.7'
        grids = [np.asarray(custom[c]) for c in cols]
        return brute_average(est, X, list(cols), grids), grids
    kw = dict(response_method='predict_proba') if clf else {}
    if custom: kw['custom_values'] = custom
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        r = sk_partial_dependence(est, X, list(cols), method='brute', kind='average', grid_resolution=grid_resolution,
                                  categorical_features=cats, **kw)
    return r['average'].reshape(len(r['average']), -1), r['grid_values'] if 'grid_values' in r else r['values']


def snapshot(learn):
    m = learn.model
    return dict(state={k: v.detach().clone() for k, v in m.state_dict().items()},
                flags=[(n, mod.training) for n, mod in m.named_modules()], dls=learn.dls, loss=learn.loss_func,
                valid=learn.dls.valid_ds.items.copy(deep=True), rng=(random.getstate(), np.random.get_state()[1].copy(),
                                                                      torch.random.get_rng_state().clone()))


def assert_unchanged(learn, s):
    m = learn.model
    for k, v in s['state'].items(): assert torch.equal(m.state_dict()[k], v), k
    assert [(n, mod.training) for n, mod in m.named_modules()] == s['flags']
    assert learn.dls is s['dls'] and learn.loss_func is s['loss']
    pd.testing.assert_frame_equal(learn.dls.valid_ds.items, s['valid'])
    assert random.getstate() == s['rng'][0] and np.array_equal(np.random.get_state()[1], s['rng'][1])
    assert torch.equal(torch.random.get_rng_state(), s['rng'][2])
    assert not torch.is_inference_mode_enabled() and torch.is_grad_enabled()


# ---------------------------------------------------------------------------------------------------------------
# agreement with scikit-learn
# ---------------------------------------------------------------------------------------------------------------

CASES = [('reg', ['x1'], 20), ('reg', ['x2'], 20), ('reg', ['shade'], 20), ('reg', ['x1', 'shade'], 5),
         ('clf', ['x3'], 20), ('clf', ['shade'], 20), ('clf', ['x1', 'x3'], 4),
         ('multiclass', ['x1'], 20), ('multiclass', ['shade', 'x3'], 4),
         ('multitarget', ['x3'], 20), ('multitarget', ['x1', 'shade'], 4)]

@pytest.mark.parametrize('name,cols,res', CASES, ids=[f"{n}-{'x'.join(c)}" for n, c, _ in CASES])
def test_matches_sklearn_brute_through_the_learner(request, name, cols, res):
    """Same learner, same rows: ours (batched, encoded tensors) vs sklearn's brute method calling the learner's own
    pipeline (test_dl + get_preds) once per grid point, on sklearn's own grid (`x2` has missing values, which
    sklearn's grid cannot handle: there it gets our grid as `custom_values`, and sklearn writes the value into the
    raw column, so the procs set `x2_na = False` — the same encoding as ours)."""
    learn, test_df = request.getfixturevalue(name)
    df = test_df.iloc[:150]
    ours = learn.partial_dependence(cols, df=df, grid_resolution=res, progress=False)
    custom = {c: ours[c].unique() for c in cols if df[c].isna().any()}
    sk, grid = sk_average(learn, df, cols, res, custom)
    for c, g in zip(cols, grid):   # the same grid (categoricals: every level seen; continuous: sklearn's percentiles)
        mine = pd.unique(ours[c])
        if ours.attrs['kinds'][cols.index(c)] == 'continuous': fct.test_close(np.asarray(mine, float), g.astype(float), eps=1e-9)
        else: fct.test_eq([str(v) for v in mine], [str(v) for v in g])
    outs = ours.attrs['outputs']
    if name == 'clf': fct.test_eq(outs, ['yes'])                          # binary: the positive class
    if name == 'multiclass': fct.test_eq(sorted(outs), ['high', 'low', 'mid'])
    if name == 'multitarget': fct.test_eq(outs, ['y1', 'y2'])
    mine = ours[outs].to_numpy().T
    assert mine.shape == sk.shape, (mine.shape, sk.shape)
    np.testing.assert_allclose(mine, sk, atol=1e-5, rtol=0)


def test_matches_sklearn_on_encoded_columns_categorical_pair(multiclass):
    """The hint's wrapper: X = the encoded columns (codes and normalised values as floats); our grid passed in
    encoded units via `custom_values`. A categorical x categorical pair, 3 classes."""
    learn, test_df = multiclass
    df = test_df.iloc[:120]
    ours = learn.partial_dependence(['shade', 'zip'], df=df, progress=False)
    enc = encode(learn, df=df, labelled=False)
    names = list(enc.columns.name)
    X = torch.cat([enc.x_cat.double(), enc.x_cont.double()], 1).numpy()
    custom = {names.index(c): encode_values(learn, c, pd.unique(ours[c]))[:, 0] for c in ['shade', 'zip']}
    est, feats = EncodedClassifier(learn, enc.x_cat.shape[1]), [names.index('shade'), names.index('zip')]
    if SK_CUSTOM: sk = sk_partial_dependence(est, X, feats, method='brute', custom_values=custom, response_method='predict_proba')['average']
    else: sk = brute_average(est, X, feats, [custom[f] for f in feats])
    fct.test_eq(len(ours), len(custom[names.index('shade')]) * len(custom[names.index('zip')]))
    np.testing.assert_allclose(ours[ours.attrs['outputs']].to_numpy().T, sk.reshape(3, -1), atol=1e-5, rtol=0)


@pytest.mark.skipif(not SK_CUSTOM, reason='scikit-learn < 1.7 has no custom_values to check brute_average against')
@pytest.mark.parametrize('name', ['clf', 'multitarget'])
def test_brute_average_is_sklearns_brute(request, name):
    "The written-out reference the old-scikit-learn path uses equals scikit-learn's own, on a 2-column explicit grid."
    learn, test_df = request.getfixturevalue(name)
    X = test_df.iloc[:40].drop(columns=list(learn.dls.y_names))
    custom = {'x2': np.array([-1.0, 0.5, 2.0]), 'x1': np.array([0.0, 1.0])}
    est = RawClassifier(learn) if name == 'clf' else RawRegressor(learn)
    kw = dict(response_method='predict_proba') if name == 'clf' else {}
    sk = sk_partial_dependence(est, X, ['x2', 'x1'], method='brute', custom_values=custom, **kw)['average']
    np.testing.assert_allclose(brute_average(est, X, ['x2', 'x1'], [custom['x2'], custom['x1']]),
                               sk.reshape(len(sk), -1), atol=1e-12, rtol=0)


def test_ice_matches_sklearn_individual(clf):
    learn, test_df = clf
    df = test_df.iloc[:60]
    ours = learn.partial_dependence('x1', df=df, kind='individual', grid_resolution=6, progress=False)
    X = df.drop(columns='y')
    sk = sk_partial_dependence(RawClassifier(learn), X, ['x1'], method='brute', kind='individual', grid_resolution=6,
                               categorical_features=['shade', 'zip'], response_method='predict_proba')
    fct.test_eq(list(ours.columns), ['row', 'x1', 'yes'])
    np.testing.assert_allclose(ours.yes.to_numpy().reshape(60, 6), sk['individual'][0], atol=1e-5, rtol=0)
    fct.test_eq(ours.row.unique().tolist(), list(range(60)))


# ---------------------------------------------------------------------------------------------------------------
# grids, encoding, kinds
# ---------------------------------------------------------------------------------------------------------------

def test_explicit_grid_wins_and_unknown_level_is_na_with_a_warning(reg):
    learn, test_df = reg
    df = test_df.iloc[:100]
    t = learn.partial_dependence(['x1', 'shade'], df=df, grid={'x1': [0.0, 1.5], 'shade': ['red', 'grey']}, progress=False)
    fct.test_eq(t.x1.tolist(), [0.0, 0.0, 1.5, 1.5]); fct.test_eq(t.shade.tolist(), ['red', 'grey'] * 2)
    t1 = learn.partial_dependence('x1', df=df, grid=[0.0, 1.5], progress=False)     # a list for one column
    pd.testing.assert_frame_equal(t1, learn.partial_dependence('x1', df=df, grid={'x1': [0.0, 1.5]}, progress=False))
    fct.test_eq(t1.x1.tolist(), [0.0, 1.5])
    with pytest.warns(UserWarning, match=r"\['purple'\] of 'shade' are not levels the learner knows"):
        u = learn.partial_dependence('shade', df=df, grid=['purple', '#na#'], progress=False)
    fct.test_close(u.y.iloc[0], u.y.iloc[1], eps=1e-9)   # 'purple' is encoded as '#na#'
    # a continuous value is normalised as Normalize would; the `_na` indicator becomes False
    enc = encode_values(learn, 'x2', [0.0, np.nan])
    norm = [p for p in learn.dls.procs if type(p).__name__ == 'Normalize'][0]
    fct.test_close(enc[0, 0], (0.0 - norm.means['x2']) / norm.stds['x2'], eps=1e-5)
    na_classes = list(learn.dls.classes['x2_na'])
    fct.test_eq(enc[:, 1].astype(int).tolist(), [na_classes.index(False), na_classes.index(True)])


def test_ice_centering_both_and_subsample(reg):
    learn, test_df = reg
    b = learn.partial_dependence('x3', df=test_df, kind='both', centered=True, max_rows=40, seed=1, progress=False)
    avg, ind = b[b.row.isna()], b[b.row.notna()]
    fct.test_eq(len(avg), 20); fct.test_eq(ind.row.nunique(), 40)
    assert (ind[ind.x3 == ind.x3.min()].y.abs() < 1e-12).all()
    fct.test_close(ind.groupby('x3').y.mean().to_numpy(), avg.y.to_numpy(), eps=1e-9)
    again = learn.partial_dependence('x3', df=test_df, kind='both', centered=True, max_rows=40, seed=1, progress=False)
    pd.testing.assert_frame_equal(b, again)
    fct.test_eq(b.attrs['seed'], 1); fct.test_eq(b.attrs['n_rows'], 40)
    # the subsample's rows are positions in test_df: the ICE of one row equals the PDP of that single row
    r = int(ind.row.iloc[0])
    one = learn.partial_dependence('x3', df=test_df.iloc[[r]], grid=avg.x3.tolist(), progress=False)
    fct.test_close(ind[ind.row == r].y.to_numpy(), (one.y - one.y.iloc[0]).to_numpy(), eps=1e-5)


def test_chunk_size_does_not_change_results(clf):
    learn, test_df = clf
    a = learn.partial_dependence(['x1', 'shade'], df=test_df.iloc[:200], grid_resolution=6, progress=False)
    b = learn.partial_dependence(['x1', 'shade'], df=test_df.iloc[:200], grid_resolution=6, bs=77, progress=False)
    np.testing.assert_allclose(a.yes, b.yes, atol=1e-6)


def test_default_data_is_the_validation_set_decoded(reg):
    "Without df, rows come from dls.valid; the grid is built from its decoded raw values (x2's filled values missing)."
    learn, _ = reg
    full = make_demo_data(6000, 'regression', 0)
    valid = full.iloc[3600:4800].reset_index(drop=True)
    raw = raw_frame(learn)
    fct.test_close(raw.x1.to_numpy(), valid.x1.to_numpy(), eps=1e-4)
    fct.test_eq(raw.x2.isna().to_numpy(), valid.x2.isna().to_numpy())
    fct.test_eq(raw.shade.tolist(), valid.shade.tolist())
    a = learn.partial_dependence('x2', progress=False)
    b = learn.partial_dependence('x2', df=valid, progress=False)
    np.testing.assert_allclose(a.x2, b.x2, atol=1e-4); np.testing.assert_allclose(a.y, b.y, atol=1e-4)


def test_exported_learner_needs_df(exported_reg):
    learn, test_df = exported_reg
    t = learn.partial_dependence('x1', df=test_df.iloc[:50], grid_resolution=5, progress=False)
    fct.test_eq(len(t), 5)
    fct.test_fail(lambda: learn.partial_dependence('x1', progress=False), contains='pass `df=`')


# ---------------------------------------------------------------------------------------------------------------
# ALE and H on known functions (plain PyTorch modules)
# ---------------------------------------------------------------------------------------------------------------

class Known(nn.Module):
    "f(x) = 2 x0 + x1² + 3 x2 x3 with a BatchNorm layer in front (identity statistics), to check the eval flag."
    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(4); self.bn.eval()
    def forward(self, x):
        x = self.bn(x)
        return (2 * x[:, 0] + x[:, 1] ** 2 + 3 * x[:, 2] * x[:, 3])[:, None]


def test_h_statistic_additive_zero_product_positive():
    X = torch.randn(250, 4, generator=torch.Generator().manual_seed(0))
    m = Known(); m.train()
    h = h_statistic(m, X, feature_names=['a', 'b', 'c', 'd'], seed=0, progress=False).set_index(['feature_a', 'feature_b'])
    assert m.training and m.bn.training    # restored
    assert h.loc[('c', 'd'), 'h'] > 0.9, h
    for p in [('a', 'b'), ('a', 'c'), ('a', 'd'), ('b', 'c'), ('b', 'd')]: assert h.loc[p, 'h'] < 1e-3, (p, h.loc[p])
    o = h_statistic(m, X, feature_names=['a', 'b', 'c', 'd'], kind='overall', seed=0, progress=False).set_index('feature')
    assert o.h['c'] > 0.5 and o.h['d'] > 0.5 and o.h['a'] < 1e-3 and o.h['b'] < 1e-3
    fct.test_eq(list(o.columns), ['h', 'h_std', 'ci_low', 'ci_high', 'h2', 'rms'])


def test_h_statistic_on_a_learner_with_a_product_term():
    "A tiny fastai learner on y = a*b + c: H(a, b) is clearly larger than for the additive pairs."
    from fastai.tabular.all import Normalize
    from conftest import train_recipe
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(3000, 3)), columns=['a', 'b', 'c'])
    df['y'] = df.a * df.b + df.c + 0.1 * rng.normal(size=3000)
    learn = train_recipe(df, [], ['a', 'b', 'c'], 'y', valid_idx=range(2500, 3000), procs=[Normalize], layers=[64, 32], epochs=6, bs=128)
    h = learn.h_statistic(df=df.iloc[2500:], max_rows=150, seed=0, progress=False).set_index(['feature_a', 'feature_b']).h
    assert h[('a', 'b')] > 0.5, h
    assert h[('a', 'c')] < 0.2 and h[('b', 'c')] < 0.2, h


def test_ale_exact_on_additive_functions():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(2000, 4, generator=g)
    a = accumulated_local_effects(Known(), X, 0, n_bins=10)
    fct.test_close(np.diff(a.pred), 2 * np.diff(a.x0), eps=1e-4)
    fct.test_close((((a.pred[:-1].to_numpy() + a.pred[1:].to_numpy()) / 2) * a['count'][1:]).sum() / 2000, 0, eps=1e-6)  # centred
    effect = torch.tensor([0., 3., -1., 0.5, 2.])
    lev = torch.randint(0, 5, (2000,), generator=g)
    f = lambda xc, xn: (effect[xc[:, 0]] + xn[:, 0])[:, None]
    c = accumulated_local_effects(f, (lev[:, None], X[:, :1]), (0, 0))
    cnt = c['count'].to_numpy(); eff = effect[c.x0_0.astype(int).to_numpy()].numpy()
    fct.test_close(c.pred.to_numpy(), eff - (eff * cnt).sum() / cnt.sum(), eps=1e-5)


def test_ale_orders_categorical_levels_by_similarity():
    "Levels whose rows look alike (here: the mean of a continuous column) end up next to each other."
    g = torch.Generator().manual_seed(2)
    lev = torch.randint(0, 5, (3000,), generator=g)
    loc = torch.tensor([0., 4., 1., 3., 2.])   # level 0 ~ 0, 2 ~ 1, 4 ~ 2, 3 ~ 3, 1 ~ 4
    xn = (loc[lev] + torch.randn(3000, generator=g))[:, None]   # overlapping: KS distance grows with the gap
    c = accumulated_local_effects(lambda xc, xn: xn + xc.float(), (lev[:, None], xn), (0, 0))
    order = c.x0_0.astype(int).tolist()
    assert order in ([0, 2, 4, 3, 1], [1, 3, 4, 2, 0]), order


def test_learner_ale_close_to_pdp_for_an_independent_column(reg):
    "On the demo data x1 is independent of the other columns and the model near-additive: ALE ≈ centred PDP."
    learn, test_df = reg
    a = learn.ale('x1', df=test_df, n_bins=10)
    p = learn.partial_dependence('x1', df=test_df, grid=a.x1.tolist(), progress=False)
    da, dp = a.y - a.y.mean(), p.y - p.y.mean()
    assert np.abs(da - dp).max() < 0.05 * np.ptp(dp), (da.tolist(), dp.tolist())
    c = learn.ale('shade', df=test_df)
    fct.test_eq(sorted(c.shade), ['blue', 'green', 'grey', 'red']); fct.test_eq(c['count'].sum(), len(test_df))


# ---------------------------------------------------------------------------------------------------------------
# bad inputs: clear errors, nothing changed
# ---------------------------------------------------------------------------------------------------------------

BAD = [
    (dict(cols='nope'), ValueError, "unknown column 'nope': valid columns are"),
    (dict(cols='x2_na'), ValueError, "'x2_na' is the missing-value indicator of 'x2'"),
    (dict(cols=['x1', 'x1']), ValueError, 'names a column twice'),
    (dict(cols=[]), ValueError, 'cols is empty'),
    (dict(cols='x1', grid=[]), ValueError, "the grid of column 'x1' is empty"),
    (dict(cols=['x1', 'x3'], grid={'x1': []}), ValueError, "the grid of column 'x1' is empty"),
    (dict(cols=['x1', 'x3'], grid={'x9': [1.]}), ValueError, "grid names column(s) ['x9'] that are not in cols"),
    (dict(cols=['x1', 'x3'], grid=[1., 2.]), ValueError, 'pass grid as a dict column -> values'),
    (dict(cols='x1', grid='abc'), TypeError, 'grid must be a list of values'),
    (dict(cols='x1', grid=['a', 'b']), TypeError, "the grid of the continuous column 'x1' must hold numbers"),
    (dict(cols='x1', target='maybe'), ValueError, "target 'maybe' is not an output of this learner: its outputs are ['y']"),
    (dict(cols=['x1', 'x3', 'noise'], plot=True), ValueError, 'a partial dependence plot shows 1 or 2 columns, got 3'),
    (dict(cols='x1', kind='mean'), ValueError, "kind must be one of ['average', 'individual', 'both']"),
    (dict(cols='x1', grid_resolution=1), ValueError, 'grid_resolution must be an int >= 2'),
    (dict(cols='x1', percentiles=(0.9, 0.1)), ValueError, 'percentiles must satisfy 0 <= low < high <= 1'),
    (dict(cols='x1', max_rows=0), ValueError, 'max_rows must be an int >= 1'),
]

@pytest.mark.parametrize('kw,exc,msg', BAD, ids=[m[:30] for *_, m in BAD])
def test_bad_inputs_raise_and_change_nothing(reg, kw, exc, msg):
    learn, test_df = reg
    df = test_df.iloc[:50].copy(); before = df.copy()
    s = snapshot(learn)
    with pytest.raises(exc) as e: learn.partial_dependence(df=df, progress=False, **kw)
    assert msg in str(e.value), str(e.value)
    assert_unchanged(learn, s)
    pd.testing.assert_frame_equal(df, before)


def test_bad_target_of_a_classifier_and_other_methods(clf, clean):
    learn, test_df = clf
    df = test_df.iloc[:50]
    s = snapshot(learn)
    fct.test_fail(lambda: learn.partial_dependence('x1', df=df, target='maybe'), contains="target 'maybe' is not a class of this learner: its classes are ['no', 'yes']")
    fct.test_fail(lambda: learn.ale(['x1', 'x3'], df=df), contains='ALE takes one column name')
    fct.test_fail(lambda: learn.ale('x1', df=df, n_bins=0), contains='n_bins must be an int >= 1')
    fct.test_fail(lambda: learn.h_statistic(df=df, kind='pairs'), contains="kind must be one of ['pairwise', 'overall']")
    fct.test_fail(lambda: learn.h_statistic(df=df, max_rows=1), contains='max_rows must be an int >= 2')
    fct.test_fail(lambda: learn.h_statistic(['x1'], df=df, progress=False), contains='pairwise H needs at least 2 columns')
    fct.test_fail(lambda: learn.h_statistic(['x1', 'nope'], df=df), contains="unknown column 'nope'")
    t = learn.partial_dependence(['x1', 'x3', 'noise'], df=df, grid_resolution=2, progress=False)
    fct.test_fail(lambda: plot_partial_dependence(t), contains='shows 1 or 2 columns; the table has 3')
    assert_unchanged(learn, s)
    cl, ctest = clean   # no missing x2 in training: no x2_na, so a missing grid value cannot be encoded
    fct.test_fail(lambda: cl.partial_dependence('x2', df=ctest.iloc[:20], grid=[0., np.nan]), contains="has no `x2_na` indicator")


def test_results_leave_learner_and_rngs_alone_and_plots_return_axes(clf):
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    learn, test_df = clf
    df = test_df.iloc[:80].copy(); before = df.copy()
    learn.model.train()
    try:
        s = snapshot(learn)
        t = learn.partial_dependence('x1', df=df, kind='both', progress=False)
        t2 = learn.partial_dependence(['x1', 'shade'], df=df, grid_resolution=4, progress=False)
        a = learn.ale('shade', df=df)
        h = learn.h_statistic(['x1', 'x3', 'shade'], df=df, max_rows=30, seed=0, progress=False)
        assert_unchanged(learn, s)
    finally: learn.model.eval()
    pd.testing.assert_frame_equal(df, before)
    for ax in (plot_partial_dependence(t), plot_partial_dependence(t2), plot_ale(a), plot_h_statistic(h),
               plot_partial_dependence(learn.partial_dependence('shade', df=df, progress=False))):
        assert isinstance(ax, plt.Axes)
    plt.close('all')
