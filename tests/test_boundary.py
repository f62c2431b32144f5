"""No silent wrong numbers: one test per bug that real data found (issue 11), each asserting the fixed behaviour —
the right number, or a `ValueError`/`TypeError` that names the column or argument."""
import io
import warnings
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from fastai.tabular.all import (TabularDataLoaders, tabular_learner, Categorify, FillMissing, Normalize, RocAucBinary, accuracy)
from conftest import train_recipe
from fastai_featimp.all import (FeatureInterpretation, LearnerSpec, RetrainRecipe, isolated_seed, make_demo_data,
                                permutation_importance, feature_sensitivity, derived_generator)


def fi(learn, df, **kw): return learn.feature_importance(df=df, n_repeats=2, seed=0, progress=False, **kw)


# 1. pandas `category` columns are encoded by value, whatever their categories
def test_category_dtypes_encode_by_value(clf):
    learn, test_df = clf
    base = fi(learn, test_df, metric='accuracy')
    for other in (test_df.assign(shade=pd.Categorical(test_df.shade, categories=['red', 'grey', 'green', 'blue'])),
                  test_df.astype({'shade': 'category', 'zip': 'category'}),
                  test_df.assign(y=pd.Categorical(test_df.y, categories=['yes', 'no']))):
        got = fi(learn, other, metric='accuracy')
        pd.testing.assert_frame_equal(got, base)
        assert got.attrs['baseline'] == base.attrs['baseline'] > 0.8   # a flipped target would give ~0.13


# 2. a categorical trained on strings comes back from a CSV file as numbers: converted back, and said so
def test_csv_round_trip_is_reconciled(months):
    learn, test_df = months
    from_csv = pd.read_csv(io.StringIO(test_df.to_csv(index=False)))
    assert from_csv.month.dtype.kind == 'i'
    a, b = fi(learn, test_df), fi(learn, from_csv)
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=1e-6)
    assert any("'month'" in n for n in b.attrs['data_notes'])


@pytest.fixture(scope='module')
def months():
    df = make_demo_data(3000, 'regression', seed=5)
    df['month'] = [f'{m:02d}' for m in np.random.default_rng(0).integers(1, 13, len(df))]
    df['y'] = df.y + (df.month.astype(int) % 3)
    learn = train_recipe(df.iloc[:2400], ['month', 'shade'], ['x1', 'x2', 'x3'], 'y', valid_idx=range(2000, 2400), layers=[32], epochs=2)
    return learn, df.iloc[2400:].reset_index(drop=True)


# 3. RetrainRecipe.from_learner rebuilds the same network when the learner has y_range
def test_recipe_keeps_layers_with_y_range(reg):
    learn, _ = reg
    with isolated_seed(0): yr = tabular_learner(learn.dls, layers=[200, 100], y_range=(-6, 6))   # untrained, on the fixture's dls: no recipe needed
    r = RetrainRecipe.from_learner(yr, make_demo_data(500, seed=1))
    assert r.learner_kwargs['layers'] == [200, 100] and r.learner_kwargs['y_range'] == (-6.0, 6.0)


# 4. NaN tables without a word
def test_no_nan_tables(clf, reg):
    learn, test_df = clf
    with pytest.raises(ValueError, match="column 'x1' has 1 infinite"): fi(learn, test_df.assign(x1=np.where(test_df.index == 3, np.inf, test_df.x1)))
    with pytest.raises(ValueError, match=r"column\(s\) \['x1'\] hold values too large"): fi(learn, test_df.assign(x1=np.where(test_df.index == 3, 1e300, test_df.x1)))
    one_class = test_df[test_df.y == 'yes']
    with pytest.raises(ValueError, match="metric 'roc_auc_score' (failed|returned nan)"): fi(learn, one_class, metric=RocAucBinary())
    with pytest.raises(ValueError, match="returned nan"):
        fi(learn, test_df, metric=lambda p, t: torch.tensor(float('nan')), higher_is_better=True)
    flaky = iter([0.5, 0.5, float('inf')] * 10)
    with pytest.raises(ValueError, match='returned inf'):
        fi(learn, test_df, metric=lambda p, t: next(flaky), higher_is_better=True)
    X = torch.randn(50, 3); X[4, 2] = float('nan')
    with pytest.raises(ValueError, match=r'NaN or infinite value\(s\) in column\(s\) \[2\]'): permutation_importance(lambda x: x.sum(1), X, torch.zeros(50))
    for bad in (float('inf'), float('nan')):
        with pytest.raises(ValueError, match='noise_scale must be a finite number'): feature_sensitivity(lambda x: x.sum(1), torch.randn(50, 3), method='noise', noise_scale=bad)
    rl, rt = reg
    with pytest.raises(ValueError, match='infinite'): rl.partial_dependence('x1', df=rt, grid=[0.0, np.inf])


# 5. meaningless numbers become errors
def test_meaningless_numbers_are_errors(reg, clf):
    learn, test_df = reg
    with pytest.raises(ValueError, match="'accuracy' is a classification metric but this learner does regression"): fi(learn, test_df, metric='accuracy')
    with pytest.raises((TypeError, ValueError), match='holds booleans, but the learner is a regression model'): fi(learn, test_df.assign(y=test_df.y > 0))
    with pytest.raises(ValueError, match=r'needs at least 2'): fi(learn, test_df.iloc[:1])
    with pytest.raises(ValueError, match='max_rows must be an int >= 2'): fi(learn, test_df, max_rows=1)
    cl, ct = clf
    with pytest.raises(ValueError, match="never saw in training"): fi(cl, ct.assign(y=(ct.y == 'yes').astype(float)))


# 6. conditional permutation and noise sensitivity keep the subset promise
def test_subset_promise(clf):
    learn, test_df = clf
    it = FeatureInterpretation.from_learner(learn, df=test_df)
    full = it.importance(conditional=True, seed=0, progress=False).set_index('feature')
    alone = it.importance(conditional=True, cols=['x3_twin'], seed=0, progress=False).set_index('feature')
    assert alone.loc['x3_twin', 'importance'] == full.loc['x3_twin', 'importance']
    s_full = it.sensitivity(method='noise', seed=0, progress=False).set_index('feature')
    s_alone = it.sensitivity(method='noise', cols=['x1'], seed=0, progress=False).set_index('feature')
    assert s_alone.loc['x1', 'sensitivity'] == s_full.loc['x1', 'sensitivity']


# 7. seeds that differ only above bit 32 give different tables
def test_high_seed_bits_count(reg):
    learn, test_df = reg
    tabs = [fi_seed(learn, test_df.iloc[:300], s).importance.to_numpy() for s in (0, 2**32, 2**63, 2**64 + 5)]
    assert all(not np.array_equal(tabs[i], tabs[j]) for i in range(4) for j in range(i))
    assert not torch.equal(torch.randperm(30, generator=derived_generator(0, 'x')), torch.randperm(30, generator=derived_generator(2**32, 'x')))


def fi_seed(learn, df, seed): return learn.feature_importance(df=df, n_repeats=2, seed=seed, progress=False)


# 8. a classifier whose custom loss has no activation reports probabilities, and says how it got them
def test_custom_loss_without_activation_reports_probabilities(clf):
    learn, test_df = clf
    plain = tabular_learner(learn.dls, layers=[100, 50], loss_func=nn.CrossEntropyLoss())   # the fixture's weights under another loss: not a training
    plain.model.load_state_dict(learn.model.state_dict())
    with pytest.warns(UserWarning, match='has no `activation`'):
        spec = LearnerSpec.from_learner(plain)
    assert spec.activation_name == 'softmax'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        a = plain.partial_dependence('x1', df=test_df, grid_resolution=4, progress=False)
    b = learn.partial_dependence('x1', df=test_df, grid_resolution=4, progress=False)
    np.testing.assert_allclose(a.yes, b.yes, atol=1e-6)
    assert a.yes.between(0, 1).all()


# crashes that became clear errors, or answers
def test_explain_without_continuous_or_categorical_columns():
    df = make_demo_data(1500, 'regression', seed=7, missing=0.0)
    for cats, conts in ((['shade', 'zip'], []), ([], ['x1', 'x3'])):
        with isolated_seed(0):
            dls = TabularDataLoaders.from_df(df.iloc[:1200], procs=[Categorify, FillMissing, Normalize], cat_names=list(cats),
                                             cont_names=list(conts), y_names='y', valid_idx=list(range(1000, 1200)), bs=128)
            learn = tabular_learner(dls, layers=[16])   # untrained: Shapley's additivity holds for any weights
        sv = learn.explain(df.iloc[1200:1203], df=df.iloc[1200:], n_background=20, seed=0, progress=False)
        per = sv.groupby('row')
        np.testing.assert_allclose(per.attribution.sum(), per.prediction.first() - per.base_value.first(), atol=1e-9)
        assert set(sv.feature) == set(cats) | set(conts)


def test_label_free_analyses_ignore_an_unusable_target(clf):
    learn, test_df = clf
    odd = test_df.assign(y='not a label')
    assert learn.partial_dependence('x1', df=odd, grid_resolution=3, progress=False).shape == (3, 2)
    assert len(learn.feature_sensitivity(df=odd, seed=0, progress=False)) == 7
    assert len(learn.ale('x1', df=odd)) > 2
    with pytest.raises(ValueError, match="labels cannot be used: target column 'y' has values the learner never saw"): fi(learn, odd)


def test_metric_names_as_users_write_them(clf, reg):
    learn, test_df = clf
    for m in ('RocAucBinary', 'F1Score', 'BalancedAccuracy', 'accuracy', RocAucBinary, accuracy):
        t = fi(learn, test_df, metric=m)
        assert t.attrs['higher_is_better'] and np.isfinite(t.importance).all(), m
    rl, rt = reg
    assert fi(rl, rt, metric='R2Score').attrs['higher_is_better']
    with pytest.warns(UserWarning, match='pass higher_is_better=False'):
        fi(rl, rt, metric=lambda p, t: ((p.flatten() - t.flatten()) ** 2).mean())
