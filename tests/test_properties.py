"""Property-based tests of the input boundary (hypothesis, with its pandas strategies).

Frames are generated column by column for the demo learners' columns, then rewritten in ways that mean the same thing
(categories in another order or only the present ones, nullable / string / object dtypes, numbers stored as text, a
shuffled or repeated index) or that do not (unseen levels in bulk, NaN / inf, dates, odd argument values). Every public
entry point either returns the same numbers as for the clean frame, or raises a `ValueError` / `TypeError` that names
the column or argument — never a NaN table — and the learner, the frame and the global RNGs are untouched.
"""
import random
import numpy as np
import pandas as pd
import pytest
import torch
import hypothesis_profile  # noqa: F401  (loads the derandomized profile in CI, before SETTINGS below)
from hypothesis import given, settings, HealthCheck, strategies as st
from hypothesis.extra import pandas as hpd
from fastai_featimp.all import FeatureInterpretation

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                            HealthCheck.too_slow, HealthCheck.data_too_large])
SHADES = ['red', 'green', 'blue', 'grey']


def frames(n_min=20, n_max=60, target='regression'):
    "Raw demo-like frames: the demo learners' columns with values in their training ranges (x2 may be missing)."
    fl = st.floats(-3, 3, allow_nan=False, width=64)
    cols = [hpd.column('x1', elements=fl), hpd.column('x2', elements=st.one_of(fl, st.just(np.nan))),
            hpd.column('x3', elements=fl), hpd.column('x3_twin', elements=fl), hpd.column('noise', elements=fl),
            hpd.column('shade', elements=st.sampled_from(SHADES), dtype=object),
            hpd.column('zip', elements=st.integers(0, 299).map(lambda i: f'z{i}'), dtype=object),
            hpd.column('y', elements=fl if target == 'regression' else st.sampled_from(['yes', 'no']), dtype=float if target == 'regression' else object)]
    return hpd.data_frames(cols, index=hpd.range_indexes(min_size=n_min, max_size=n_max))


def same_meaning(df, kind, data):
    "`df` rewritten so that it means exactly the same thing to the learner (orders and index drawn by hypothesis)."
    d = df.copy()
    if kind == 'category_shuffled': d['shade'] = pd.Categorical(d.shade, categories=data.draw(st.permutations(SHADES)))
    elif kind == 'category_present': d = d.astype({'shade': 'category', 'zip': 'category'})
    elif kind == 'category_extra': d['shade'] = pd.Categorical(d.shade, categories=SHADES + ['purple'])
    elif kind == 'nullable': d = d.convert_dtypes()
    elif kind == 'string': d = d.astype({'shade': 'string', 'zip': 'string'})
    elif kind == 'numbers_as_text': d['x1'] = d.x1.map(repr)
    elif kind == 'numbers_as_object': d['x3'] = d.x3.astype(object)
    elif kind == 'index': d.index = data.draw(st.lists(st.integers(0, 4), min_size=len(d), max_size=len(d)))
    elif kind == 'target_category': d['y'] = pd.Categorical(d.y, categories=['yes', 'no'])
    return d

KINDS = ['category_shuffled', 'category_present', 'category_extra', 'nullable', 'string', 'numbers_as_text',
         'numbers_as_object', 'index', 'target_category']


def snapshot(learn):
    return ({k: v.clone() for k, v in learn.model.state_dict().items()}, [m.training for m in learn.model.modules()],
            random.getstate(), np.random.get_state()[1].copy(), torch.random.get_rng_state().clone())

def unchanged(learn, snap):
    sd, flags, pr, nr, tr = snap
    assert all(torch.equal(v, sd[k]) for k, v in learn.model.state_dict().items())
    assert [m.training for m in learn.model.modules()] == flags
    assert random.getstate() == pr and np.array_equal(np.random.get_state()[1], nr) and torch.equal(torch.random.get_rng_state(), tr)


@pytest.mark.parametrize('task', ['regression', 'classification'])
@SETTINGS
@given(data=st.data())
def test_same_meaning_same_numbers(reg, clf, task, data):
    learn, _ = reg if task == 'regression' else clf
    df = data.draw(frames(target=task))
    kind = data.draw(st.sampled_from(KINDS if task == 'classification' else [k for k in KINDS if k != 'target_category']))
    other = same_meaning(df, kind, data)
    before, snap = other.copy(), snapshot(learn)
    a, b = FeatureInterpretation.from_learner(learn, df=df), FeatureInterpretation.from_learner(learn, df=other)
    assert torch.equal(a.data.x_cat, b.data.x_cat) and torch.equal(a.data.x_cont, b.data.x_cont)
    assert (a.data.y is None) == (b.data.y is None) and (a.data.y is None or torch.equal(a.data.y, b.data.y))
    fa, fb = a.importance(n_repeats=2, seed=3, progress=False), b.importance(n_repeats=2, seed=3, progress=False)
    pd.testing.assert_frame_equal(fa, fb)
    assert np.isfinite(fa.importance).all()
    outs = []
    for it in (a, b):   # the same table, or the same clear error (a constant column has no percentile grid)
        try: outs.append(it.partial_dependence('x1', grid_resolution=3, progress=False))
        except ValueError as e: outs.append(str(e))
    if isinstance(outs[0], str): assert outs[0] == outs[1] and 'too close to each other' in outs[0], outs
    else: pd.testing.assert_frame_equal(outs[0], outs[1])
    pd.testing.assert_frame_equal(other, before)
    unchanged(learn, snap)


def _bad(df, kind):
    d = df.copy()
    if kind == 'inf': d.loc[d.index[0], 'x3'] = np.inf
    elif kind == 'nan_no_fill': d.loc[d.index[0], 'x1'] = np.nan
    elif kind == 'huge': d.loc[d.index[0], 'noise'] = 1e300
    elif kind == 'text': d['x1'] = d.x1.astype(object); d.loc[d.index[0], 'x1'] = 'n/a'
    elif kind == 'date': d['x3_twin'] = pd.Timestamp('2021-01-01')
    elif kind == 'all_unseen': d['shade'] = 7
    elif kind == 'duplicate': d = pd.concat([d, d[['x1']]], axis=1)
    elif kind == 'multiindex': d.columns = pd.MultiIndex.from_product([['a'], d.columns])
    elif kind == 'missing_col': d = d.drop(columns='zip')
    elif kind == 'empty': d = d.iloc[:0]
    return d

BAD = {'inf': 'x3', 'nan_no_fill': 'x1', 'huge': 'noise', 'text': 'x1', 'date': 'x3_twin', 'all_unseen': 'shade',
       'duplicate': 'x1', 'multiindex': 'column names', 'missing_col': 'zip', 'empty': 'empty'}


@SETTINGS
@given(data=st.data())
def test_bad_frames_raise_naming_the_column(reg, data):
    learn, _ = reg
    df = data.draw(frames())
    kind = data.draw(st.sampled_from(sorted(BAD)))
    bad = _bad(df, kind)
    before, snap = bad.copy(), snapshot(learn)
    with pytest.raises((ValueError, TypeError)) as e:
        FeatureInterpretation.from_learner(learn, df=bad).importance(n_repeats=1, seed=0, progress=False)
    assert BAD[kind] in str(e.value), (kind, str(e.value))
    pd.testing.assert_frame_equal(bad, before)
    unchanged(learn, snap)


ARGS = st.one_of(
    st.fixed_dictionaries({'n_repeats': st.one_of(st.integers(-3, 0), st.floats(0.5, 3.5), st.booleans(), st.just('3'))}),
    st.fixed_dictionaries({'max_rows': st.one_of(st.integers(-3, 1), st.floats(1.5, 9.5), st.booleans(), st.just('50'))}),
    st.fixed_dictionaries({'bs': st.one_of(st.integers(-3, 0), st.floats(0.5, 99.5), st.booleans(), st.just('8'))}),
    st.fixed_dictionaries({'seed': st.one_of(st.integers(-10, -1), st.floats(0.5, 9.5), st.booleans(), st.just('0'))}),
    st.fixed_dictionaries({'cols': st.one_of(st.integers(0, 5), st.just([['x1', 'x3']]), st.just(['nope']))}),
    st.fixed_dictionaries({'groups': st.one_of(st.integers(0, 5), st.just([[['x1', 'x3']]]), st.just([['x1', 'nope']]), st.just('automatic'))}),
    st.fixed_dictionaries({'metric': st.sampled_from(['accuracy', 'F1Score', 'no_such_metric', 5])}),
)

@SETTINGS
@given(data=st.data())
def test_odd_arguments_raise_naming_the_argument(reg, data):
    learn, test_df = reg
    kw = data.draw(ARGS)
    name = next(iter(kw))
    interp = FeatureInterpretation.from_learner(learn, df=test_df.iloc[:200])
    snap = snapshot(learn)
    with pytest.raises((ValueError, TypeError)) as e:
        interp.importance(n_repeats=kw.pop('n_repeats', 1), progress=False, **kw)
    msg = str(e.value)
    assert name in msg or (name in ('cols', 'groups') and 'nope' in msg) or (name == 'groups' and msg.startswith('a group must')), (kw, msg)
    unchanged(learn, snap)


@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**70))
def test_never_a_nan_table_and_seeds_reproduce(reg, data, seed):
    learn, _ = reg
    df = data.draw(frames(n_min=30))
    interp = FeatureInterpretation.from_learner(learn, df=df)
    a = interp.importance(n_repeats=2, seed=seed, progress=False)
    b = interp.importance(n_repeats=2, seed=seed, progress=False)
    pd.testing.assert_frame_equal(a, b)
    assert np.isfinite(a[['importance', 'std']].to_numpy(float)).all()
    s = interp.sensitivity(n_repeats=2, seed=seed, progress=False)
    assert np.isfinite(s.sensitivity).all()
