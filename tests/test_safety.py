"""`feature_importance` leaves everything as it found it: the model (weights, BatchNorm statistics, train/eval
flags, device), the learner's dls/metrics/loss, the caller's DataFrame and the global random number generators,
also when the call fails or is interrupted."""
import random
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from fastai_featimp.all import encode


def snapshot(learn):
    m = learn.model
    return dict(model=m, state={k: v.detach().clone() for k, v in m.state_dict().items()},
                flags=[(n, mod.training) for n, mod in m.named_modules()],
                n_bn_tracked={k: int(v) for k, v in m.state_dict().items() if k.endswith('num_batches_tracked')},
                device=next(m.parameters()).device, dls=learn.dls, train=learn.dls.train, valid=learn.dls.valid,
                metrics=learn.metrics, metric_items=list(learn.metrics), loss_func=learn.loss_func,
                cbs=list(learn.cbs), opt=learn.opt, valid_items=learn.dls.valid_ds.items.copy(deep=True),
                grad=torch.is_grad_enabled())


def assert_unchanged(learn, s):
    m = learn.model
    assert m is s['model']
    state = m.state_dict()
    assert list(state) == list(s['state'])
    assert s['n_bn_tracked'], "the tabular model has BatchNorm layers"
    for k, v in s['state'].items():
        assert state[k].dtype == v.dtype and torch.equal(state[k], v), k  # weights and BatchNorm running stats
    assert [(n, mod.training) for n, mod in m.named_modules()] == s['flags']
    assert all(p.device == s['device'] for p in m.parameters()) and all(b.device == s['device'] for b in m.buffers())
    assert learn.dls is s['dls'] and learn.dls.train is s['train'] and learn.dls.valid is s['valid']
    assert learn.metrics is s['metrics'] and all(a is b for a, b in zip(learn.metrics, s['metric_items']))
    assert len(learn.metrics) == len(s['metric_items'])
    assert learn.loss_func is s['loss_func']
    assert list(learn.cbs) == s['cbs'] and learn.opt is s['opt']
    pd.testing.assert_frame_equal(learn.dls.valid_ds.items, s['valid_items'])
    assert torch.is_grad_enabled() == s['grad'] and not torch.is_inference_mode_enabled()


def failing_metric(exc, on_call=3):
    "An MSE metric that raises `exc` on its `on_call`-th call (the 1st call scores the baseline)."
    calls = []
    def flaky_mse(preds, targs):
        calls.append(1)
        if len(calls) == on_call: raise exc(f'raised on call {on_call}')
        return F.mse_loss(preds.float().view(-1), targs.float().view(-1))
    flaky_mse.calls = calls
    return flaky_mse


@pytest.fixture
def model_mode(request, reg):
    "Put the shared regression learner's model in the requested mode for the test; restore eval mode afterwards."
    learn, _ = reg
    learn.model.train(request.param == 'train')
    # a mixed state: one BatchNorm in the other mode, to check that every module's own flag is restored
    bn = [mod for mod in learn.model.modules() if isinstance(mod, torch.nn.BatchNorm1d)][0]
    bn.train(request.param != 'train')
    yield request.param
    learn.model.eval()


@pytest.mark.parametrize('model_mode', ['train', 'eval'], indirect=True)
@pytest.mark.parametrize('how', ['df', 'valid', 'value_error', 'keyboard_interrupt'])
def test_learner_and_dataframe_unchanged(reg, model_mode, how):
    learn, test_df = reg
    df = test_df.copy()
    df['shade'] = df['shade'].astype('category')  # a pandas categorical, which procs could convert in place
    df_before = df.copy(deep=True)
    cols_before, dtypes_before = list(df.columns), df.dtypes.copy()
    assert df['x2'].isna().any()  # FillMissing would fill these in place
    s = snapshot(learn)
    assert any(t for _, t in s['flags']) and not all(t for _, t in s['flags'])
    kw = dict(df=None if how == 'valid' else df, n_repeats=2, seed=0, progress=False)
    if how in ('df', 'valid'):
        fi = learn.feature_importance(**kw)
        assert len(fi) == 7 and np.isfinite(fi.importance).all()
    else:
        exc = ValueError if how == 'value_error' else KeyboardInterrupt
        metric = failing_metric(exc)
        with pytest.raises(exc, match='raised on call 3'):
            learn.feature_importance(metric=metric, **kw)
        assert len(metric.calls) == 3
    assert_unchanged(learn, s)
    pd.testing.assert_frame_equal(df, df_before, check_exact=True)
    assert list(df.columns) == cols_before and df.dtypes.equals(dtypes_before)
    assert df['x2'].isna().sum() == df_before['x2'].isna().sum()


def test_encode_leaves_dataframe_unchanged(clf):
    learn, test_df = clf
    df = test_df.copy()
    before = df.copy(deep=True)
    enc = encode(learn, df=df)
    assert enc.n_rows == len(df)
    pd.testing.assert_frame_equal(df, before, check_exact=True)
    assert 'x2_na' not in df.columns


def rng_states():
    return torch.random.get_rng_state().clone(), np.random.get_state(), random.getstate()


def same_np_state(a, b):
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and a[2:] == b[2:]


@pytest.mark.parametrize('seed', [0, None])
@pytest.mark.parametrize('source', ['valid', 'df'])
def test_torch_and_numpy_global_rng_unchanged(reg, seed, source):
    learn, test_df = reg
    torch.manual_seed(1234); np.random.seed(1234); random.seed(1234)
    t0, n0, _ = rng_states()
    learn.feature_importance(df=test_df if source == 'df' else None, n_repeats=2, seed=seed, max_rows=500,
                             progress=False)
    t1, n1, _ = rng_states()
    assert torch.equal(t0, t1)
    assert same_np_state(n0, n1)


@pytest.mark.parametrize('seed', [0, None])
@pytest.mark.parametrize('source', ['valid', 'df'])
def test_python_global_rng_unchanged(reg, seed, source):
    learn, test_df = reg
    random.seed(1234)
    before = random.getstate()
    learn.feature_importance(df=test_df if source == 'df' else None, n_repeats=2, seed=seed, max_rows=500,
                             progress=False)
    assert random.getstate() == before
