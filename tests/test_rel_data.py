"""Issue 20, data and metric classes: a bool column given as 0/1, metric directions and names, multi-label metrics,
model outputs that do not match the target, unsigned row indices, group/cols overlaps. Each test failed before its fix."""
import warnings
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import train_recipe
from fastai_featimp.all import FeatureInterpretation


@pytest.fixture(scope='module')
def bool_learner():
    rng = np.random.default_rng(0); n = 1400
    df = pd.DataFrame({'flag': rng.random(n) < 0.5, 'x': rng.normal(size=n)})
    df['y'] = 2.0 * df['flag'] + df['x'] + 0.1 * rng.normal(size=n)
    learn = train_recipe(df.iloc[:1000], ['flag'], ['x'], 'y', valid_idx=range(800, 1000), layers=[32], epochs=4, bs=64)
    return learn, df.iloc[1000:].reset_index(drop=True)


@pytest.mark.parametrize('cast', [lambda s: s.astype(int), lambda s: s.astype(float), lambda s: s.astype(int).astype(str),
                                  lambda s: s.astype(int).astype(object)])
def test_a_bool_column_given_as_0_1_is_reconciled_by_value(bool_learner, cast):
    learn, test = bool_learner
    want = learn.feature_importance(test, seed=0, progress=False).set_index('feature').importance
    assert want['flag'] > 0.05                                          # the column matters: its importance cannot be 0 by accident
    interp = FeatureInterpretation.from_learner(learn, df=test.assign(flag=cast(test.flag)))
    assert interp.data.unseen['flag'] == 0.0 and any('booleans' in n for n in interp.notes), interp.notes
    got = interp.importance(seed=0, progress=False).set_index('feature').importance
    np.testing.assert_allclose(got[want.index], want, rtol=1e-6)


def test_unseen_shares_count_rows(bool_learner):
    learn, test = bool_learner
    t = test.assign(flag=test.flag.astype(object))
    t.loc[:1, 'flag'] = 'maybe'; t.loc[2:, 'flag'] = None; t.loc[2:30, 'flag'] = True   # 2 unseen of 400 rows, of 31 non-missing
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); interp = FeatureInterpretation.from_learner(learn, df=t)
    assert interp.data.unseen['flag'] == pytest.approx(2 / len(t))


def _fi(learn, test, **kw):
    return learn.feature_importance(test, seed=0, progress=False, **kw).set_index('feature')


def test_a_score_suffix_outranks_the_word_error(reg):
    "d2_absolute_error_score is higher-is-better (scikit-learn's suffix rule), though it contains 'error'; no guess, no warning."
    from fastai.metrics import skm_to_fastai
    from sklearn.metrics import d2_absolute_error_score
    learn, test = reg
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        warnings.filterwarnings('ignore', message='.*not writable.*')
        fi = _fi(learn, test, metric=skm_to_fastai(d2_absolute_error_score, is_class=False))
    assert fi.attrs['higher_is_better'] is True and fi.importance.idxmax() == 'x1' and fi.loc['x1', 'importance'] > 0.05


def test_metric_directions_follow_the_order_of_evidence():
    from fastai_featimp.core.scoring import Scorer
    class Declared:
        higher_is_better = False                    # declared by the object: wins over the name
        def __call__(self, p, t): return 0.
    Declared.__name__ = 'accuracy_like'
    assert Scorer(Declared()).higher_is_better is False
    with pytest.warns(UserWarning, match="guessed from a word in its name"):
        assert Scorer(lambda p, t: 0., name='my_mse').higher_is_better is False


def test_sklearn_functions_and_argmax_metrics_on_a_regression_learner(reg):
    from fastai.metrics import skm_to_fastai
    from sklearn.metrics import r2_score
    learn, test = reg
    with pytest.raises(ValueError, match=r"is_class=False"):
        _fi(learn, test, metric=skm_to_fastai(r2_score))             # default is_class=True: an argmax of one output
    raw = _fi(learn, test, metric=r2_score)                           # f(y_true, y_pred): wrapped, not called the wrong way round
    ref = _fi(learn, test, metric=skm_to_fastai(r2_score, is_class=False))
    np.testing.assert_allclose(raw.loc[ref.index, 'importance'], ref.importance, rtol=1e-9)
    assert ref.loc['x1', 'importance'] > 0.05


def test_plain_torch_losses_and_top_k(clf, reg):
    from functools import partial
    from torch import nn
    from fastai.metrics import top_k_accuracy
    learn, test = clf
    ce = _fi(learn, test, metric=nn.CrossEntropyLoss())
    loss = _fi(learn, test)
    np.testing.assert_allclose(ce.loc[loss.index, 'importance'], loss.importance, rtol=1e-5, atol=1e-7)   # float32 losses
    assert ce.attrs['metric'] == 'CrossEntropyLoss' and ce.attrs['higher_is_better'] is False
    with pytest.raises(ValueError, match="k=5 on a classifier of 2 classes is always 1"):
        _fi(learn, test, metric=top_k_accuracy)
    with pytest.raises(ValueError, match="k=2"):
        _fi(learn, test, metric=partial(top_k_accuracy, k=2))
    rl, rt = reg
    mse = _fi(rl, rt, metric=nn.MSELoss())
    np.testing.assert_allclose(mse.loc['x1', 'importance'], _fi(rl, rt).loc['x1', 'importance'], rtol=1e-5)


@pytest.fixture(scope='module')
def multilabel():
    from fastai.tabular.all import TabularDataLoaders, tabular_learner, MultiCategoryBlock, Categorify, FillMissing, Normalize, accuracy_multi
    from fastai_featimp.all import make_demo_data
    from fastai_featimp.core.state import isolated_seed
    df = make_demo_data(1500, 'regression', seed=3)
    df['a'] = df.x1 > 0; df['b'] = df.x3 > 0.5
    with isolated_seed(0):
        dls = TabularDataLoaders.from_df(df.iloc[:1200], procs=[Categorify, FillMissing, Normalize], cat_names=['shade', 'zip'],
                                         cont_names=['x1', 'x2', 'x3', 'noise'], y_names=['a', 'b'],
                                         y_block=MultiCategoryBlock(encoded=True, vocab=['a', 'b']), valid_idx=list(range(1000, 1200)), bs=128)
        learn = tabular_learner(dls, layers=[32], metrics=accuracy_multi)
        with learn.no_bar(), learn.no_logging(): learn.fit(3, 1e-2)
    return learn, df.iloc[1200:].reset_index(drop=True)


def test_multilabel_metric_names_mean_the_multilabel_metrics(multilabel):
    from fastai.metrics import F1Score, accuracy
    learn, test = multilabel
    for name, multi in [('accuracy', 'accuracy_multi'), ('F1Score', 'F1ScoreMulti'), ('RocAucBinary', 'RocAucMulti')]:
        a, b = _fi(learn, test, metric=name), _fi(learn, test, metric=multi)
        np.testing.assert_allclose(a.loc[b.index, 'importance'], b.importance, rtol=1e-9)
        assert a.loc[['x1', 'x3'], 'importance'].min() > 0.02, name
    for m, alt in [(F1Score(), 'F1ScoreMulti'), (accuracy, 'accuracy_multi')]:
        with pytest.raises(ValueError, match=f"multi-label: use '{alt}'"): _fi(learn, test, metric=m)


def test_warnings_point_at_the_callers_line(reg):
    "An unseen-level warning through from_learner, a guessed direction through feature_importance: both name this file."
    learn, test = reg
    part = test.assign(shade=np.where(np.arange(len(test)) % 3 == 0, 'purple', test.shade))
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        FeatureInterpretation.from_learner(learn, df=part)
        learn.feature_importance(test, metric=lambda p, t: ((p - t) ** 2).mean(), seed=0, progress=False, n_repeats=1)
    ours = [w for w in ws if 'never saw' in str(w.message) or 'direction of metric' in str(w.message)]
    assert len(ours) == 2 and all(w.filename == __file__ for w in ours), [(w.filename, w.lineno, str(w.message)[:40]) for w in ours]


@pytest.mark.parametrize('dtype', [np.uint8, np.uint16, np.uint32, np.uint64, np.int8])
def test_explain_takes_unsigned_row_positions(reg, dtype):
    learn, test = reg
    interp = FeatureInterpretation.from_learner(learn, df=test)
    want = interp.explain(rows=[0, 3], seed=0, progress=False, n_permutations=4, n_background=20)
    got = interp.explain(rows=np.array([0, 3], dtype=dtype), seed=0, progress=False, n_permutations=4, n_background=20)
    pd.testing.assert_frame_equal(got, want)
    if np.iinfo(dtype).max > len(test):
        with pytest.raises(ValueError, match='out of range'):
            interp.explain(rows=np.array([0, len(test)], dtype=dtype), seed=0, progress=False)


def test_a_model_with_more_outputs_than_targets(reg):
    "3 outputs for 1 target column: labelled analyses refuse naming both counts; label-free ones name the outputs neutrally."
    from fastai.tabular.all import tabular_learner
    learn, test = reg
    bad = tabular_learner(learn.dls, layers=[8], n_out=3)
    with pytest.warns(UserWarning, match="the model has 3 outputs but the learner's target has 1 target column"):
        interp = FeatureInterpretation.from_learner(bad, df=test)
    assert interp.outputs == ['output_0', 'output_1', 'output_2']
    with pytest.raises(ValueError, match="Retrain with n_out equal to the number of targets"):
        interp.importance(seed=0, progress=False)
    pdp = interp.partial_dependence('x1', progress=False)
    assert {'output_0', 'output_1', 'output_2'} <= set(pdp.columns) and 'y' not in pdp.columns


def test_noise_sensitivity_does_not_rank_permuted_rows_among_noise_rows(reg):
    learn, test = reg
    with pytest.warns(UserWarning, match=r"\['shade', 'zip'\] have none .* and were permuted instead"):
        t = learn.feature_sensitivity(test, method='noise', progress=False, seed=0, normalize=True)
    m = t.method.tolist()
    assert m == sorted(m, key=lambda k: k != 'noise') and set(m) == {'noise', 'permute'}   # noise rows first, then the permuted
    for _, g in t.groupby('method'):
        assert g.sensitivity.is_monotonic_decreasing and abs(g.share.sum() - 1) < 1e-9     # ranked and shared within a method
    assert 'not comparable' in t.attrs['mixed_methods']


def test_callbacks_that_change_predictions_are_named(reg):
    from fastai.callback.core import Callback
    learn, test = reg

    class Rescale(Callback):
        def after_pred(self): self.learn.pred = self.pred * 2

    class TrainOnly(Callback):
        run_valid = False
        def before_batch(self): pass

    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        FeatureInterpretation.from_learner(learn, df=test)                  # the standard callbacks: no warning
        with learn.added_cbs([TrainOnly()]): FeatureInterpretation.from_learner(learn, df=test)
    assert not [w for w in ws if 'hook prediction' in str(w.message)]
    with learn.added_cbs([Rescale()]):
        with pytest.warns(UserWarning, match=r"Rescale \(after_pred\).*that of the bare model"):
            fi = learn.feature_importance(test, seed=0, progress=False, n_repeats=1)
    assert 'Rescale' not in [type(c).__name__ for c in learn.cbs] and fi.importance.notna().all()


# --- property tests of the new input classes (hypothesis; derandomized in CI by hypothesis_profile) ---
import hypothesis_profile  # noqa: E402,F401
from hypothesis import given, settings, HealthCheck, strategies as st  # noqa: E402

PROPS = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
BOOL_FORMS = {'bool': lambda s: s, 'int': lambda s: s.astype(int), 'float': lambda s: s.astype(float),
              'int_text': lambda s: s.astype(int).astype(str), 'bool_text': lambda s: s.astype(str),
              'lower_text': lambda s: s.astype(str).str.lower(), 'object_int': lambda s: s.astype(int).astype(object),
              'nullable_bool': lambda s: s.astype('boolean'), 'nullable_int': lambda s: s.astype('Int64'),
              'category_int': lambda s: s.astype(int).astype('category')}


@PROPS
@given(data=st.data())
def test_bool_columns_in_any_form_encode_as_the_bools(bool_learner, data):
    learn, test = bool_learner
    rows = data.draw(st.lists(st.integers(0, len(test) - 1), min_size=3, max_size=40, unique=True))
    part = test.iloc[rows].reset_index(drop=True)
    form = data.draw(st.sampled_from(sorted(BOOL_FORMS)))
    a = FeatureInterpretation.from_learner(learn, df=part)
    b = FeatureInterpretation.from_learner(learn, df=part.assign(flag=BOOL_FORMS[form](part.flag)))
    assert torch.equal(a.data.x_cat, b.data.x_cat), form
    assert b.data.unseen['flag'] == 0.0, form


ML_NAMES = ['accuracy', 'accuracy_multi', 'F1Score', 'F1ScoreMulti', 'RocAucBinary', 'RocAucMulti', 'RocAuc', 'Precision',
            'Recall', 'HammingLoss', 'rmse', 'mae', 'R2Score', 'error_rate', 'top_k_accuracy', 'no_such_metric', 'loss']


@PROPS
@given(name=st.sampled_from(ML_NAMES), seed=st.integers(0, 2**64))
def test_multilabel_metric_names_give_a_table_or_name_the_metric(multilabel, name, seed):
    learn, test = multilabel
    try: fi = learn.feature_importance(test.iloc[:120], metric=name, seed=seed, n_repeats=1, progress=False)
    except (ValueError, TypeError) as e:
        msg = str(e)
        assert name in msg or name.lower() in msg.lower() or 'multi-label' in msg or 'regression' in msg, (name, msg)
        assert 'AssertionError' not in msg and '==:' not in msg
    else:
        assert np.isfinite(fi.importance).all() and fi.attrs['metric']


@pytest.mark.parametrize('dtype', ['string', 'str', 'category'])
def test_string_columns_encode_as_object_columns(reg, dtype):
    "Issue 22: string-dtype columns go to the learner's procs as they are (no object copy): the same codes, missing and unseen values too."
    learn, test = reg
    t = test.iloc[:300].copy()
    t['shade'] = t['shade'].astype(object); t.loc[:9, 'shade'] = None; t.loc[10:14, 'shade'] = 'never-seen'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        want = FeatureInterpretation.from_learner(learn, df=t).data
        if dtype == 'str' and not hasattr(pd, 'StringDtype'): pytest.skip('no pandas string dtype')
        got = FeatureInterpretation.from_learner(learn, df=t.assign(shade=t.shade.astype(dtype))).data
    assert torch.equal(got.x_cat, want.x_cat) and torch.equal(got.x_cont, want.x_cont)
    (j, c), = [f.columns[0] for f in want.features if f.name == 'shade']
    assert j == 0 and (want.x_cat[:15, c] == 0).all()                          # missing and unseen: '#na#'
