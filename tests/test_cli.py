"""The console command end to end: a learner trained with string codes, exported, and a test set written by `to_csv`
(which turns '01' into 1) give the same table as the in-memory call; mistakes are one line and exit code 2."""
import os, subprocess, sys
import numpy as np
import pandas as pd
import pytest
from conftest import train_recipe
from fastai_featimp.all import make_demo_data


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
    df = make_demo_data(2500, 'regression', seed=11)
    rng = np.random.default_rng(1)
    df['month'] = [f'{m:02d}' for m in rng.integers(1, 13, len(df))]          # zero-padded codes
    df['store'] = rng.integers(1, 6, len(df)).astype(str)                      # numbers stored as strings
    df['y'] = df.y + 0.5 * (df.month.astype(int) % 4) - 0.3 * df.store.astype(int)
    learn = train_recipe(df.iloc[:2000], ['month', 'store', 'shade'], ['x1', 'x2', 'x3'], 'y', valid_idx=range(1600, 2000), layers=[32], epochs=3)
    d = tmp_path_factory.mktemp('cli')
    learn.export(d / 'export.pkl')
    test_df = df.iloc[2000:].reset_index(drop=True)
    test_df.to_csv(d / 'test.csv', index=False)
    return learn, test_df, d


def cli(*args, cwd=None):
    exe = [sys.executable, '-c', 'import sys; from fastai_featimp.present.cli import main; sys.exit(main(sys.argv[1:]))']
    return subprocess.run(exe + list(args), capture_output=True, text=True, cwd=cwd, env={**os.environ, 'MPLBACKEND': 'Agg'})


def test_run_on_a_csv_round_trip_equals_the_in_memory_call(exported):
    learn, test_df, d = exported
    assert pd.read_csv(d / 'test.csv').month.dtype.kind == 'i'   # the round trip changed the type
    r = cli('run', '--learner', str(d / 'export.pkl'), '--data', str(d / 'test.csv'), '--seed', '0', '--out', str(d / 'out'), '--no-progress')
    assert r.returncode == 0, r.stderr
    assert "column 'month': numbers zero-padded to 2 digits" in r.stdout and "column 'store': numbers read back as strings" in r.stdout
    got = pd.read_csv(d / 'out' / 'importance.csv').set_index('feature')
    want = learn.feature_importance(df=test_df, seed=0, progress=False).set_index('feature')
    np.testing.assert_allclose(got.loc[want.index, 'importance'], want.importance, rtol=1e-5, atol=1e-7)
    assert got.loc['month', 'importance'] > 0.01          # not the 0.0000 of a column encoded as all '#na#'
    assert (d / 'out' / 'importance.png').exists()


def test_cli_mistakes_are_one_line_with_exit_code_2(exported, tmp_path, capsys):
    from fastai_featimp.present.cli import main
    _, _, d = exported
    (tmp_path / 'junk.pkl').write_bytes(b'not a learner')
    (tmp_path / 'afile').write_text('x')
    cases = [(['--learner', str(tmp_path / 'junk.pkl')], 'cannot load'), (['--learner', str(tmp_path)], 'is a directory'),
             (['--out', str(tmp_path / 'afile')], 'is a file'), (['--metric', 'accuracy'], 'is a classification metric')]
    for extra, msg in cases:
        args = {'--learner': str(d / 'export.pkl'), '--data': str(d / 'test.csv'), '--out': str(tmp_path / 'o')}
        args.update(dict(zip(extra[::2], extra[1::2])))
        rc = main(['run', *[x for kv in args.items() for x in kv], '--no-progress'])
        err = capsys.readouterr().err
        assert rc == 2 and msg in err and 'Traceback' not in err, (extra, err)
        assert len([l for l in err.splitlines() if l.startswith('fastai-featimp run: error')]) == 1


def test_cli_shows_the_library_data_warnings(exported, tmp_path):
    "A CSV round trip that leaves 63% of a categorical's rows unseen: the warning reaches stderr, the note states the rows."
    learn, test_df, d = exported
    bad = test_df.copy()
    rows = np.arange(len(bad)) % 100 < 63
    bad.loc[rows, 'month'] = [f'{m}x' for m in range(int(rows.sum()))]            # levels never seen in training
    bad.to_csv(tmp_path / 'bad.csv', index=False)
    r = cli('run', '--learner', str(d / 'export.pkl'), '--data', str(tmp_path / 'bad.csv'), '--seed', '0', '--out', str(tmp_path / 'o'), '--no-progress')
    assert r.returncode == 0, r.stderr
    assert f"{int(rows.sum())} of the {len(bad)} rows (63.0%) of column 'month' hold levels the learner never saw" in r.stderr, r.stderr
    assert 'fastai-featimp: warning:' in r.stderr and 'Traceback' not in r.stderr
    assert 'not writable' not in r.stderr and 'deprecated' not in r.stderr    # the toolchain's noise stays out


def test_cli_reads_compressed_csv_groups_auto_and_suggests_names(exported, tmp_path, capsys):
    from fastai_featimp.present.cli import main, read_table
    learn, test_df, d = exported
    for ext in ('gz', 'bz2', 'zip', 'xz'):
        test_df.to_csv(tmp_path / f'test.csv.{ext}', index=False)
        pd.testing.assert_frame_equal(read_table(tmp_path / f'test.csv.{ext}'), pd.read_csv(d / 'test.csv'))
    rc = main(['run', '--learner', str(d / 'export.pkl'), '--data', str(tmp_path / 'test.csv.gz'), '--out', str(tmp_path / 'o'),
               '--groups', 'auto', '--seed', '0', '--no-progress'])
    assert rc == 0, capsys.readouterr().err
    rc = main(['run', '--learner', str(d / 'export.pkl'), '--data', str(d / 'test.csv'), '--out', str(tmp_path / 'o'), '--cols', 'montth',
               '--no-progress'])
    err = capsys.readouterr().err
    assert rc == 2 and "did you mean ['month']" in err, err
    rc = main(['run', '--learner', str(d / 'export.pkl'), '--data', str(d / 'test.csv'), '--out', str(tmp_path / 'o'), '--metric', 'rmes',
               '--no-progress'])
    err = capsys.readouterr().err
    assert rc == 2 and "did you mean ['rmse']" in err, err
