"""Issue 22: the engine's shared first layer is exact. Every analysis on it equals the full passes (`full_passes()`) to
1e-5 of the table's scale, across `TabularModel` architectures (use_bn, bn_cont, lin_first, y_range, no hidden layer,
multi-output, only-categorical and only-continuous learners, groups with `_na` columns); the engine itself, on a bare
`TabularModel`, for every job kind, chunk size and packing."""
import warnings
import numpy as np
import pandas as pd
import pytest
import torch
from fastai.tabular.all import CategoryBlock, RegressionBlock, tabular_config, accuracy, rmse
from fastai.tabular.model import TabularModel
from fastai_featimp.all import (FeatureInterpretation, Feature, Job, CoalitionJob, MarginalJob, coalition_owners, predict_jobs, full_passes,
                                engine_path, make_demo_data, tabular_model_split, eval_mode, permutation_importance)
from conftest import train_recipe, CATS, CONTS

RTOL = 1e-5


def scaled_gap(a, b):
    "Largest |a - b| over the numeric columns, over the table's largest |b|; the other columns must be equal."
    if isinstance(a, pd.DataFrame):
        assert list(a.columns) == list(b.columns) and list(a.index) == list(b.index)
        num = [c for c in a.columns if pd.api.types.is_numeric_dtype(a[c]) and not pd.api.types.is_bool_dtype(a[c])]
        pd.testing.assert_frame_equal(a.drop(columns=num), b.drop(columns=num))
        x, y = a[num].to_numpy(np.float64), b[num].to_numpy(np.float64)
    else: x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    assert np.array_equal(np.isnan(x), np.isnan(y))
    scale = np.nanmax(np.abs(y), initial=0.0)
    return np.nanmax(np.abs(x - y), initial=0.0) / (scale if scale > 0 else 1.0)


def _learner(cats=CATS, conts=CONTS, task='regression', n=1500, **kw):
    df = make_demo_data(n, 'regression' if task == 'multitarget' else task, seed=3)
    if task == 'multitarget':
        df = df.rename(columns={'y': 'y1'}); df['y2'] = 2.0 * df['x3'] - df['x1']; ys = ['y1', 'y2']; block = RegressionBlock()
    else: ys, block = 'y', CategoryBlock() if task == 'classification' else RegressionBlock()
    nv = n // 5
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        learn = train_recipe(df.iloc[:n - nv], cats, conts, ys, valid_idx=range(n - 2 * nv, n - nv), y_block=block, epochs=4,
                             metrics=accuracy if task == 'classification' else rmse, **kw)
    return learn, df.iloc[n - nv:].reset_index(drop=True)


ARCHS = {
    'default': dict(),
    'no_bn': dict(config=tabular_config(use_bn=False)),
    'lin_last_bn': dict(config=tabular_config(lin_first=False)),              # a BatchNorm1d before the first Linear: folded
    'lin_last_no_bn_cont': dict(config=tabular_config(lin_first=False, bn_cont=False), y_range=(-6, 6)),
    'y_range': dict(y_range=(-6, 6), config=tabular_config(bn_cont=False)),
    'no_hidden': dict(layers=[]),                                             # the first Linear is the output layer
    'no_hidden_lin_last': dict(layers=[], config=tabular_config(lin_first=False)),
    'classification': dict(task='classification', layers=[32, 16]),
    'multitarget': dict(task='multitarget', layers=[24]),
    'only_categorical': dict(cats=['shade', 'zip'], conts=[], layers=[24]),
    'only_continuous': dict(cats=[], conts=CONTS, layers=[24], config=tabular_config(lin_first=False)),
}


@pytest.fixture(scope='module', params=list(ARCHS))
def arch(request):
    return request.param, _learner(**ARCHS[request.param])


def _analyses(it, learn, test, name):
    conts = [c for c in CONTS if c in it.spec.input_columns]
    cats = [c for c in CATS if c in it.spec.input_columns]
    cols = (conts + cats)[:3]
    out = {'fi': lambda: learn.feature_importance(df=test, seed=0, progress=False),
           'fi_metric': lambda: learn.feature_importance(df=test, seed=1, metric='accuracy' if name == 'classification' else 'rmse', progress=False),
           'fi_auto': lambda: learn.feature_importance(df=test, seed=3, n_repeats='auto', progress=False),
           'dp': lambda: it.double_permutation(cols=cols, seed=0, progress=False),
           'sens': lambda: it.sensitivity(seed=0, progress=False),
           'sens_noise': lambda: it.sensitivity(method='noise', seed=0, progress=False, per_output=True),
           'h': lambda: it.h_statistic(cols, max_rows=40, n_repeats=2, seed=0, progress=False),
           'sv': lambda: it.explain(range(3), n_background=20, seed=0, progress=False),
           'sv_perm': lambda: it.explain(range(2), n_background=15, method='permutation', n_permutations=6, seed=0, progress=False),
           'sage': lambda: it.sage(n_permutations=4, n_background=12, seed=0, progress=False)}
    if conts:
        out['fi_groups_na'] = lambda: learn.feature_importance(df=test, seed=2, groups=[['x2', 'x1']] + ([cats[:1]] if cats else []), progress=False)
        out['pdp'] = lambda: it.partial_dependence('x2', kind='both', max_rows=100, seed=0, progress=False)   # x2 has x2_na
        out['ale'] = lambda: it.ale('x1', seed=0)
    if cats:
        out['pdp_cat'] = lambda: it.partial_dependence(cats[0], max_rows=100, seed=0, progress=False)
        out['ale_cat'] = lambda: it.ale('shade', seed=0)
    if conts and cats: out['pdp2'] = lambda: it.partial_dependence(['x1', 'shade'], max_rows=80, seed=0, progress=False)
    return out


def test_every_analysis_equals_full_passes(arch):
    name, (learn, test) = arch
    it = FeatureInterpretation.from_learner(learn, df=test)
    with eval_mode(it.model): assert engine_path(it.model, it.inputs) == 'shared-first-layer'
    gaps = {}
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        for k, f in _analyses(it, learn, test, name).items():
            fast = f()
            with full_passes(): full = f()
            if k in ('fi', 'dp', 'sens', 'pdp', 'ale', 'h', 'sv', 'sage'):
                assert fast.attrs['engine'] == 'shared-first-layer', k
                assert full.attrs['engine'] == 'full', k
            if k == 'dp':   # joint_share = importance_ab / (importance_a + importance_b): ill-conditioned where a + b ~ 0
                assert np.allclose(fast.joint_share, full.joint_share, rtol=1e-3, atol=1e-3), k
                fast, full = fast.drop(columns='joint_share'), full.drop(columns='joint_share')
            if k == 'h' and name.startswith('no_hidden'):   # an additive model: H is a ratio of rounding noise on both paths
                assert fast.h.abs().max() < 1e-6 and full.h.abs().max() < 1e-6; continue
            gaps[k] = scaled_gap(fast, full)
    print(name, {k: f'{g:.1e}' for k, g in gaps.items()})
    bad = {k: g for k, g in gaps.items() if not g <= RTOL}
    assert not bad, f'{name}: {bad}'


def _model(emb_szs, n_cont, out, seed=0, **kw):
    torch.manual_seed(seed)
    m = TabularModel(emb_szs, n_cont, out, **kw)
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm1d):
            mod.running_mean.uniform_(-1, 1); mod.running_var.uniform_(0.5, 2)
            mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-.5, .5)
    return m.eval()


@pytest.mark.parametrize('kw', [dict(layers=[32, 16]), dict(layers=[32], lin_first=False), dict(layers=[], out=3),
                                dict(layers=[16], use_bn=False, bn_cont=False, y_range=(0, 2))])
@pytest.mark.parametrize('bs', [7, 64, 8192])
def test_engine_every_job_kind(kw, bs):
    "Permutations (with ties), values, deltas, the baseline, coalitions and marginal (SAGE) jobs (on the shared first layer too), packed and split across passes, in job order."
    kw = dict(kw); out = kw.pop('out', 2)
    m = _model([(4, 3), (60, 6), (2, 1)], 3, out, **kw)
    g = torch.Generator().manual_seed(0); n = 50
    x_cat = torch.stack([torch.randint(0, 4, (n,), generator=g), torch.randint(0, 60, (n,), generator=g), torch.zeros(n, dtype=torch.long)], 1).to(torch.int8)
    x_cont = torch.randn(n, 3, generator=g); x_cont[::2, 2] = 0.0                  # zero-inflated: many unchanged rows
    inputs = (x_cat, x_cont)
    fs = [Feature('a', [(0, 0)]), Feature('b', [(0, 1), (1, 0)]), Feature('c', [(0, 2)]), Feature('d', [(1, 1), (1, 2)])]
    owners, unowned = coalition_owners(inputs, fs)
    bg = tuple(x[30:37] for x in inputs)
    perm = lambda s: torch.randperm(n, generator=torch.Generator().manual_seed(s))
    jobs = [Job(), Job(((0, 0),), perm(1)), Job(((0, 2),), perm(2)), Job(((1, 2),), perm(3)), Job(((0, 1), (1, 0)), perm(4)),
            Job(((0, 1), (1, 1)), values=torch.tensor([5., 0.3])), Job(((1, 0),), values=torch.randn(n, 1, generator=g)),
            Job(((1, 1), (1, 2)), delta=torch.randn(n, 2, generator=g)), Job(((1, 2),), delta=torch.zeros(1)),
            CoalitionJob(3, torch.rand(5, 4, generator=g) > .5, tuple(x[10:20] for x in inputs), owners, unowned),
            MarginalJob(torch.tensor([True, False, False, True]), bg, owners, unowned),     # two coalitions on one background
            MarginalJob(torch.tensor([False, True, True, False]), bg, owners, unowned, lambda o: torch.softmax(o, -1)),
            Job(((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)), perm(5))]
    fast = list(predict_jobs(m, inputs, iter(jobs), bs))                       # an iterable, made as the passes need them
    with full_passes(): full = list(predict_jobs(m, inputs, jobs, bs))
    assert [j for j, _ in fast] == list(range(len(jobs))) == [j for j, _ in full]
    for (_, a), (_, b) in zip(fast, full):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert scaled_gap(a.double(), b.double()) <= 1e-6
    assert torch.equal(fast[8][1], fast[0][1])                                  # a zero delta changes no row: the baseline


def test_unchanged_rows_skip_the_rest():
    "Only rows whose changed columns take new values go through the rest of the network."
    m = _model([(3, 2)], 2, 1, layers=[8])
    n = 40; x_cat = torch.zeros(n, 1, dtype=torch.long); x_cat[:4, 0] = 1; x_cont = torch.randn(n, 2)
    s = tabular_model_split(m); seen = []
    rest = s.rest; s.rest = lambda h: seen.append(len(h)) or rest(h)
    m.layer_split = lambda: s                                                   # a module may declare its own split
    try:
        p = torch.arange(n).roll(1)                                             # moves the 4 ones: rows 0 and 4 change
        (_, o), = [r for r in predict_jobs(m, (x_cat, x_cont), [Job(((0, 0),), p)], bs=8192)]
    finally: del m.layer_split
    assert seen == [n, 2]                                                       # the baseline once, then the 2 changed rows
    with full_passes(): (_, ref), = list(predict_jobs(m, (x_cat, x_cont), [Job(((0, 0),), p)]))
    assert scaled_gap(o, ref) <= 1e-6


def test_unknown_and_train_mode_models_keep_full_passes():
    m = _model([(3, 2)], 2, 1, layers=[8]); inputs = (torch.zeros(5, 1, dtype=torch.long), torch.randn(5, 2))
    assert engine_path(m, inputs) == 'shared-first-layer'
    m.train(); assert engine_path(m, inputs) == 'full'; m.eval()
    with full_passes(): assert engine_path(m, inputs) == 'full'
    assert engine_path(lambda a, b: m(a, b), inputs) == 'full'                  # a plain callable: unknown
    assert engine_path(m, (inputs[1],)) == 'full'                               # inputs the split is not for
    class Sub(TabularModel):
        def forward(self, x_cat, x_cont): return super().forward(x_cat, x_cont) * 2
    assert tabular_model_split(Sub([(3, 2)], 2, 1, [8]).eval()) is None


def test_generic_permutation_importance_on_a_tabular_model():
    m = _model([(5, 3), (300, 8)], 4, 2, layers=[32, 16])
    g = torch.Generator().manual_seed(1); n = 300
    x_cat = torch.stack([torch.randint(0, 5, (n,), generator=g), torch.randint(0, 300, (n,), generator=g)], 1)
    x_cont = torch.randn(n, 4, generator=g)
    with torch.no_grad(): y = m(x_cat, x_cont) + 0.01 * torch.randn(n, 2, generator=g)   # importances well above rounding
    fs = [Feature('c0', [(0, 0)]), Feature('c1', [(0, 1)])] + [Feature(f'x{j}', [(1, j)]) for j in range(4)]
    a = permutation_importance(m, (x_cat, x_cont), y, features=fs, seed=0, progress=False, bs=128)
    with full_passes(): b = permutation_importance(m, (x_cat, x_cont), y, features=fs, seed=0, progress=False, bs=128)
    assert a.attrs['engine'] == 'shared-first-layer' and b.attrs['engine'] == 'full'
    p = ['p_value', 'p_adjusted']   # a feature the model ignores has an importance of float32 rounding (1e-7): its p is noise
    assert np.allclose(a[p], b[p], atol=1e-4)
    assert scaled_gap(a.drop(columns=p), b.drop(columns=p)) <= RTOL, (a, b)
