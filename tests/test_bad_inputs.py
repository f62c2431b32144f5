"""Bad inputs fail early with a ValueError/TypeError whose message names the problem."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset, DataLoader as TorchDataLoader
from fastai.tabular.all import Learner, DataLoaders, MSELossFlat
from fastai_featimp.all import encode


def fi(learn, **kw):
    return learn.feature_importance(progress=False, n_repeats=kw.pop('n_repeats', 1), **kw)


def test_unknown_column_in_cols(reg):
    with pytest.raises(ValueError, match=r"unknown column\(s\) in cols \['nope'\]"): fi(reg[0], cols=['x1', 'nope'])
    # the `_na` indicator is part of x2, not a feature of its own
    with pytest.raises(ValueError, match=r"unknown column\(s\) in cols \['x2_na'\]"): fi(reg[0], cols=['x2_na'])


def test_unknown_group_member(reg):
    with pytest.raises(ValueError, match=r"unknown group member\(s\) \['nope'\]"): fi(reg[0], groups=[['x1', 'nope']])
    with pytest.raises(ValueError, match=r"unknown group member\(s\) \['nope'\]"): fi(reg[0], groups={'g': ['nope']})


def test_column_in_two_groups(reg):
    with pytest.raises(ValueError, match="'x1' is in two groups"): fi(reg[0], groups=[['x1', 'x2'], ['x3', 'x1']])
    with pytest.raises(ValueError, match="'x3' is in two groups"): fi(reg[0], groups={'a': ['x3', 'x2'], 'b': ['x3']})


def test_empty_group(reg):
    with pytest.raises(ValueError, match='is empty'): fi(reg[0], groups=[[]])
    with pytest.raises(ValueError, match="group 'g' is empty"): fi(reg[0], groups={'g': []})


def test_other_bad_groups_and_cols(reg):
    with pytest.raises(ValueError, match='names a column twice'): fi(reg[0], groups=[['x1', 'x1']])
    with pytest.raises(ValueError, match="group name 'x1' is also a feature's name"): fi(reg[0], groups={'x1': ['x2', 'x3']})
    with pytest.raises(ValueError, match='nothing to score'): fi(reg[0], cols=[])
    with pytest.raises(TypeError, match='groups must be a list'): fi(reg[0], groups=5)


def test_empty_dataframe(reg):
    learn, test_df = reg
    with pytest.raises(ValueError, match='df is empty'): fi(learn, df=test_df.iloc[:0])


def test_dataframe_without_target(reg):
    learn, test_df = reg
    with pytest.raises(ValueError, match=r"no target column\(s\) \['y'\]"): fi(learn, df=test_df.drop(columns='y'))


def test_unlabelled_dataloader(reg):
    learn, test_df = reg
    dl = learn.dls.test_dl(test_df.drop(columns='y'))
    with pytest.raises(ValueError, match=r"no target column\(s\) \['y'\]"): fi(learn, dl=dl)


def test_dataframe_missing_an_input_column(reg):
    learn, test_df = reg
    with pytest.raises(ValueError, match=r"lacks the input column\(s\) \['x3_twin'\]"):
        fi(learn, df=test_df.drop(columns='x3_twin'))
    with pytest.raises(ValueError, match=r"lacks the input column\(s\) \['zip'\]"): fi(learn, df=test_df.drop(columns='zip'))


def test_not_a_dataframe(reg):
    learn, test_df = reg
    with pytest.raises(TypeError, match='df must be a pandas DataFrame'): fi(learn, df=test_df.to_numpy())


@pytest.mark.parametrize('n,exc,msg', [(0, ValueError, 'n_repeats must be an int >= 1, got 0'), (-2, ValueError, 'n_repeats must be an int >= 1'),
                                       (2.5, TypeError, 'n_repeats must be an int'), (True, TypeError, 'n_repeats must be an int'),
                                       ('3', TypeError, 'n_repeats must be an int')], ids=['0', '-2', '2.5', 'True', "'3'"])
def test_bad_n_repeats(reg, n, exc, msg):
    with pytest.raises(exc, match=msg): fi(reg[0], n_repeats=n)


def test_bad_seed_and_max_rows(reg):
    with pytest.raises(TypeError, match='seed must be an int >= 0 or None'): fi(reg[0], seed='a')
    with pytest.raises(TypeError, match='seed must be an int >= 0 or None'): fi(reg[0], seed=1.0)
    with pytest.raises(ValueError, match='max_rows must be an int >= 2'): fi(reg[0], max_rows=0)


def synthetic_dls():
    ds = TensorDataset(torch.randn(32, 2), torch.randn(32, 1))
    return DataLoaders(TorchDataLoader(ds, batch_size=8), TorchDataLoader(ds, batch_size=8))


def test_non_tabular_learner(reg):
    learn = Learner(synthetic_dls(), nn.Linear(2, 1), loss_func=MSELossFlat())
    with pytest.raises(TypeError, match='needs a tabular learner'): fi(learn)
    with pytest.raises(TypeError, match='needs a tabular learner'): fi(learn, df=reg[1])
    with pytest.raises(TypeError, match='expected a fastai Learner'): encode(nn.Linear(2, 1))


def test_non_tabular_dataloader(reg):
    learn, _ = reg
    with pytest.raises(TypeError, match='dl must be a tabular DataLoader'): fi(learn, dl=synthetic_dls().train)


def test_exported_learner_without_data(exported_reg):
    loaded, _ = exported_reg
    with pytest.raises(ValueError, match=r'no rows.*pass `df=`'): fi(loaded)
    with pytest.raises(ValueError, match=r'pass `df=`'): fi(loaded, dl=loaded.dls.valid)


def test_unknown_metric(reg, clf):
    with pytest.raises(ValueError, match="unknown metric 'no_such_metric'"): fi(reg[0], metric='no_such_metric')
    with pytest.raises(ValueError, match="unknown metric 'Acuracy'"): fi(clf[0], metric='Acuracy')
    assert fi(clf[0], metric='Accuracy').attrs['metric'] == 'accuracy'   # fastai names, any case
    with pytest.raises(TypeError, match='metric must be a callable'): fi(reg[0], metric=5)


@pytest.mark.parametrize('name,new', [('clf', 'maybe'), ('multiclass', 'huge')])
def test_unseen_target_value(request, name, new):
    learn, test_df = request.getfixturevalue(name)
    df = test_df.copy()
    df.loc[[3, 7], 'y'] = new
    with pytest.raises(ValueError, match=rf"never saw in training: \['{new}'\]"): fi(learn, df=df)


def test_missing_target_value(reg):
    learn, test_df = reg
    df = test_df.copy()
    df.loc[5, 'y'] = np.nan
    with pytest.raises(ValueError, match="target column 'y' has 1 missing value"): fi(learn, df=df)


def test_nan_in_continuous_column_without_nans_in_training(reg):
    learn, test_df = reg
    assert 'x1_na' not in learn.dls.cat_names  # x1 had no missing values in training
    df = test_df.copy()
    df.loc[2, 'x1'] = np.nan
    with pytest.raises(ValueError, match=r"column 'x1' has 1 missing value\(s\), but the learner's FillMissing saw none in training"): fi(learn, df=df)


def test_unseen_categorical_level_becomes_na_code(reg):
    "A level never seen in training is encoded as fastai encodes it: #na#, code 0; the call does not raise."
    learn, test_df = reg
    df = test_df.copy()
    rows = [0, 4, 9]
    df.loc[rows, 'shade'] = 'purple'
    df.loc[rows, 'zip'] = 'z_never_seen'
    enc = encode(learn, df=df)
    cats = list(learn.dls.cat_names)
    for c in ('shade', 'zip'):
        assert (enc.x_cat[rows, cats.index(c)] == 0).all()
        assert learn.dls.classes[c][0] == '#na#'
    assert torch.equal(enc.x_cat, torch.tensor(learn.dls.test_dl(df).dataset.cats.to_numpy()).long())
    out = fi(learn, df=df, n_repeats=2, seed=0)
    assert len(out) == 7 and np.isfinite(out.importance).all() and out.attrs['n_rows'] == len(df)


def test_both_df_and_dl(reg):
    learn, test_df = reg
    with pytest.raises(ValueError, match='either df or dl, not both'): fi(learn, df=test_df, dl=learn.dls.valid)
