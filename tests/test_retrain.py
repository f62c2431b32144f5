"""Embedding-size awareness and drop-column importance (issue 4): the fast variant of the notebook's retraining runs,
reproducibility, errors before any training, and that the original learner is untouched."""
import numpy as np
import pytest
import torch

from fastai_featimp.all import demo_learner, make_demo_data
from fastai_featimp.all import (RetrainRecipe, drop_column_importance, embedding_report, embedding_size_comparison,
                                    learner_score)


@pytest.fixture(scope='module')
def demo_recipe():
    learn, test_df = demo_learner('regression', n=5000, epochs=3, seed=0)
    train_df = make_demo_data(5000, 'regression', seed=0).iloc[:4000]
    return learn, test_df, RetrainRecipe.from_learner(learn, train_df, epochs=3)


def test_irrelevant_high_cardinality_categorical_is_not_above_the_noise_floor(demo_recipe):
    learn, test_df, recipe = demo_recipe
    state = {k: v.clone() for k, v in learn.model.state_dict().items()}
    dc = drop_column_importance(recipe, test_df, cols=['x1', 'zip', 'noise'], n_seeds=2, progress=False, verbose=False)
    d = dc.set_index('feature')
    assert d.loc['x1', 'above_noise'] and d.loc['x1', 'z'] > 5
    assert not d.loc['zip', 'above_noise'] and not d.loc['noise', 'above_noise']
    # while plain permutation gives the 39-wide zip embedding a non-negative share, drop-column sees no need for it
    assert dc.attrs["n_retrains"] == 8 and len(dc.attrs["full_scores"]) == 2   # (1 full + 3 drops) x 2 seeds
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in state.items())   # the original is untouched


def test_retraining_is_reproducible_and_respects_widths(demo_recipe):
    _, test_df, recipe = demo_recipe
    a, b = recipe.train(drop=['noise'], emb_cap=5), recipe.train(drop=['noise'], emb_cap=5)
    assert all(torch.equal(v, b.model.state_dict()[k]) for k, v in a.model.state_dict().items())
    assert [e.embedding_dim for e in a.model.embeds] == [4, 5, 3]            # shade (rule: 4), zip capped, x2_na
    assert 'noise' not in a.dls.cont_names
    assert learner_score(a, test_df) == learner_score(b, test_df)
    before = torch.random.get_rng_state()
    recipe.train(drop=['noise'], seed=3)
    assert torch.equal(before, torch.random.get_rng_state())


def test_errors_come_before_any_training(demo_recipe, monkeypatch):
    learn, test_df, recipe = demo_recipe
    calls = []
    monkeypatch.setattr(RetrainRecipe, 'train', lambda self, *a, **k: calls.append(1))
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['nope'\]"):
        drop_column_importance(recipe, test_df, cols=['nope'])
    with pytest.raises(ValueError, match=r"test_df lacks column\(s\) \['y'\]"):
        drop_column_importance(recipe, test_df.drop(columns='y'))
    bad = RetrainRecipe.from_learner(learn, recipe.df.drop(columns=['x1']))
    with pytest.raises(ValueError, match=r"the recipe's df lacks column\(s\) \['x1'\]"):
        drop_column_importance(bad, test_df)
    with pytest.raises(ValueError, match=r"the recipe's df lacks column\(s\) \['x1'\]"):
        embedding_size_comparison(bad, test_df)
    with pytest.raises(ValueError, match=r'n_seeds \(the noise floor needs a spread of at least 2 retrains\) must be an int >= 2'):
        drop_column_importance(recipe, test_df, n_seeds=1)
    with pytest.raises(ValueError, match='valid_idx must be'):
        RetrainRecipe.from_learner(learn, recipe.df, valid_idx=[10**6]).check()
    assert calls == []


def test_custom_train_fn_gets_the_columns_and_widths(demo_recipe):
    learn, test_df, recipe = demo_recipe
    seen = {}
    def train_fn(df, cat_names, cont_names, emb_szs, seed):
        seen.update(cats=cat_names, conts=cont_names, emb=emb_szs, seed=seed)
        return learn
    r = RetrainRecipe(recipe.df, recipe.cat_names, recipe.cont_names, recipe.y_names, train_fn=train_fn)
    assert r.train(drop=['x1'], emb_equal=6, seed=4) is learn
    assert seen == dict(cats=['shade', 'zip'], conts=['x2', 'x3', 'x3_twin', 'noise'], emb={'shade': 6, 'zip': 6}, seed=4)


def test_embedding_report_columns(demo_recipe):
    learn, test_df, _ = demo_recipe
    fi = learn.feature_importance(df=test_df, seed=0, progress=False)
    er = embedding_report(fi).set_index('feature')
    assert list(er.index) == [f for f in fi.feature if f in ('shade', 'zip')]
    med = fi[fi['type'] == 'continuous'].importance.median()
    np.testing.assert_allclose(er.vs_median_continuous, er.importance / med)
    np.testing.assert_allclose(er.importance_per_dim, er.importance / er.emb_width)
