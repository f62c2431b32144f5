"""The tabular adapter: `encode` reproduces what fastai feeds the model, the scorers reproduce `Learner.validate`,
and `Learner.feature_importance` picks its data (valid set, dl, df, exported learner) as documented."""
import numpy as np
import pandas as pd
import pytest
from conftest import Recording, evaluating
import torch
from torch import nn
from fastai.tabular.all import (Learner, CrossEntropyLossFlat, accuracy, rmse, mae, RocAucBinary)
from fastai_featimp.all import encode, learner_scorer

LEARNERS = ['reg', 'clf', 'multiclass', 'multitarget']
RAW_COLUMNS = {'x1', 'x2', 'x3', 'x3_twin', 'noise', 'shade', 'zip'}




def raw_outputs(learn, enc):
    with evaluating(learn.model) as m: return m(enc.x_cat, enc.x_cont)


def close(a, b, tol=1e-5):
    "`a` equals `b` to `tol`, relative for values above 1 in size."
    return abs(float(a) - float(b)) <= tol * max(1.0, abs(float(b)))


@pytest.mark.parametrize('name', LEARNERS)
@pytest.mark.parametrize('source', ['df', 'valid'])
def test_raw_outputs_and_targets_match_get_preds(request, name, source):
    learn, test_df = request.getfixturevalue(name)
    if source == 'df': enc, dl = encode(learn, df=test_df), learn.dls.test_dl(test_df)
    else: enc, dl = encode(learn), learn.dls.valid
    raw = raw_outputs(learn, enc)
    preds, targs = learn.get_preds(dl=dl)
    assert enc.n_rows == len(dl.dataset) == len(preds)
    if isinstance(learn.loss_func, CrossEntropyLossFlat):
        assert raw.shape == preds.shape and raw.shape[1] == len(learn.dls.vocab)
        raw = raw.softmax(-1)
    else:
        assert isinstance(learn.loss_func.func, nn.MSELoss)  # no activation: raw outputs are the predictions
    assert raw.shape == preds.shape
    assert torch.allclose(raw, preds, atol=1e-5, rtol=0), (raw - preds).abs().max()
    assert enc.y.shape == targs.shape and enc.y.dtype == targs.dtype
    assert torch.equal(enc.y, targs)


@pytest.mark.parametrize('name', LEARNERS)
def test_loss_scorer_matches_validate(request, name):
    learn, test_df = request.getfixturevalue(name)
    enc = encode(learn, df=test_df)
    val = learn.validate(dl=learn.dls.test_dl(test_df))
    sc = learner_scorer(learn)
    assert sc.higher_is_better is False and sc.name == 'loss'
    assert close(sc(raw_outputs(learn, enc), enc.y), val[0]), (sc(raw_outputs(learn, enc), enc.y), val[0])


METRICS = {'reg': lambda: [rmse, mae], 'clf': lambda: [accuracy, RocAucBinary()],
           'multiclass': lambda: [accuracy], 'multitarget': lambda: [rmse]}


@pytest.mark.parametrize('name', LEARNERS)
def test_metric_scorers_match_validate(request, name):
    learn, test_df = request.getfixturevalue(name)
    metrics = METRICS[name]()
    # a second Learner sharing model and dls, so the fixture learner's metrics are left alone
    other = Learner(learn.dls, learn.model, loss_func=learn.loss_func, metrics=metrics)
    val = other.validate(dl=learn.dls.test_dl(test_df))
    assert len(val) == 1 + len(metrics)
    enc = encode(learn, df=test_df)
    raw = raw_outputs(learn, enc)
    for m, v in zip(metrics, val[1:]):
        got = learner_scorer(learn, m)(raw, enc.y)
        assert close(got, v), (m, got, v)
    assert close(learner_scorer(learn)(raw, enc.y), val[0])


@pytest.mark.parametrize('name,metric', [('reg', 'rmse'), ('reg', 'mae'), ('clf', 'accuracy'), ('multiclass', 'accuracy')])
def test_metric_by_name_matches_validate(request, name, metric):
    learn, test_df = request.getfixturevalue(name)
    fn = dict(rmse=rmse, mae=mae, accuracy=accuracy)[metric]
    other = Learner(learn.dls, learn.model, loss_func=learn.loss_func, metrics=[fn])
    v = other.validate(dl=learn.dls.test_dl(test_df))[1]
    enc = encode(learn, df=test_df)
    sc = learner_scorer(learn, metric)
    assert sc.higher_is_better is (metric == 'accuracy')
    assert close(sc(raw_outputs(learn, enc), enc.y), v)


@pytest.mark.parametrize('name', ['reg', 'clf'])
def test_default_data_is_validation_set(request, name):
    learn, _ = request.getfixturevalue(name)
    fi = learn.feature_importance(n_repeats=3, seed=11, progress=False)
    assert fi.attrs['n_rows'] == len(learn.dls.valid_ds) == len(learn.dls.valid.dataset)
    assert fi.attrs['source'] == 'dls.valid'
    # the baseline is the validation loss fastai reports
    assert close(fi.attrs['baseline'], learn.validate()[0])
    fi_dl = learn.feature_importance(dl=learn.dls.valid, n_repeats=3, seed=11, progress=False)
    assert fi_dl.attrs['source'] == 'dl'
    pd.testing.assert_frame_equal(fi, fi_dl, check_exact=True)
    assert fi.attrs['repeats'] == fi_dl.attrs['repeats']
    assert fi.attrs['baseline'] == fi_dl.attrs['baseline']


def test_df_and_equivalent_test_dl_agree(reg):
    learn, test_df = reg
    a = learn.feature_importance(df=test_df, n_repeats=3, seed=4, progress=False)
    b = learn.feature_importance(dl=learn.dls.test_dl(test_df), n_repeats=3, seed=4, progress=False)
    assert a.attrs['n_rows'] == len(test_df)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a.attrs['repeats'] == b.attrs['repeats']


def test_df_index_and_extra_columns_do_not_matter(reg):
    "A string index and unrelated extra columns (same rows, same order) give exactly the same numbers."
    learn, test_df = reg
    a = learn.feature_importance(df=test_df, n_repeats=3, seed=4, progress=False)
    other = test_df.copy()
    other.index = [f'r{i}' for i in range(len(other))][::-1]
    other['comment'] = 'ignored'
    other.insert(0, 'extra_num', np.arange(len(other)) * 1.5)
    b = learn.feature_importance(df=other, n_repeats=3, seed=4, progress=False)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert set(b.feature) == RAW_COLUMNS


def test_na_indicator_is_part_of_its_column(reg):
    learn, test_df = reg
    assert 'x2_na' in learn.dls.cat_names  # FillMissing did add the indicator
    fi = learn.feature_importance(df=test_df, n_repeats=2, seed=0, progress=False)
    assert set(fi.feature) == RAW_COLUMNS and 'x2_na' not in set(fi.feature) and len(fi) == len(RAW_COLUMNS)
    row = fi.set_index('feature').loc['x2']
    assert row['columns'] == 'x2, x2_na' and row['type'] == 'continuous'
    # the encoded feature really holds both columns: the continuous x2 and the categorical x2_na
    x2 = {f.name: f for f in encode(learn, df=test_df).features}['x2']
    cats, conts = list(learn.dls.cat_names), list(learn.dls.cont_names)
    assert set(x2.columns) == {(0, cats.index('x2_na')), (1, conts.index('x2'))}




def test_na_indicator_is_permuted_with_its_column(reg):
    "In every forward pass the (x2, x2_na) pairs are the original pairs reordered: they move together."
    learn, test_df = reg
    enc = encode(learn, df=test_df)
    rec = Recording(learn.model)
    # a Learner sharing the dls and the model, whose model records its inputs; bs=n: one job per forward pass
    spy = Learner(learn.dls, rec, loss_func=learn.loss_func)
    n_repeats = 3
    fi = spy.feature_importance(df=test_df, n_repeats=n_repeats, seed=0, progress=False, bs=enc.n_rows)
    assert len(fi) == len(RAW_COLUMNS)
    ic, ix = list(learn.dls.cat_names).index('x2_na'), list(learn.dls.cont_names).index('x2')
    pairs = lambda xc, xn: sorted(zip(xn[:, ix].tolist(), xc[:, ic].tolist()))
    original = pairs(enc.x_cat, enc.x_cont)
    assert enc.x_cat[:, ic].unique().numel() == 2  # the test rows do have missing x2
    moved = 0
    for xc, xn in rec.calls:
        assert len(xc) == enc.n_rows
        assert pairs(xc, xn) == original
        x2_moved, na_moved = not torch.equal(xn[:, ix], enc.x_cont[:, ix]), not torch.equal(xc[:, ic], enc.x_cat[:, ic])
        assert x2_moved == na_moved
        moved += x2_moved
    assert moved == n_repeats


def test_exported_learner_matches_original(reg, exported_reg):
    learn, test_df = reg
    loaded, _ = exported_reg
    assert loaded is not learn and len(loaded.dls.valid_ds) == 0
    a = learn.feature_importance(df=test_df, n_repeats=3, seed=7, progress=False)
    b = loaded.feature_importance(df=test_df, n_repeats=3, seed=7, progress=False)
    assert b.attrs['n_rows'] == len(test_df)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a.attrs['baseline'] == b.attrs['baseline'] and a.attrs['repeats'] == b.attrs['repeats']


def test_exported_learner_without_df_says_pass_df(exported_reg):
    loaded, _ = exported_reg
    with pytest.raises(ValueError, match='df='):
        loaded.feature_importance(progress=False)


def test_output_table_shape_and_attrs(clf):
    learn, test_df = clf
    fi = learn.feature_importance(df=test_df, n_repeats=4, seed=3, progress=False)
    assert list(fi.columns) == ['feature', 'type', 'importance', 'std', 'ci_low', 'ci_high', 'interval', 'p_value', 'p_adjusted', 'members', 'columns',
                                'levels', 'emb_width']
    assert set(fi.interval) == {'rows (paired)'}     # the loss is a mean over rows: the interval covers the test rows
    assert fi.importance.is_monotonic_decreasing
    assert (fi.ci_low <= fi.importance).all() and (fi.importance <= fi.ci_high).all()
    t = fi.set_index('feature')
    assert t.loc['shade', 'type'] == 'categorical' and t.loc['x1', 'type'] == 'continuous'
    assert t.loc['zip', 'levels'] == 300 and t.loc['shade', 'levels'] == 4  # levels seen in training (fastai's #na# slot not counted)
    emb = dict(zip(learn.dls.cat_names, [e.embedding_dim for e in learn.model.embeds]))
    assert t.loc['zip', 'emb_width'] == emb['zip'] and pd.isna(t.loc['x1', 'emb_width'])
    a = fi.attrs
    assert a['n_repeats'] == 4 and a['seed'] == 3 and a['n_rows'] == len(test_df) and a['metric'] == 'loss'
    assert a['higher_is_better'] is False
    assert set(a['repeats']) == set(fi.feature) and all(len(v) == 4 for v in a['repeats'].values())
    for f, imp in zip(fi.feature, fi.importance):
        assert np.isclose(np.mean(a['repeats'][f]), imp)
        assert np.allclose(np.array(a['permuted_scores'][f]) - a['baseline'], a['repeats'][f])
