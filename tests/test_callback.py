"""`FeatureImportanceCallback` (issue 23 item 1): training is unchanged by it (bit-identical weights and buffers with the
same seed, with `fit`, `fit_one_cycle` and `fine_tune`), its work leaves the global RNG states and the modules' modes
as it found them, and its history is a tidy table; its cost per epoch on the demo is measured and bounded."""
import random
import time
import numpy as np
import pandas as pd
import pytest
import torch
from fastai.tabular.all import Categorify, FillMissing, Normalize, TabularDataLoaders, rmse, tabular_learner
from fastai_featimp.all import FeatureImportanceCallback, demo_split, isolated_seed, plot_importance_history
from conftest import CATS, CONTS, train_recipe


@pytest.fixture(scope='module')
def demo():
    return demo_split(6000, 'regression', seed=0)


def _train(demo, cbs=(), how='fit_one_cycle', epochs=3, seed=0):
    "Seeded training as `train_recipe` does it (inside `isolated_seed`), by `fit`, `fit_one_cycle` or `fine_tune`."
    train_valid, _, valid_idx = demo
    with isolated_seed(seed):
        dls = TabularDataLoaders.from_df(train_valid, procs=[Categorify, FillMissing, Normalize], cat_names=list(CATS), cont_names=list(CONTS),
                                         y_names='y', valid_idx=valid_idx, bs=256)
        learn = tabular_learner(dls, layers=[100, 50], metrics=rmse, config=dict(ps=[0.1, 0.1], embed_p=0.1))   # dropout: draws from torch's RNG
        with learn.no_bar(), learn.no_logging():
            if how == 'fine_tune': learn.fine_tune(epochs, 1e-2, freeze_epochs=1, cbs=list(cbs))
            else: getattr(learn, how)(epochs, 1e-2, cbs=list(cbs))
    return learn


def _assert_same_weights(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert list(sa) == list(sb)
    assert any('running_mean' in k for k in sa)   # the model has BatchNorm statistics, and they are compared too
    for k in sa: assert torch.equal(sa[k], sb[k]), f"{k} differs"


def _rng_states():
    return random.getstate(), np.random.get_state(), torch.random.get_rng_state()


def _same_states(a, b):
    return a[0] == b[0] and all(np.array_equal(x, y) for x, y in zip(a[1], b[1])) and torch.equal(a[2], b[2])


class Spy(FeatureImportanceCallback):
    "Checks, around each of the callback's own steps, the global RNG states and every module's training flag."
    def _check(self, step):
        before, modes = _rng_states(), [m.training for m in self.learn.model.modules()]
        bn = {k: v.clone() for k, v in self.learn.model.state_dict().items()}
        step()
        assert _same_states(before, _rng_states()), "the callback changed a global RNG state"
        assert modes == [m.training for m in self.learn.model.modules()], "the callback changed a module's mode"
        assert all(torch.equal(v, self.learn.model.state_dict()[k]) for k, v in bn.items()), "the callback changed a weight or buffer"
        self.checked += 1
    def before_fit(self): self.checked = getattr(self, 'checked', 0); self._check(super().before_fit)
    def after_epoch(self): self._check(super().after_epoch)


@pytest.mark.parametrize('how', ['fit', 'fit_one_cycle', 'fine_tune'])
def test_weights_bit_identical_with_and_without_the_callback(demo, how):
    ref = _train(demo, how=how)
    cb = Spy(n_rows=500, n_repeats=2)
    learn = _train(demo, [cb], how=how)
    _assert_same_weights(ref, learn)
    n_epochs = 3 + (1 if how == 'fine_tune' else 0)
    assert cb.checked == n_epochs + (2 if how == 'fine_tune' else 1)   # each epoch, and each fit's start
    h = learn.feature_importance_history
    assert sorted(h.epoch.unique()) == list(range(n_epochs))


def test_the_weight_comparison_can_fail(demo):
    "A callback that draws once from torch's global RNG after each epoch changes the dropout masks, and so the weights."
    from fastai.callback.core import Callback
    class Draw(Callback):
        order = FeatureImportanceCallback.order
        def after_epoch(self): torch.rand(1)
    a, b = _train(demo), _train(demo, [Draw()])
    assert not all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))


def test_weights_bit_identical_through_train_recipe():
    "The package's one way to train (`RetrainRecipe`, via the conftest's `train_recipe`), with the callback passed as `cbs=`."
    from fastai_featimp.all import make_demo_data
    df = make_demo_data(2000, 'regression', seed=4)
    kw = dict(valid_idx=range(1600, 2000), epochs=3, seed=4)
    ref = train_recipe(df, CATS, CONTS, 'y', **kw)
    learn = train_recipe(df, CATS, CONTS, 'y', cbs=[FeatureImportanceCallback(n_rows=300, n_repeats=2, seed=1)], **kw)
    _assert_same_weights(ref, learn)
    assert len(learn.feature_importance_history) == 3 * 7


def test_global_rng_states_unchanged_by_the_callbacks_work(demo):
    learn = _train(demo, epochs=1)
    cb = FeatureImportanceCallback(n_rows=400, n_repeats=2)
    cb.learn = learn
    random.seed(11); np.random.seed(11); torch.manual_seed(11)
    before = _rng_states()
    cb.before_fit(); learn.epoch = 0; cb.after_epoch()
    assert _same_states(before, _rng_states())
    assert len(cb.importance_history) == 7


def test_history_is_tidy_and_reproducible(demo):
    learn = _train(demo, [FeatureImportanceCallback(n_rows=800, n_repeats=3, every=2)], epochs=4)
    h = learn.feature_importance_history
    assert isinstance(h, pd.DataFrame) and h.shape == (2 * 7, len(h.columns))
    assert list(h.columns[:7]) == ['epoch', 'feature', 'type', 'importance', 'std', 'ci_low', 'ci_high']
    assert {'p_value', 'p_adjusted', 'baseline', 'metric', 'n_rows', 'seconds'} <= set(h.columns)
    assert sorted(h.epoch.unique()) == [1, 3] and set(h.n_rows) == {800}
    assert not h.duplicated(['epoch', 'feature']).any()
    last = h[h.epoch == 3].set_index('feature').importance
    assert last.idxmax() == 'x1' and last['noise'] < 0.05 * last['x1']
    again = _train(demo, [FeatureImportanceCallback(n_rows=800, n_repeats=3, every=2)], epochs=4).feature_importance_history
    pd.testing.assert_frame_equal(h.drop(columns='seconds'), again.drop(columns='seconds'))
    ax = plot_importance_history(h)
    assert len(ax.get_legend().get_texts()) == 7
    import matplotlib.pyplot as plt; plt.close('all')


def test_scores_given_rows_and_a_metric(demo):
    _, test_df, _ = demo
    cb = FeatureImportanceCallback(df=test_df, n_rows=None, metric='rmse', n_repeats=2)
    learn = _train(demo, [cb], how='fit', epochs=2)
    h = learn.feature_importance_history
    assert set(h.n_rows) == {len(test_df)} and set(h.metric) == {'rmse'}
    assert callable(learn.feature_importance)   # the callback's name does not shadow the learner's method


def test_cost_per_epoch_on_the_demo(demo, capsys):
    "The callback's defaults (up to 2,000 rows: all 1,200 validation rows, 3 repeats): its time per epoch, and training's."
    t0 = time.perf_counter(); _train(demo, epochs=4); plain = (time.perf_counter() - t0) / 4
    cb = FeatureImportanceCallback()
    t0 = time.perf_counter(); _train(demo, [cb], epochs=4); with_cb = (time.perf_counter() - t0) / 4
    with capsys.disabled():
        print(f"\nFeatureImportanceCallback on the demo (1,200 rows, 7 features, 3 repeats): {cb.seconds_per_epoch * 1e3:.1f} ms "
              f"per epoch; an epoch of training {plain * 1e3:.0f} ms without it, {with_cb * 1e3:.0f} ms with it")
    assert cb.seconds_per_epoch < 2.0


def test_bad_arguments():
    with pytest.raises(ValueError, match='every must be an int >= 1'): FeatureImportanceCallback(every=0)
    with pytest.raises(TypeError, match='n_repeats must be an int'): FeatureImportanceCallback(n_repeats=1.5)
    with pytest.raises(TypeError, match='df must be a DataFrame'): FeatureImportanceCallback(df=[1, 2])
