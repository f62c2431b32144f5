"""Intervals on very few rows, p-values in importance tables, and the delta-method interval for rmse (issue 20 item 8, issue 21 items 1-2)."""
import warnings
import pytest
import torch
from torch import nn
from fastai_featimp.analyses.permutation import permutation_importance


@pytest.fixture(scope='module')
def mlp_data():
    "A small MLP fitted to `y = 3 x0 + x1` (x2 irrelevant), and 200 fresh rows."
    g = torch.Generator().manual_seed(0)
    X = torch.randn(1000, 3, generator=g)
    y = 3 * X[:, 0] + X[:, 1] + 0.1 * torch.randn(1000, generator=g)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        mlp = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))
    opt = torch.optim.Adam(mlp.parameters(), lr=1e-2)
    for _ in range(150):
        opt.zero_grad(); loss = ((mlp(X).squeeze(1) - y) ** 2).mean(); loss.backward(); opt.step()
    return mlp, X[:200], y[:200]


def _half(t): return ((t.ci_high - t.ci_low) / 2).to_numpy()


@pytest.mark.parametrize('n', [2, 3, 5, 10])
def test_rows_interval_never_narrower_than_repeats_on_few_rows(mlp_data, n):
    mlp, X, y = mlp_data
    kw = dict(feature_names=['x0', 'x1', 'x2'], seed=0, progress=False)
    with pytest.warns(UserWarning, match='below 20 rows the row part of the interval'):
        rows = permutation_importance(mlp, X[:n], y[:n], **kw).set_index('feature')
    reps = permutation_importance(mlp, X[:n], y[:n], interval='repeats', **kw).set_index('feature').reindex(rows.index)
    assert (rows.interval == 'rows (paired)').all() and (reps.interval == 'repeats').all()
    assert (_half(rows) >= _half(reps) - 1e-12).all(), (n, _half(rows), _half(reps))
    assert (_half(rows) > 0).all()                                   # never zero width while the repeats spread


def test_no_few_rows_warning_from_20_rows(mlp_data):
    mlp, X, y = mlp_data
    with warnings.catch_warnings():
        warnings.simplefilter('error', UserWarning)
        permutation_importance(mlp, X[:20], y[:20], seed=0, progress=False)
    with pytest.warns(UserWarning, match='only 19 rows'):
        permutation_importance(mlp, X[:19], y[:19], seed=0, progress=False)
