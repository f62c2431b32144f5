"""polars and pyarrow frames wherever raw rows go in (issue 23 item 4): `df=`, `rows=`, `background=`, a recipe's training
rows and `test_df=`, the callback's `df=` — converted to pandas once at the boundary, with the same numbers as the same
rows in pandas. Skipped where polars / pyarrow are not installed (the oldest set's venv); `.ci/run` installs them."""
import numpy as np
import pandas as pd
import pytest
import torch
from fastai_featimp.all import (FeatureInterpretation, FeatureImportanceCallback, RetrainRecipe, as_pandas, learner_score,
                                 make_demo_data, retrain_evaluate)
from conftest import CATS, CONTS

pl = pytest.importorskip('polars')
pa = pytest.importorskip('pyarrow')

NUM = ['importance', 'std', 'ci_low', 'ci_high', 'p_value']


def _frames(df):
    "The same rows as a polars DataFrame (shade as a polars Categorical), a LazyFrame and a pyarrow Table."
    p = pl.from_pandas(df).with_columns(pl.col('shade').cast(pl.Categorical))
    return dict(polars=p, lazy=p.lazy(), arrow=pa.Table.from_pandas(df, preserve_index=False))


def test_conversion_keeps_values_and_missing(reg):
    _, test_df = reg
    for kind, f in _frames(test_df).items():
        back = as_pandas(f)
        assert isinstance(back, pd.DataFrame) and list(back.columns) == list(test_df.columns), kind
        np.testing.assert_array_equal(back.x2.isna(), test_df.x2.isna())
        np.testing.assert_array_equal(back.x1.to_numpy(), test_df.x1.to_numpy())
        assert back.shade.astype(str).tolist() == test_df.shade.tolist()


@pytest.mark.parametrize('kind', ['polars', 'lazy', 'arrow'])
def test_importance_same_numbers_as_pandas(reg, kind):
    learn, test_df = reg
    want = learn.feature_importance(test_df, n_repeats=3, seed=0, progress=False)
    got = learn.feature_importance(_frames(test_df)[kind], n_repeats=3, seed=0, progress=False)
    assert list(got.feature) == list(want.feature)
    np.testing.assert_array_equal(got[NUM].to_numpy(float), want[NUM].to_numpy(float))
    assert got.attrs['baseline'] == want.attrs['baseline']


def test_interpretation_analyses_same_numbers(clf):
    learn, test_df = clf
    a, b = FeatureInterpretation.from_learner(learn, df=test_df), FeatureInterpretation.from_learner(learn, df=_frames(test_df)['polars'])
    assert a.score() == b.score() and a.score('accuracy') == b.score('accuracy')
    pd.testing.assert_frame_equal(a.partial_dependence('x1', progress=False), b.partial_dependence('x1', progress=False))
    pd.testing.assert_frame_equal(a.partial_dependence('shade', progress=False), b.partial_dependence('shade', progress=False))
    assert np.array_equal(a.correlations().to_numpy(), b.correlations().to_numpy())
    rows = test_df.iloc[:5]
    pa_rows = a.explain(rows, n_background=30, seed=0, progress=False)
    pl_rows = a.explain(_frames(rows)['polars'], n_background=30, seed=0, progress=False)
    np.testing.assert_array_equal(pl_rows.attribution.to_numpy(), pa_rows.attribution.to_numpy())


def test_explain_rows_and_background(reg):
    learn, test_df = reg
    rows, bg = test_df.iloc[:6], test_df.iloc[100:160]
    want = learn.explain(rows, background=bg, n_background=None, seed=0, progress=False)
    for kind in ('polars', 'arrow'):
        got = learn.explain(_frames(rows)[kind], background=_frames(bg)[kind], n_background=None, seed=0, progress=False)
        np.testing.assert_array_equal(got.attribution.to_numpy(), want.attribution.to_numpy())
        assert got['value'].astype(str).tolist() == want['value'].astype(str).tolist()
    got = learn.explain(_frames(rows)['polars'], df=_frames(test_df)['polars'], seed=0, progress=False)
    ref = learn.explain(rows, df=test_df, seed=0, progress=False)
    np.testing.assert_array_equal(got.attribution.to_numpy(), ref.attribution.to_numpy())


def test_recipe_training_rows_and_test_rows():
    df = make_demo_data(1500, 'regression', seed=5)
    kw = dict(cat_names=list(CATS), cont_names=list(CONTS), y_names=['y'], valid_idx=list(range(1200, 1500)),
              learner_kwargs=dict(layers=[50, 20]), epochs=2, seed=5)
    # strings stay strings (a polars Categorical would come over as a pandas category, whose level order Categorify keeps)
    a, b = RetrainRecipe(df, **kw), RetrainRecipe(pl.from_pandas(df), **kw)
    assert isinstance(b.df, pd.DataFrame)
    la, lb = a.train(), b.train()
    for k, v in la.model.state_dict().items(): assert torch.equal(v, lb.model.state_dict()[k]), k
    test = make_demo_data(400, 'regression', seed=6)
    assert learner_score(la, test) == learner_score(lb, _frames(test)['arrow'])
    ra = retrain_evaluate(a, test, drop=['noise'])
    rb = retrain_evaluate(b, _frames(test)['polars'], drop=['noise'])
    assert ra['score'] == rb['score']
    assert isinstance(b.check_test_rows(_frames(test)['arrow']), pd.DataFrame)


def test_callback_rows_as_polars(reg):
    from fastai.tabular.all import Categorify, FillMissing, Normalize, TabularDataLoaders, tabular_learner
    from fastai_featimp.all import demo_split, isolated_seed
    train_valid, test_df, valid_idx = demo_split(2000, 'regression', seed=0)
    hist = {}
    for kind, rows in (('pandas', test_df), ('polars', _frames(test_df)['polars'])):
        with isolated_seed(0):
            dls = TabularDataLoaders.from_df(train_valid, procs=[Categorify, FillMissing, Normalize], cat_names=list(CATS),
                                             cont_names=list(CONTS), y_names='y', valid_idx=valid_idx, bs=256)
            learn = tabular_learner(dls, layers=[50, 20])
            with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(2, 1e-2, cbs=[FeatureImportanceCallback(df=rows, n_rows=200, n_repeats=2)])
        hist[kind] = learn.feature_importance_history.drop(columns='seconds')
    pd.testing.assert_frame_equal(hist['pandas'], hist['polars'])


def test_other_objects_still_refused_clearly(reg):
    learn, test_df = reg
    with pytest.raises(TypeError, match='df must be a pandas DataFrame of raw rows .or a polars DataFrame / pyarrow Table.'):
        learn.feature_importance(test_df.to_numpy())
    with pytest.raises(TypeError, match='rows must be a DataFrame of raw rows .pandas, polars or a pyarrow Table., got a polars Series'):
        learn.explain(pl.Series('x1', [1.0]))
