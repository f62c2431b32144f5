"Issue 20 items 12, 11, 3, 15, 23: retrains rebuild the learner's architecture and target, caches keyed on a fingerprint, Ray retries."
import warnings
import numpy as np
import pandas as pd
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
        warnings.simplefilter('error', UserWarning)   # everything is readable from a TabularModel: none of ours
        warnings.filterwarnings('ignore', message='.*not writable.*')   # torch's, on reading a DataFrame (not about readability)
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


# 3. caches are keyed on a fingerprint of everything that changes the result, refused naming what differs
@pytest.fixture(scope='module')
def recipe(small):
    return RetrainRecipe(small.iloc[:240].reset_index(drop=True), CATS, CONTS, ['y'], y_block=RegressionBlock(),
                         learner_kwargs=dict(layers=[8]), epochs=1, seed=0)


def test_cache_keyed_on_fingerprint(recipe, small, tmp_path):
    import dataclasses
    from fastai_featimp.all import drop_column_importance, null_importance
    test_df = small.iloc[240:].reset_index(drop=True)
    kw = dict(cols=['x1'], n_seeds=2, progress=False, verbose=False)
    cache = tmp_path / 'drop.json'
    a = drop_column_importance(recipe, test_df, cache=cache, metric=lambda p, t: float(((p - t) ** 2).mean()), **kw)
    b = drop_column_importance(recipe, test_df, cache=cache, metric=lambda p, t: float(((p - t) ** 2).mean()), **kw)
    assert a.equals(b)   # the same settings (an equal lambda): resumed
    other_rows = test_df.assign(x1=test_df.x1[::-1].to_numpy())   # same length, other content
    with pytest.raises(ValueError, match='the test rows differ'):
        drop_column_importance(recipe, other_rows, cache=cache, metric=lambda p, t: float(((p - t) ** 2).mean()), **kw)
    with pytest.raises(ValueError, match='the metric differs'):   # another lambda, the same name '<lambda>'
        drop_column_importance(recipe, test_df, cache=cache, metric=lambda p, t: float((p - t).abs().mean()), **kw)
    wider = dataclasses.replace(recipe, learner_kwargs=dict(layers=[16]))
    with pytest.raises(ValueError, match=r'the recipe differs: layers \(\[8\] then, \[16\] now\)'):
        drop_column_importance(wider, test_df, cache=cache, metric=lambda p, t: float(((p - t) ** 2).mean()), **kw)
    shifted = dataclasses.replace(recipe, df=recipe.df.assign(y=recipe.df.y + 1))   # same rows count, other content
    with pytest.raises(ValueError, match='the recipe differs: training rows'):
        drop_column_importance(shifted, test_df, cache=cache, metric=lambda p, t: float(((p - t) ** 2).mean()), **kw)
    null_cache = tmp_path / 'null.json'
    nkw = dict(n_null=2, n_repeats=1, progress=False, cache=null_cache)
    null_importance(recipe, test_df, **nkw)
    with pytest.raises(ValueError, match='the test rows differ'): null_importance(recipe, other_rows, **nkw)
    with pytest.raises(ValueError, match='the recipe differs: layers'): null_importance(wider, test_df, **nkw)


# 15. a cache file that parses but holds a null or string score is refused with the cache's message, naming the key
@pytest.mark.parametrize('bad', [None, 'abc', float('nan'), [1.0]])
def test_cache_bad_scores(recipe, small, tmp_path, bad):
    import json
    from fastai_featimp.all import drop_column_importance, null_importance
    test_df = small.iloc[240:].reset_index(drop=True)
    cache = tmp_path / 'drop.json'
    kw = dict(cols=['x1'], n_seeds=2, progress=False, verbose=False, cache=cache)
    drop_column_importance(recipe, test_df, **kw)
    d = json.loads(cache.read_text()); d['scores']['full@0'] = bad; cache.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"cache .* holds a bad result for 'full@0'"): drop_column_importance(recipe, test_df, **kw)
    null_cache = tmp_path / 'null.json'
    nkw = dict(n_null=2, n_repeats=1, progress=False, cache=null_cache)
    null_importance(recipe, test_df, **nkw)
    d = json.loads(null_cache.read_text()); d['scores']['null1']['x1'] = bad; null_cache.write_text(json.dumps(d))
    with pytest.raises(ValueError, match=r"cache .* holds a bad result for 'null1': feature 'x1'"): null_importance(recipe, test_df, **nkw)


# 23. select_features resumes from a cache like drop_column_importance
def test_select_features_cache(recipe, small, tmp_path):
    from fastai_featimp.all import select_features
    test_df = small.iloc[240:].reset_index(drop=True)
    kw = dict(n_seeds=2, n_repeats=1, max_drops=1, progress=False)
    first = select_features(recipe, test_df, cache=tmp_path / 'sel.json', **kw)
    calls = []
    orig = RetrainRecipe.train
    RetrainRecipe.train = lambda self, *a, **k: calls.append(1) or orig(self, *a, **k)
    try: again = select_features(recipe, test_df, cache=tmp_path / 'sel.json', **kw)
    finally: RetrainRecipe.train = orig
    assert calls == [] and again.kept == first.kept
    pd.testing.assert_frame_equal(again.history, first.history)
    with pytest.raises(ValueError, match='the test rows differ'):
        select_features(recipe, test_df.assign(x1=test_df.x1[::-1].to_numpy()), cache=tmp_path / 'sel.json', **kw)


# 23. Ray tasks retry system failures only, and ask for a GPU when the recipe trains on one
def test_ray_task_options(recipe):
    pytest.importorskip('ray')
    import dataclasses
    from fastai_featimp.retrain.executor import RetrainExecutor
    ex = RetrainExecutor('ray')
    assert ex.ray_options((recipe,)) == dict(num_cpus=1, num_gpus=0, max_retries=3, retry_exceptions=False)
    assert ex.ray_options((dataclasses.replace(recipe, device='cuda'),))['num_gpus'] == 1
    with pytest.raises(ValueError, match="device must be None, 'cpu' or a cuda device"): dataclasses.replace(recipe, device='gpu0').check()


# 23. a worker node that dies mid-run: its retrains are rerun elsewhere and the run gives the in-process numbers
def test_drop_column_survives_a_dead_node(tmp_path):
    import threading
    import time
    ray = pytest.importorskip('ray')
    from ray.cluster_utils import Cluster
    from fastai_featimp.all import drop_column_importance
    df = make_demo_data(5000, 'regression', seed=7)
    recipe = RetrainRecipe(df.iloc[:4000].reset_index(drop=True), CATS, CONTS + ['x3_twin', 'noise'], ['y'], y_block=RegressionBlock(),
                           learner_kwargs=dict(layers=[64, 32]), epochs=3, seed=0)   # each retrain takes a few seconds
    test_df = df.iloc[4000:].reset_index(drop=True)
    kw = dict(cols=['x1', 'x2', 'noise', 'zip'], n_seeds=2, progress=False, verbose=False)
    local = drop_column_importance(recipe, test_df, **kw)
    if ray.is_initialized(): ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args=dict(num_cpus=1, include_dashboard=False))
    worker = cluster.add_node(num_cpus=2)
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        cache, out = tmp_path / 'drop.json', {}
        def run():
            try: out['table'] = drop_column_importance(recipe, test_df, executor='ray', cache=cache, **kw)
            except Exception as e: out['error'] = e
        t = threading.Thread(target=run); t.start()
        deadline = time.time() + 120
        while not cache.exists() and t.is_alive() and time.time() < deadline: time.sleep(0.05)   # the first result is in: others run on the worker
        assert t.is_alive(), out
        cluster.remove_node(worker)
        t.join(300)
        assert 'error' not in out, out.get('error')
        pd.testing.assert_frame_equal(local, out['table'], check_exact=False, rtol=1e-6)
    finally:
        ray.shutdown(); cluster.shutdown()
