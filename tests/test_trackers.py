"""`log_importance` and `FeatureImportanceCallback(tracker=...)` (issue 23 item 2), against the real tools, offline: an
MLflow SQLite tracking store in a temporary folder read back with `MlflowClient`, TensorBoard event files read back with
its `EventAccumulator`, and W&B in offline mode (the run's files on disk). Each test is skipped only where its tool is
not installed (the oldest set's venv); `.ci/run` installs the extras."""
import json
import os
import numpy as np
import pytest
import torch
from fastai.tabular.all import Categorify, FillMissing, Normalize, TabularDataLoaders, rmse, tabular_learner
from fastai_featimp.all import FeatureImportanceCallback, demo_split, isolated_seed, log_importance, importance_scalars
from conftest import CATS, CONTS


@pytest.fixture(scope='module')
def fi(reg):
    learn, test_df = reg
    return learn.feature_importance(test_df, n_repeats=2, seed=0, progress=False)


def _train(cbs, epochs=2, seed=0):
    train_valid, _, valid_idx = demo_split(2000, 'regression', seed=0)
    with isolated_seed(seed):
        dls = TabularDataLoaders.from_df(train_valid, procs=[Categorify, FillMissing, Normalize], cat_names=list(CATS),
                                         cont_names=list(CONTS), y_names='y', valid_idx=valid_idx, bs=256)
        learn = tabular_learner(dls, layers=[50, 20], metrics=rmse)
        with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(epochs, 1e-2, cbs=list(cbs))
    return learn


def test_mlflow_sqlite_store_read_back(fi, tmp_path):
    mlflow = pytest.importorskip('mlflow')
    from mlflow.tracking import MlflowClient
    uri = f'sqlite:///{tmp_path}/mlflow.db'
    mlflow.set_tracking_uri(uri)
    try:
        exp = mlflow.create_experiment('featimp', artifact_location=(tmp_path / 'artifacts').as_uri())
        with pytest.raises(ValueError, match='none is active: call mlflow.start_run'): log_importance(fi, 'mlflow')
        with mlflow.start_run(experiment_id=exp) as run:
            for step in range(2): log_importance(fi, 'mlflow', step=step)
            learn = _train([FeatureImportanceCallback(n_rows=300, n_repeats=2, tracker='mlflow', prefix='cb')])
        client = MlflowClient(uri)
        hist = client.get_metric_history(run.info.run_id, 'importance/x1')
        assert [m.step for m in hist] == [0, 1] and all(np.isclose(m.value, fi.set_index('feature').importance['x1']) for m in hist)
        keys = set(client.get_run(run.info.run_id).data.metrics)
        assert {f'importance/{f}' for f in fi.feature} <= keys and {f'cb/{f}' for f in fi.feature} <= keys
        cb_hist = client.get_metric_history(run.info.run_id, 'cb/x1')
        h = learn.feature_importance_history
        assert [m.step for m in cb_hist] == [0, 1]
        assert np.allclose([m.value for m in cb_hist], h[h.feature == 'x1'].importance)
        arts = {a.path for a in client.list_artifacts(run.info.run_id, 'importance')}
        assert {'importance/importance_step0.csv', 'importance/importance_step0.png', 'importance/importance_step1.csv'} <= arts
        csv = client.download_artifacts(run.info.run_id, 'importance/importance_step1.csv', str(tmp_path))
        import pandas as pd
        back = pd.read_csv(csv)
        assert list(back.feature) == list(fi.feature) and np.allclose(back.importance, fi.importance)
    finally:
        mlflow.set_tracking_uri(None)


def test_tensorboard_event_files_read_back(fi, tmp_path):
    pytest.importorskip('tensorboard')
    from torch.utils.tensorboard import SummaryWriter
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    w = SummaryWriter(str(tmp_path / 'direct'))
    for step in range(3): log_importance(fi, w, step=step)
    w.close()
    ea = EventAccumulator(str(tmp_path / 'direct'), size_guidance={'images': 0, 'tensors': 0}); ea.Reload()
    tags = ea.Tags()
    assert {f'importance/{f}' for f in fi.feature} <= set(tags['scalars'])
    x1 = ea.Scalars('importance/x1')
    assert [e.step for e in x1] == [0, 1, 2] and np.allclose([e.value for e in x1], fi.set_index('feature').importance['x1'])
    assert 'importance/plot' in tags['images'] and len(ea.Images('importance/plot')) == 3
    text = [t for t in tags['tensors'] if t.startswith('importance/table')]
    assert text and b'| x1 |' in ea.Tensors(text[0])[0].tensor_proto.string_val[0]
    # the callback, through a writer of its own
    w = SummaryWriter(str(tmp_path / 'cb'))
    learn = _train([FeatureImportanceCallback(n_rows=300, n_repeats=2, tracker=w)], epochs=3)
    w.close()
    ea = EventAccumulator(str(tmp_path / 'cb')); ea.Reload()
    h = learn.feature_importance_history
    assert [e.step for e in ea.Scalars('importance/x1')] == [0, 1, 2]
    assert np.allclose([e.value for e in ea.Scalars('importance/x1')], h[h.feature == 'x1'].importance)


def test_tensorboard_auto_uses_the_learners_tensorboard_callback(tmp_path):
    pytest.importorskip('tensorboard')
    from fastai.callback.tensorboard import TensorBoardCallback
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    learn = _train([TensorBoardCallback(str(tmp_path), trace_model=False, log_preds=False), FeatureImportanceCallback(n_rows=300, n_repeats=2, tracker='auto')])
    ea = EventAccumulator(str(tmp_path)); ea.Reload()
    assert [e.step for e in ea.Scalars('importance/x1')] == [0, 1]
    assert len(learn.feature_importance_history) == 2 * 7
    with pytest.raises(ValueError, match="tracker='auto' logs through the learner's TensorBoardCallback or WandbCallback"):
        _train([FeatureImportanceCallback(n_rows=100, n_repeats=1, tracker='auto')], epochs=1)


def test_wandb_offline_run_files(fi, tmp_path, monkeypatch):
    wandb = pytest.importorskip('wandb')
    monkeypatch.setenv('WANDB_MODE', 'offline'); monkeypatch.setenv('WANDB_DIR', str(tmp_path))
    monkeypatch.setenv('WANDB_SILENT', 'true'); monkeypatch.setenv('WANDB_DISABLE_GIT', 'true')
    with pytest.raises(ValueError, match='none is active: call wandb.init'): log_importance(fi, 'wandb')
    run = wandb.init(project='featimp', dir=str(tmp_path), mode='offline')
    try:
        logged = log_importance(fi, 'wandb', step=0)
        log_importance(fi, run, step=1)
        learn = _train([FeatureImportanceCallback(n_rows=300, n_repeats=2, tracker=run, prefix='cb')])
        assert run.summary['importance/x1'] == pytest.approx(logged['importance/x1'])
        h = learn.feature_importance_history
        assert run.summary['cb/x1'] == pytest.approx(float(h[(h.feature == 'x1') & (h.epoch == 1)].importance.iloc[0]))
        assert run.summary['cb/step'] == 1
        files = run.dir
    finally:
        run.finish()
    root = next((tmp_path / 'wandb').glob('offline-run-*'))
    assert list(root.glob('run-*.wandb')) and next(root.glob('run-*.wandb')).stat().st_size > 0
    tables = list((root / 'files' / 'media' / 'table').rglob('*.table.json'))
    images = list((root / 'files' / 'media' / 'images').rglob('*.png'))
    assert len(tables) >= 4 and len(images) >= 4   # two direct calls and two epochs
    t = json.loads(tables[0].read_text())
    assert 'feature' in t['columns'] and 'importance' in t['columns'] and len(t['data']) == len(fi)
    assert str(root / 'files') == files
    assert {p.parent.name for p in tables} == {'importance', 'cb'}


def test_per_output_tables_and_bad_arguments(multitarget, tmp_path):
    pytest.importorskip('tensorboard')
    from torch.utils.tensorboard import SummaryWriter
    learn, test_df = multitarget
    po = learn.feature_importance(test_df, n_repeats=2, seed=0, per_output=True, progress=False)
    keys = importance_scalars(po)
    assert 'importance/y1/x1' in keys and 'importance/y2/x3' in keys and len(keys) == len(po)
    w = SummaryWriter(str(tmp_path)); log_importance(po, w, step=0); w.close()
    with pytest.raises(ValueError, match="tracker must be one of"): log_importance(po, 'comet')
    with pytest.raises(TypeError, match="tracker must be one of"): log_importance(po, object())
    with pytest.raises(ValueError, match='step must be an int >= 0'): log_importance(po, w, step=-1)
    with pytest.raises(TypeError, match='table must be an importance table'): log_importance(po.to_numpy(), w)
    with pytest.raises(ValueError, match='tracker must be None, one of'): FeatureImportanceCallback(tracker='mlflw')
    assert torch.is_tensor(torch.zeros(1)) and os.path.isdir(tmp_path)
