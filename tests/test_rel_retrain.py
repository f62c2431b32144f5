"Issue 20 items 12, 11, 3, 15, 23: retrains rebuild the learner's architecture and target, caches keyed on a fingerprint, Ray retries."
import warnings
import numpy as np
import torch
import pytest
from torch import nn
from fastai.tabular.all import RegressionBlock, tabular_config
from fastai_featimp.all import RetrainRecipe, make_demo_data
from conftest import train_recipe

CATS, CONTS = ['shade', 'zip'], ['x1', 'x2', 'x3']


@pytest.fixture(scope='module')
def small():
    return make_demo_data(300, 'regression', seed=5)


def structure(model):
    return [type(m).__name__ for m in model.modules()], sum(p.numel() for p in model.parameters()), str(model)


# 12. from_learner rebuilds the learner's architecture (emb_szs, tabular_config, y_range, layers)
@pytest.mark.parametrize('kw', [
    dict(),
    dict(emb_szs={'shade': 3, 'zip': 7}, config=tabular_config(ps=[0.1, 0.2], embed_p=0.1)),
    dict(config=tabular_config(use_bn=False, bn_final=True)),
    dict(config=tabular_config(bn_final=True, bn_cont=False, lin_first=False, act_cls=nn.LeakyReLU(0.2))),
    dict(y_range=(-3.0, 3.0)),
    dict(layers=[]),
    dict(layers=[], config=tabular_config(bn_final=True)),
], ids=['default', 'emb-ps-embed_p', 'no-bn-bn_final', 'bn_cont-lin_first-act', 'y_range', 'no-layers', 'no-layers-bn_final'])
def test_from_learner_keeps_architecture(small, kw):
    kw = dict(dict(layers=[20, 10]), **kw)
    learn = train_recipe(small, CATS, CONTS, 'y', valid_idx=range(240, 300), y_block=RegressionBlock(), epochs=1, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter('error')   # everything is readable from a TabularModel: no warning
        again = RetrainRecipe.from_learner(learn, small, epochs=1, valid_idx=list(range(240, 300))).train()
    a, b = structure(learn.model), structure(again.model)
    assert a[0] == b[0] and a[1] == b[1] and a[2] == b[2]
    assert [m.p for m in learn.model.modules() if isinstance(m, nn.Dropout)] == [m.p for m in again.model.modules() if isinstance(m, nn.Dropout)]


def test_from_learner_warns_for_unreadable(small):
    learn = train_recipe(small, CATS, CONTS, 'y', valid_idx=range(240, 300), y_block=RegressionBlock(), epochs=1, layers=[8])
    class Wrapped(nn.Module):
        def __init__(self, m): super().__init__(); self.m = m
        def forward(self, *x): return self.m(*x)
    learn.model = Wrapped(learn.model)
    with pytest.warns(UserWarning, match='cannot read the architecture .* Wrapped'):
        r = RetrainRecipe.from_learner(learn, small)
    assert 'layers' not in r.learner_kwargs   # unread: tabular_learner's default, as the warning says


# 11. from_learner on a multi-label learner builds a multi-label recipe (not a regression one)
def test_from_learner_multilabel(small):
    from fastai.tabular.all import MultiCategoryBlock
    from fastai_featimp.all import LearnerSpec, retrain_evaluate
    df = small.assign(a=small.x1 > 0, b=small.x3 > 0.5, c=small.shade == 'grey')
    learn = train_recipe(df, CATS, CONTS, ['a', 'b', 'c'], valid_idx=range(240, 300), epochs=1, layers=[8],
                         y_block=MultiCategoryBlock(encoded=True, vocab=['a', 'b', 'c']))
    assert LearnerSpec.from_learner(learn).task == 'multilabel'
    recipe = RetrainRecipe.from_learner(learn, df, epochs=1, valid_idx=list(range(240, 300)))
    again = recipe.train()
    assert list(again.dls.vocab) == ['a', 'b', 'c'] and LearnerSpec.from_learner(again).task == 'multilabel'
    assert 'BCEWithLogits' in str(again.loss_func)
    assert all(torch.equal(x, y) for x, y in zip(learn.model.state_dict().values(), again.model.state_dict().values()))
    out = retrain_evaluate(recipe, df.iloc[240:].reset_index(drop=True))
    assert np.isfinite(out['score']) and out['higher_is_better'] is False
