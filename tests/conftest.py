"""Shared, session-scoped trained learners, and `train_recipe`, the one way the tests train a learner (a `RetrainRecipe`).

Five session fixtures here (`reg`, `clf`, `multiclass`, `multitarget`, `clean`; `exported_reg` reloads `reg`), four
module fixtures in test files through `train_recipe`; with the retraining analyses' own retrains (drop-column, folds,
null importance, selection, the report's fold view) the default suite runs `Learner.fit` 69 times (counted on
2026-12-02 with a plugin that wraps `Learner.fit`). Every learner is trained inside `isolated_seed`, so training is
reproducible and leaves the global RNGs alone. Tests must not mutate these learners (the safety tests check that
`feature_importance` does not either).
"""
import contextlib
import warnings
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from fastai.tabular.all import CategoryBlock, RegressionBlock, accuracy, rmse
from fastai_featimp.all import RetrainRecipe, demo_learner, make_demo_data

warnings.filterwarnings('ignore', message='The given NumPy array is not writable')

# The models here are tiny, so extra intra-op threads buy little, and on a busy machine they spin-wait for a core:
# measured on 2 cores with other processes running, the suite took 6-10 s with 1 thread and 75-100 s with 2.
torch.set_num_threads(1)

CONTS = ['x1', 'x2', 'x3', 'x3_twin', 'noise']
CATS = ['shade', 'zip']


def train_recipe(df, cat_names, cont_names, y_names, *, valid_idx, procs=None, y_block=None, layers=(100, 50), metrics=None,
                 epochs=4, lr=1e-2, bs=256, seed=0, **learner_kwargs):
    "Train a `tabular_learner` on all of `df` by the package's one way to train, a `RetrainRecipe` (seeded, RNG states restored)."
    recipe = RetrainRecipe(df, cat_names=list(cat_names), cont_names=list(cont_names),
                           y_names=[y_names] if isinstance(y_names, str) else list(y_names), y_block=y_block, valid_idx=list(valid_idx),
                           learner_kwargs=dict(layers=list(layers), metrics=metrics, **learner_kwargs), epochs=epochs, lr=lr, bs=bs, seed=seed,
                           **({} if procs is None else dict(procs=list(procs))))
    return recipe.train()


def train_tabular(df, cat_names, cont_names, y_names, y_block, metrics, n_valid, n_test, seed=0, epochs=4, lr=1e-2):
    "Train a small `tabular_learner` on the first rows of `df` (the last `n_valid` of them validate); returns `(learn, test_df)` (the last `n_test` rows)."
    n_tv = len(df) - n_test
    learn = train_recipe(df.iloc[:n_tv].reset_index(drop=True), cat_names, cont_names, y_names, y_block=y_block, metrics=metrics,
                         valid_idx=range(n_tv - n_valid, n_tv), seed=seed, epochs=epochs, lr=lr)
    return learn, df.iloc[n_tv:].reset_index(drop=True)


@pytest.fixture(scope='session')
def reg():
    "Demo regression learner (MSE loss, `rmse` metric, 10% missing x2 -> `x2_na`) and its labelled test frame."
    return demo_learner('regression', n=6000, epochs=4, seed=0)


@pytest.fixture(scope='session')
def clf():
    "Demo binary classification learner ('yes'/'no', CrossEntropyLossFlat, `accuracy`) and its test frame."
    return demo_learner('classification', n=6000, epochs=4, seed=0)


@pytest.fixture(scope='session')
def multiclass():
    "3-class learner: the demo regression target cut at its terciles into 'low'/'mid'/'high'."
    df = make_demo_data(3000, 'regression', seed=1)
    df['y'] = pd.qcut(df['y'], 3, labels=['low', 'mid', 'high']).astype(str)
    return train_tabular(df, CATS, CONTS, 'y', CategoryBlock(), accuracy, n_valid=600, n_test=600, seed=1)


@pytest.fixture(scope='session')
def multitarget():
    "Two-target regression learner (`y_names=['y1','y2']`)."
    df = make_demo_data(3000, 'regression', seed=2)
    df = df.rename(columns={'y': 'y1'})
    df['y2'] = 2.0 * df['x3'] - df['x1'] + 0.1 * np.random.default_rng(2).normal(size=len(df))
    return train_tabular(df, CATS, CONTS, ['y1', 'y2'], RegressionBlock(), rmse, n_valid=600, n_test=600, seed=2)


@pytest.fixture(scope='session')
def clean():
    """Regression learner on demo data with no missing values (so no `_na` column) plus `x1_dup`, an exact copy of
    the driver `x1`: each raw column is exactly one encoded column (used for the sklearn comparison and groups)."""
    df = make_demo_data(6000, 'regression', seed=3, missing=0.0)
    df.insert(1, 'x1_dup', df['x1'])
    return train_tabular(df, CATS, ['x1', 'x1_dup'] + CONTS[1:], 'y', RegressionBlock(), rmse,
                         n_valid=1200, n_test=1200, seed=3)


@pytest.fixture(scope='session')
def exported_reg(reg, tmp_path_factory):
    "The demo regression learner exported and reloaded with `load_learner(..., cpu=True)` (it carries no data)."
    from fastai.learner import load_learner
    learn, test_df = reg
    path = tmp_path_factory.mktemp('export') / 'reg.pkl'
    learn.export(path)  # absolute path: `learn.path / path` is `path`
    return load_learner(path, cpu=True), test_df


class Recording(nn.Module):
    "Wraps a tabular model and records the inputs of every forward pass."
    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []
    def forward(self, x_cat, x_cont):
        self.calls.append((x_cat.clone(), x_cont.clone()))
        return self.model(x_cat, x_cont)


@contextlib.contextmanager
def evaluating(model):
    "The package's `eval_mode` (every module's flag restored afterwards) plus `torch.no_grad()`."
    from fastai_featimp.core.engine import eval_mode
    with eval_mode(model), torch.no_grad(): yield model
