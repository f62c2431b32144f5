"""Conditional importance (issue 21 item 3): the model sampler behind `conditional=True` (`analyses.conditional`) and the
strata version behind `conditional='strata'`, which must warn when most rows are alone in their stratum."""
import warnings
import numpy as np
import pandas as pd
import pytest
import torch

from fastai.tabular.all import Normalize, RegressionBlock
from fastai_featimp.all import (FeatureInterpretation, fit_conditional_sampler, conditional_draws, permutation_importance,
                                partner_strata)
from fastai_featimp.core.features import resolve_features
from conftest import train_recipe


@pytest.fixture(scope='module')
def clean_interp(clean):
    learn, te = clean
    it = FeatureInterpretation.from_learner(learn, df=te)
    return it, it.importance(seed=0, progress=False).set_index('feature'), it.importance(conditional=True, seed=0, progress=False)


def test_near_copy_gets_no_conditional_importance(clean_interp):
    it, marg, cond = clean_interp
    c = cond.set_index('feature')
    assert cond.attrs['conditional'] == 'model' and marg.attrs['conditional'] is False
    for f in ('x1', 'x1_dup'):   # exact copies: each is fully predictable from the other, so neither adds anything
        assert cond.attrs['sampler_fit'][f]['r2'] > 0.999
        assert abs(c.loc[f, 'importance']) < 0.01 * marg.loc[f, 'importance']   # measured: 1.4e-4 vs 0.94, 1.8e-4 vs 1.38


def test_independent_driver_keeps_its_marginal_importance(clean_interp):
    it, marg, cond = clean_interp
    c = cond.set_index('feature')
    for f in ('x2', 'shade'):    # drivers the other columns say nothing about (sampler R² 0.006, shade accuracy at chance)
        assert abs(c.loc[f, 'importance'] / marg.loc[f, 'importance'] - 1) < 0.25   # measured: -1.8% and -1.6%
        assert c.loc[f, 'ci_low'] > 0
    assert abs(cond.attrs['sampler_fit']['x2']['r2']) < 0.05
    assert 0 <= cond.attrs['sampler_fit']['shade']['accuracy'] <= 1
    # a group is drawn from the columns outside it: the copies together are independent of the rest, so they keep theirs
    g = it.importance(conditional=True, groups=[['x1', 'x1_dup']], seed=0, progress=False).set_index('feature')
    gm = it.importance(groups=[['x1', 'x1_dup']], seed=0, progress=False).set_index('feature')
    assert abs(g.loc['x1+x1_dup', 'importance'] / gm.loc['x1+x1_dup', 'importance'] - 1) < 0.25   # measured: -2.0%


@pytest.fixture(scope='module')
def factors():
    """12 columns, noisy copies (noise sd 0.3) of 3 latent factors that share a common part (so every column is
    associated > 0.5 with all 11 others); y is the sum of one column of each factor, `f0_0`, `f1_0`, `f2_0`."""
    rng = np.random.default_rng(7); n = 4000
    common, own = rng.normal(size=n), rng.normal(size=(3, n))
    cols = {f'f{k}_{j}': 0.8 * common + 0.6 * own[k] + 0.3 * rng.normal(size=n) for k in range(3) for j in range(4)}
    df = pd.DataFrame(cols)
    df['y'] = df.f0_0 + df.f1_0 + df.f2_0 + 0.1 * rng.normal(size=n)
    learn = train_recipe(df.iloc[:3000], [], list(cols), 'y', valid_idx=range(2400, 3000), y_block=RegressionBlock(),
                         procs=[Normalize], epochs=5)
    return learn, df.iloc[3000:].reset_index(drop=True)


def test_many_correlated_columns_no_driver_collapses(factors):
    learn, te = factors
    it = FeatureInterpretation.from_learner(learn, df=te)
    cond = it.importance(conditional=True, seed=0, progress=False).set_index('feature')
    with pytest.warns(UserWarning, match=r"most rows are alone in their stratum.*'f0_0' \(\d+% of rows\)"):
        strata = it.importance(conditional='strata', seed=0, progress=False)
    assert strata.attrs['conditional'] == 'strata' and len(strata.attrs['partners']['f0_0']) == 11
    assert min(strata.attrs['alone_in_stratum'].values()) > 0.5          # measured: 76-78% of rows never move
    s = strata.set_index('feature')
    drivers = ['f0_0', 'f1_0', 'f2_0']
    others = [f for f in cond.index if f not in drivers]
    assert sorted(cond.index[:3]) == drivers                              # the drivers rank first ...
    for f in drivers:
        assert cond.loc[f, 'ci_low'] > 0                                  # ... with a clearly positive importance
        assert cond.loc[f, 'importance'] > 10 * cond.loc[others, 'importance'].abs().max()   # measured: 0.18-0.19 vs <= 0.002
        assert cond.loc[f, 'importance'] > 1.5 * s.loc[f, 'importance']  # where the strata lose most of it (0.07-0.09)
        assert 0.8 < cond.attrs['sampler_fit'][f]['r2'] < 0.95


def test_seeded_and_nothing_mutated(factors):
    learn, te = factors
    before = te.copy()
    state = {k: v.clone() for k, v in learn.model.state_dict().items()}
    flags = [m.training for m in learn.model.modules()]
    a = learn.feature_importance(df=te, conditional=True, seed=3, n_repeats=2, progress=False)
    b = learn.feature_importance(df=te, conditional='model', seed=3, n_repeats=2, progress=False)
    c = learn.feature_importance(df=te, conditional=True, seed=4, n_repeats=2, progress=False)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs['sampler_fit'] == b.attrs['sampler_fit']
    assert not np.array_equal(a.sort_values('feature').importance.to_numpy(), c.sort_values('feature').importance.to_numpy())
    pd.testing.assert_frame_equal(te, before)
    assert all(torch.equal(v, learn.model.state_dict()[k]) for k, v in state.items())
    assert flags == [m.training for m in learn.model.modules()]


def test_strata_gives_the_numbers_of_main(clean):
    "`conditional='strata'` is what `conditional=True` was on main (6240045): same fixture, seed 0, 3 repeats."
    learn, te = clean
    it = FeatureInterpretation.from_learner(learn, df=te)
    from fastai_featimp.all import full_passes
    fi = it.importance(conditional='strata', seed=0, n_repeats=3, progress=False)
    with full_passes(): fi_full = it.importance(conditional='strata', seed=0, n_repeats=3, progress=False)   # main's engine path
    np.testing.assert_allclose(fi.importance, fi_full.importance, rtol=1e-5, atol=1e-7)   # the shared first layer: within 1e-5
    main = {'shade': 1.4232411285241444, 'x2': 1.2132696211338043, 'x3': 0.38094912966092426, 'x1_dup': 0.17787363131841025,
            'x1': 0.1287628561258316, 'x3_twin': 0.005823190013567607, 'noise': 0.0001743510365486145, 'zip': -0.00031220416227976483}
    main_lo = {'shade': 1.3272024477625008, 'x2': 1.0988026136602524, 'x3': 0.32765356610516194, 'x1_dup': 0.14575659339551805,
               'x1': 0.10430240772078957, 'x3_twin': 0.0030450763613936935, 'noise': -0.002300366827489764, 'zip': -0.004401480565236047}
    assert list(fi_full.feature) == list(main)
    # main's numbers were recorded on torch 2.14; another torch rounds float32 sums otherwise (1.7e-7 on torch 2.0)
    np.testing.assert_allclose(fi_full.importance, list(main.values()), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fi_full.ci_low, list(main_lo.values()), rtol=1e-6, atol=1e-6)
    assert fi.attrs['partners'] == {'x1': ['x1_dup'], 'x1_dup': ['x1'], 'x3': ['x3_twin'], 'x3_twin': ['x3']}
    # the same as handing the strata to the generic function by hand (the path main took)
    fr = it.feature_frame()
    strata, _ = partner_strata(fr, fr.attrs['kinds'], {f.name: [f.name] for f in it.features}, it.correlations(), 0.5, None, 4)
    direct = permutation_importance(it.model, it.inputs, it.targets(), score=it.spec.scorer(None, None),
                                    features=resolve_features(it.features, None, None), n_repeats=3, seed=0, strata=strata,
                                    progress=False)
    np.testing.assert_array_equal(direct.importance.to_numpy(), fi.importance.to_numpy())
    with warnings.catch_warnings(record=True) as w:                        # one partner each: no collapse, no warning
        warnings.simplefilter('always')
        it.importance(conditional='strata', seed=0, n_repeats=1, progress=False)
    assert not [x for x in w if 'alone in their stratum' in str(x.message)]
    assert max(fi.attrs['alone_in_stratum'].values()) < 0.05


def test_missing_indicator_drawn_with_its_value(reg):
    "A fastai column with an `_na` indicator: the indicator is drawn first, the filled-in value given it."
    learn, te = reg
    it = FeatureInterpretation.from_learner(learn, df=te)
    f = next(f for f in it.features if f.name == 'x2')
    assert len(f.columns) == 2                                             # (x2_na code, x2 value)
    (ci, cc), (vi, vc) = sorted(f.columns)
    codes, vals = it.inputs[ci][:, cc].long(), it.inputs[vi][:, vc].double()
    sm = fit_conditional_sampler(it.inputs, it.features, seed=0)
    d = conditional_draws(sm, 'x2', 4)
    k_code, k_val = list(f.columns).index((ci, cc)), list(f.columns).index((vi, vc))
    dc, dv = d[..., k_code].long(), d[..., k_val]
    fill = vals[codes == 2].mean()                                         # code 2: missing (True), filled with the median
    assert 0.05 < (dc == 2).double().mean() < 0.2                          # about the 10% missing of the demo
    assert abs(dv[dc == 2].mean() - fill) < 0.15                           # drawn missing rows sit at the fill value on average
    assert abs(dv[dc == 1].mean() - vals[codes == 1].mean()) < 0.1
    assert set(dc.unique().tolist()) <= set(codes.unique().tolist())


def test_bad_values(clean_interp):
    it, _, _ = clean_interp
    with pytest.raises(ValueError, match=r"conditional must be one of \['model', 'strata'\], got 'knockoff'"):
        it.importance(conditional='knockoff', progress=False)
    with pytest.raises(TypeError, match="conditional must be True, False, 'model', 'strata' or a dict"):
        it.importance(conditional=1.5, progress=False)
    with pytest.raises(ValueError, match='needs 2-D inputs'):
        permutation_importance(lambda x: x.sum((1, 2)), torch.randn(10, 3, 2), torch.randn(10), conditional=True, progress=False)


def test_alone_in_stratum_warning_names_the_features():
    from fastai_featimp.analyses.permutation import _alone_in_stratum
    with pytest.warns(UserWarning, match=r"never shuffled for 'a' \(100% of rows\); its importance collapses") as w:
        share = _alone_in_stratum({'a': np.arange(10), 'b': np.repeat([0, 1], 5), 'c': np.arange(10)}, ['a', 'b'])
    assert share == {'a': 1.0, 'b': 0.0} and "'b'" not in str(w[0].message)   # only scored features, only collapsed ones
