"""Issue 20, items 6, 7, 16 and 22: concurrent calls on one learner, huge sizes, strict booleans, deterministic hypothesis.

Item 6: `eval_mode` is entered by several threads on one model; the first saves the training flags, the last restores
them, so every call runs in eval mode and the caller's modes come back. Item 7: sizes whose results cannot fit in
memory are a `ValueError` naming the argument, a large run warns with its number of forward passes, and jobs are
planned lazily (the first pass runs before the plan is complete). Item 16: every bool parameter of the facade and the
analyses is checked strictly. Item 22: CI loads a derandomized hypothesis profile; messages print floats one way.
"""
import os, re, subprocess, sys, threading, warnings
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from fastai_featimp.all import FeatureInterpretation, demo_learner, permutation_importance
from fastai_featimp.core.engine import eval_mode, Job, predict_jobs
from fastai_featimp.analyses import pdp as pdp_, hstat as hstat_, sensitivity as sens_, shapley as shap_
from fastai_featimp.analyses import interactions as inter_

TESTS = os.path.dirname(__file__)


@pytest.fixture(scope='module')
def small():
    "A tiny demo learner of this module's own (its model is put in train mode, so it must not be a shared fixture)."
    return demo_learner('regression', n=1500, epochs=1, seed=0)


# ---- item 6: concurrency ----------------------------------------------------------------------------------------

def test_eval_mode_overlapping_threads_keep_eval_and_restore():
    "Thread A enters, B enters, A leaves: B must still run in eval mode; when B leaves the flags are the caller's."
    m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.5)); m[1].eval()
    before = [x.training for x in m.modules()]
    a_in, b_in, a_out, seen = threading.Event(), threading.Event(), threading.Event(), {}
    def a():
        with eval_mode(m):
            a_in.set(); b_in.wait(5)
        a_out.set()
    def b():
        a_in.wait(5)
        with eval_mode(m):
            b_in.set(); a_out.wait(5)
            seen['inside'] = [x.training for x in m.modules()]
    ts = [threading.Thread(target=a), threading.Thread(target=b)]
    for t in ts: t.start()
    for t in ts: t.join(10)
    assert seen['inside'] == [False] * 4, f"B ran with training flags {seen['inside']} after A left eval_mode"
    assert [x.training for x in m.modules()] == before


def test_threads_on_one_train_mode_learner_match_sequential(small):
    "4 threads x `learn.feature_importance(seed=s)` on a model in train mode: the sequential numbers, modes restored."
    learn, test_df = small
    df = test_df.iloc[:300]
    learn.model.train()
    try:
        flags = [m.training for m in learn.model.modules()]
        state = {k: v.clone() for k, v in learn.model.state_dict().items()}
        seq = {s: learn.feature_importance(df=df, seed=s, n_repeats=2, progress=False) for s in range(4)}
        assert [m.training for m in learn.model.modules()] == flags
        for rnd in range(3):
            got, errs, go = {}, [], threading.Barrier(4)
            def work(s):
                try:
                    go.wait(10); got[s] = learn.feature_importance(df=df, seed=s, n_repeats=2, progress=False)
                except Exception as e: errs.append(e)   # noqa: BLE001 - reported below
            ts = [threading.Thread(target=work, args=(s,)) for s in range(4)]
            for t in ts: t.start()
            for t in ts: t.join(120)
            assert not errs, errs
            for s in range(4):   # the same code on the same rows: equal up to the last bit
                pd.testing.assert_frame_equal(got[s], seq[s], check_exact=True, obj=f'round {rnd}, seed {s}')
            assert [m.training for m in learn.model.modules()] == flags, f"round {rnd}: the model's modes were not restored"
        assert all(torch.equal(v, state[k]) for k, v in learn.model.state_dict().items()), "BatchNorm statistics changed"
    finally:
        learn.model.eval()


# ---- item 7: huge sizes --------------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def interp(small):
    learn, test_df = small
    return FeatureInterpretation.from_learner(learn, df=test_df.iloc[:100])


HUGE = 10**12
HUGE_CALLS = {
    'importance n_repeats': (lambda it: it.importance(n_repeats=HUGE, progress=False), 'n_repeats'),
    'importance n_bins': (lambda it: it.importance(conditional=True, n_bins=HUGE, progress=False), 'n_bins'),
    'double_permutation n_repeats': (lambda it: it.double_permutation(cols=['x1', 'x3'], n_repeats=HUGE, progress=False), 'n_repeats'),
    'h_statistic n_repeats': (lambda it: it.h_statistic(cols=['x1', 'x3'], max_rows=10, n_repeats=HUGE, progress=False), 'n_repeats'),
    'sensitivity n_repeats': (lambda it: it.sensitivity(n_repeats=HUGE, progress=False), 'n_repeats'),
    'explain n_permutations': (lambda it: it.explain([0], method='permutation', n_permutations=HUGE, progress=False), 'n_permutations'),
    'ale n_bins': (lambda it: it.ale('x1', n_bins=HUGE), 'n_bins'),
    'partial_dependence grid_resolution': (lambda it: it.partial_dependence('x1', grid_resolution=HUGE, progress=False), 'grid_resolution'),
}

@pytest.mark.parametrize('case', sorted(HUGE_CALLS))
def test_sizes_that_cannot_fit_are_a_value_error_naming_the_argument(interp, case):
    call, name = HUGE_CALLS[case]
    with pytest.raises(ValueError) as e: call(interp)
    assert name in str(e.value) and 'memory' in str(e.value), str(e.value)


def test_a_large_run_warns_with_its_forward_passes():
    "A run of more than `LARGE_RUN_ROWS` model rows says what it will cost before it starts."
    from fastai_featimp.core import engine
    x = torch.randn(50, 3)
    model = nn.Linear(3, 1)
    old = engine.LARGE_RUN_ROWS
    engine.LARGE_RUN_ROWS = 10_000   # 3 features x 100 repeats x 50 rows = 15,000 model rows (+ 50 for the baseline)
    try:
        with pytest.warns(UserWarning, match=r'forward passes') as w:
            permutation_importance(model, x, torch.randn(50, 1), n_repeats=100, seed=0, progress=False, bs=1000)
    finally: engine.LARGE_RUN_ROWS = old
    msg = str(w[0].message)
    assert '301 jobs' in msg and '15,050' in msg and '16 forward passes' in msg, msg


def test_jobs_are_planned_lazily():
    "`predict_jobs` takes a generator: the first forward pass runs before the last job is made."
    x = torch.randn(10, 2)
    made, passes = [], []
    def model(t): passes.append(len(made)); return t.sum(1, keepdim=True)
    def jobs():
        for k in range(100): made.append(k); yield Job(((0, k % 2),), perm=torch.arange(10).flip(0))
    out = dict(predict_jobs(model, (x,), jobs(), bs=20))
    assert len(out) == 100 and passes[0] < 100, passes[:3]
    ref = dict(predict_jobs(model, (x,), list(jobs()), bs=20))
    assert all(torch.equal(out[k], ref[k]) for k in ref)


def test_huge_n_repeats_starts_without_planning_every_job():
    "n_repeats=10**6 on a tiny model: the first forward pass comes long before 10**6 jobs (and their permutations) exist."
    seen = []
    class M(nn.Module):
        def forward(self, x):
            seen.append(1)
            if len(seen) == 3: raise KeyboardInterrupt   # stop the run once it has started
            return x.sum(1, keepdim=True)
    import time
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        with pytest.raises(KeyboardInterrupt):
            permutation_importance(M(), torch.randn(20, 2), torch.randn(20, 1), n_repeats=10**6, seed=0, progress=False, bs=64)
    assert time.perf_counter() - t0 < 5, "planning 2 x 10**6 jobs took seconds before the first pass"


# ---- item 16: strict booleans ----------------------------------------------------------------------------------

FACADE = {
    'importance': lambda it, **k: it.importance(n_repeats=1, seed=0, **{'progress': False, **k}),
    'double_permutation': lambda it, **k: it.double_permutation(cols=['x1', 'x3'], n_repeats=1, seed=0, **{'progress': False, **k}),
    'partial_dependence': lambda it, **k: it.partial_dependence('x1', grid_resolution=3, **{'progress': False, **k}),
    'ale': lambda it, **k: it.ale('x1', n_bins=3, **k),
    'h_statistic': lambda it, **k: it.h_statistic(cols=['x1', 'x3'], max_rows=10, n_repeats=1, seed=0, **{'progress': False, **k}),
    'explain': lambda it, **k: it.explain([0], n_background=10, seed=0, **{'progress': False, **k}),
    'sensitivity': lambda it, **k: it.sensitivity(n_repeats=1, seed=0, **{'progress': False, **k}),
    'correlations': lambda it, **k: it.correlations(**k),
}
BOOLS = [('importance', 'progress'), ('importance', 'plot'), ('importance', 'per_output'),
         ('double_permutation', 'progress'), ('double_permutation', 'plot'),
         ('partial_dependence', 'centered'), ('partial_dependence', 'progress'), ('partial_dependence', 'plot'),
         ('ale', 'plot'), ('h_statistic', 'progress'), ('h_statistic', 'plot'), ('explain', 'progress'),
         ('sensitivity', 'per_output'), ('sensitivity', 'normalize'), ('sensitivity', 'progress'), ('sensitivity', 'plot'),
         ('correlations', 'plot')]

@pytest.mark.parametrize('method,arg', BOOLS)
def test_facade_bools_are_strict(interp, method, arg):
    with pytest.raises(TypeError, match=rf"{arg} must be True or False, got 'no'"):
        FACADE[method](interp, **{arg: 'no'})


def test_facade_accepts_numpy_bools(interp):
    a = interp.partial_dependence('x1', grid_resolution=3, centered=np.bool_(True), progress=False)
    b = interp.partial_dependence('x1', grid_resolution=3, centered=True, progress=False)
    pd.testing.assert_frame_equal(a, b)


def _tensor_calls():
    torch.manual_seed(0)
    model, x, y = nn.Linear(3, 1), torch.randn(30, 3), torch.randn(30, 1)
    return {
        ('permutation_importance', 'progress'): lambda v: permutation_importance(model, x, y, n_repeats=1, seed=0, progress=v),
        ('permutation_importance', 'per_output'): lambda v: permutation_importance(model, x, y, n_repeats=1, seed=0, progress=False, per_output=v),
        ('double_permutation', 'progress'): lambda v: inter_.double_permutation(model, x, y, n_repeats=1, seed=0, progress=v),
        ('partial_dependence', 'centered'): lambda v: pdp_.partial_dependence(model, x, 0, centered=v, progress=False),
        ('partial_dependence', 'progress'): lambda v: pdp_.partial_dependence(model, x, 0, progress=v),
        ('h_statistic', 'progress'): lambda v: hstat_.h_statistic(model, x, max_rows=10, n_repeats=1, seed=0, progress=v),
        ('feature_sensitivity', 'normalize'): lambda v: sens_.feature_sensitivity(model, x, n_repeats=1, seed=0, progress=False, normalize=v),
        ('feature_sensitivity', 'per_output'): lambda v: sens_.feature_sensitivity(model, x, n_repeats=1, seed=0, progress=False, per_output=v),
        ('feature_sensitivity', 'progress'): lambda v: sens_.feature_sensitivity(model, x, n_repeats=1, seed=0, progress=v),
        ('shapley_values', 'progress'): lambda v: shap_.shapley_values(model, x[:2], x[2:12], seed=0, progress=v),
    }

@pytest.mark.parametrize('key', sorted(_tensor_calls()))
def test_analysis_bools_are_strict(key):
    with pytest.raises(TypeError, match=rf"{key[1]} must be True or False, got 'no'"):
        _tensor_calls()[key]('no')


# ---- item 22: deterministic hypothesis in CI, messages without float reprs ----------------------------------

def test_ci_loads_a_derandomized_hypothesis_profile():
    code = ("import hypothesis_profile\nfrom hypothesis import settings\n"
            "s = settings(max_examples=3)\nprint(settings.default.derandomize, s.derandomize, s.database)")
    env = dict(os.environ, CI='true')
    out = subprocess.run([sys.executable, '-c', code], cwd=TESTS, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['True', 'True', 'None'], out.stdout
    with open(os.path.join(TESTS, 'test_properties.py')) as f:
        assert re.search(r'^import hypothesis_profile', f.read(), re.M), "tests/test_properties.py does not load the profile"


def test_grid_message_prints_floats_one_way():
    "The same constant column as float32 or float64: the same message (floats printed by value, not by repr)."
    msgs = []
    for dt in (np.float32, np.float64):
        with pytest.raises(ValueError) as e: pdp_.sklearn_grid(np.r_[np.full(98, 0.1), 0.0, 1.0].astype(dt), False, 2, (0.05, 0.95))
        msgs.append(str(e.value))
    assert msgs[0] == msgs[1], msgs
    assert 'np.float' not in msgs[0] and '0.100000001' not in msgs[0], msgs[0]
