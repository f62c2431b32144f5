"""One executor for retrain-based work (issue 12.5): in process, on a real local Ray cluster, in a process pool.

The same seeds give the same numbers wherever the retrains run (each retrain runs with one torch thread by default),
and the resumable cache of `drop_column_importance` works across executors.
"""
import concurrent.futures as cf
import multiprocessing as mp
import pandas as pd
import pytest

from fastai_featimp.all import (demo_learner, make_demo_data, RetrainRecipe, drop_column_importance, embedding_size_comparison,
                                cv_feature_importance, null_importance, select_features)
from fastai_featimp.retrain.executor import RetrainExecutor, import_ray


@pytest.fixture(scope='module')
def small_recipe():
    "A small, fast recipe on the demo data: 1,500 rows, 2 epochs (each retrain well under a second)."
    learn, test_df = demo_learner('regression', n=2500, epochs=2, seed=0)
    train_df = make_demo_data(2500, 'regression', seed=0).iloc[:2000]
    return RetrainRecipe.from_learner(learn, train_df, epochs=2), test_df


@pytest.fixture(scope='module')
def ray_cluster():
    ray = pytest.importorskip('ray')
    import_ray()                                          # the version check
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_drop_column_on_ray_gives_the_in_process_numbers(small_recipe, ray_cluster, tmp_path):
    recipe, test_df = small_recipe
    cols = ['x1', 'noise', 'zip']
    local = drop_column_importance(recipe, test_df, cols=cols, n_seeds=2, progress=False, verbose=False)
    cache = tmp_path / 'drop.json'
    on_ray = drop_column_importance(recipe, test_df, cols=cols, n_seeds=2, progress=False, verbose=False, executor='ray', cache=cache)
    print('\nin process:', local.set_index('feature').importance.round(6).to_dict(),
          '\non Ray:    ', on_ray.set_index('feature').importance.round(6).to_dict())
    pd.testing.assert_frame_equal(local, on_ray, check_exact=False, rtol=1e-6)   # same seeds, one torch thread each: same numbers
    assert on_ray.attrs['full_scores'] == pytest.approx(local.attrs['full_scores'], rel=1e-6)
    # the cache written by the Ray run resumes in process: only the new column is retrained
    more = drop_column_importance(recipe, test_df, cols=cols + ['x3'], n_seeds=2, progress=False, verbose=False, cache=cache)
    assert more.attrs['n_retrains'] == 10                # (1 full + 4 drops) x 2 seeds, 4 of them new
    assert more.set_index('feature').loc[cols, 'importance'].to_dict() == pytest.approx(local.set_index('feature').importance.to_dict())


def test_embedding_size_comparison_on_ray(small_recipe, ray_cluster):
    recipe, test_df = small_recipe
    a = embedding_size_comparison(recipe, test_df, caps=(3,), n_repeats=2, seed=0, progress=False)
    b = embedding_size_comparison(recipe, test_df, caps=(3,), n_repeats=2, seed=0, progress=False, executor='ray')
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6)
    assert b.set_index('feature').loc['zip', 'emb_width_cap3'] == 3


def test_folds_null_and_selection_on_ray_give_the_in_process_numbers(small_recipe, ray_cluster):
    recipe, test_df = small_recipe
    a = cv_feature_importance(2, recipe=recipe, n_repeats=2, seed=0, progress=False)
    b = cv_feature_importance(2, recipe=recipe, n_repeats=2, seed=0, progress=False, executor='ray')
    pd.testing.assert_frame_equal(a.combined, b.combined, check_exact=False, rtol=1e-6)
    a = null_importance(recipe, test_df, n_null=2, n_repeats=2, seed=0, progress=False)
    b = null_importance(recipe, test_df, n_null=2, n_repeats=2, seed=0, progress=False, executor='ray')
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6)
    a = select_features(recipe, test_df, n_seeds=2, max_drops=1, n_repeats=2, seed=0, progress=False)
    b = select_features(recipe, test_df, n_seeds=2, max_drops=1, n_repeats=2, seed=0, progress=False, executor='ray')
    pd.testing.assert_frame_equal(a.history, b.history, check_exact=False, rtol=1e-6)


def test_ray_results_arrive_as_they_finish(ray_cluster):
    def sleep_then(tag, s):                 # defined here: cloudpickle sends it by value to the workers
        import time
        time.sleep(s)
        return tag
    ex = RetrainExecutor('ray')
    got = [k for k, _ in ex.map(sleep_then, [('slow', dict(s=2.0)), ('fast', dict(s=0.1))], shared=('x',), progress=False)]
    assert got == ['fast', 'slow']


@pytest.mark.slow   # spawning two fresh interpreters that import fastai takes ~20 s
def test_process_pool_gives_the_in_process_numbers(small_recipe):
    recipe, test_df = small_recipe
    local = drop_column_importance(recipe, test_df, cols=['x1'], n_seeds=2, progress=False, verbose=False)
    with cf.ProcessPoolExecutor(2, mp_context=mp.get_context('spawn')) as pool:
        pooled = drop_column_importance(recipe, test_df, cols=['x1'], n_seeds=2, progress=False, verbose=False, executor=pool)
    pd.testing.assert_frame_equal(local, pooled, check_exact=False, rtol=1e-6)


def test_errors_before_any_retrain(small_recipe, monkeypatch):
    recipe, test_df = small_recipe
    calls = []
    monkeypatch.setattr(RetrainRecipe, 'train', lambda self, *a, **k: calls.append(1))
    with pytest.raises(ValueError, match="executor must be None"):
        drop_column_importance(recipe, test_df, executor='spark')
    with pytest.raises(ValueError, match='ThreadPoolExecutor'):
        drop_column_importance(recipe, test_df, executor=cf.ThreadPoolExecutor(2))
    with pytest.raises(ValueError, match='threads must be an int >= 1'):
        drop_column_importance(recipe, test_df, threads=0)
    assert calls == []


def test_missing_ray_names_the_install_command(small_recipe, monkeypatch):
    import sys
    recipe, test_df = small_recipe
    monkeypatch.setitem(sys.modules, 'ray', None)
    with pytest.raises(ImportError, match=r'pip install "fastai_featimp\[ray\]"'):
        drop_column_importance(recipe, test_df, executor='ray')
