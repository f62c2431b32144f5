"""Issue 20, data and metric classes: a bool column given as 0/1, metric directions and names, multi-label metrics,
model outputs that do not match the target, unsigned row indices, group/cols overlaps. Each test failed before its fix."""
import warnings
import numpy as np
import pandas as pd
import pytest
from conftest import train_recipe
from fastai_featimp.all import FeatureInterpretation


@pytest.fixture(scope='module')
def bool_learner():
    rng = np.random.default_rng(0); n = 1400
    df = pd.DataFrame({'flag': rng.random(n) < 0.5, 'x': rng.normal(size=n)})
    df['y'] = 2.0 * df['flag'] + df['x'] + 0.1 * rng.normal(size=n)
    learn = train_recipe(df.iloc[:1000], ['flag'], ['x'], 'y', valid_idx=range(800, 1000), layers=[32], epochs=4, bs=64)
    return learn, df.iloc[1000:].reset_index(drop=True)


@pytest.mark.parametrize('cast', [lambda s: s.astype(int), lambda s: s.astype(float), lambda s: s.astype(int).astype(str),
                                  lambda s: s.astype(int).astype(object)])
def test_a_bool_column_given_as_0_1_is_reconciled_by_value(bool_learner, cast):
    learn, test = bool_learner
    want = learn.feature_importance(test, seed=0, progress=False).set_index('feature').importance
    assert want['flag'] > 0.05                                          # the column matters: its importance cannot be 0 by accident
    interp = FeatureInterpretation.from_learner(learn, df=test.assign(flag=cast(test.flag)))
    assert interp.data.unseen['flag'] == 0.0 and any('booleans' in n for n in interp.notes), interp.notes
    got = interp.importance(seed=0, progress=False).set_index('feature').importance
    np.testing.assert_allclose(got[want.index], want, rtol=1e-6)


def test_unseen_shares_count_rows(bool_learner):
    learn, test = bool_learner
    t = test.assign(flag=test.flag.astype(object))
    t.loc[:1, 'flag'] = 'maybe'; t.loc[2:, 'flag'] = None; t.loc[2:30, 'flag'] = True   # 2 unseen of 400 rows, of 31 non-missing
    with warnings.catch_warnings(): warnings.simplefilter('ignore'); interp = FeatureInterpretation.from_learner(learn, df=t)
    assert interp.data.unseen['flag'] == pytest.approx(2 / len(t))
