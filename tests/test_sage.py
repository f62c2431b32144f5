"""SAGE (issue 21 item 6): agreement with the authors' `sage-importance` package on the same model, rows and
background (regression and classification), efficiency, seeds, groups, the facades, that nothing the caller owns is
changed, and the refusals."""
import copy
import numpy as np
import pandas as pd
import pytest
import torch

from fastai.metrics import RocAucBinary
from fastai_featimp.all import FeatureInterpretation, sage_importance, plot_sage

N_ROWS, N_BG = 200, 32


def _flat(interp):
    "The interpretation's rows as one float matrix (codes, then continuous values), and each feature's columns in it."
    x_cat, x_cont = (t.cpu() for t in interp.inputs)
    X = torch.cat([x_cat.double(), x_cont.double()], 1).numpy()
    k = x_cat.shape[1]
    groups = [[c if i == 0 else k + c for i, c in f.columns] for f in interp.features]
    return X, k, groups


def _numpy_model(learn, k, softmax):
    model = learn.model.eval()
    def f(X):
        with torch.no_grad():
            out = model(torch.as_tensor(X[:, :k]).long(), torch.as_tensor(X[:, k:]).float())
            return (torch.softmax(out, -1) if softmax else out).double().numpy()
    return f


@pytest.mark.parametrize('which', ['reg', 'clf'])
def test_agrees_with_sage_importance_package(which, request):
    sage = pytest.importorskip('sage')
    learn, test_df = request.getfixturevalue(which)
    interp = FeatureInterpretation.from_learner(learn, df=test_df.iloc[:N_ROWS])
    ours = interp.sage(seed=0, n_background=N_BG, tol=0.01, progress=False).set_index('feature')
    X, k, groups = _flat(interp)
    bg = X[ours.attrs['background_index']]
    clf = which == 'clf'
    y = interp.targets().cpu().numpy()
    imputer = sage.GroupedMarginalImputer(_numpy_model(learn, k, clf), bg, groups)
    est = sage.PermutationEstimator(imputer, 'cross entropy' if clf else 'mse', random_state=0)
    ref = est(X, y.reshape(-1) if clf else y, batch_size=512, thresh=0.025, bar=False)
    names = [f.name for f in interp.features]
    got, se = ours.loc[names, 'sage'].to_numpy(), ours.loc[names, 'std'].to_numpy()
    combined = np.sqrt(se ** 2 + np.asarray(ref.std) ** 2)
    gap = np.abs(got - np.asarray(ref.values))
    assert (gap <= 3 * combined + 1e-6).all(), pd.DataFrame({'ours': got, 'sage': ref.values, 'se': combined}, index=names)
    # the same game: the values of both add up to (about) the loss drop from the background-mean prediction to the model
    assert abs(float(np.sum(ref.values)) - (ours.attrs['loss_empty'] - ours.attrs['loss_full'])) <= 3 * np.sqrt((combined ** 2).sum()) + 1e-6


def test_efficiency_and_the_two_losses(reg):
    learn, test_df = reg
    interp = FeatureInterpretation.from_learner(learn, df=test_df.iloc[:N_ROWS])
    sg = interp.sage(seed=1, n_background=N_BG, n_permutations=6, progress=False)
    a = sg.attrs
    assert abs(sg.sage.sum() - (a['loss_empty'] - a['loss_full'])) < 1e-9 and a['efficiency_gap'] < 1e-9
    assert abs(a['loss_full'] - interp.score()) < 1e-5                     # the learner's loss on the rows
    x_cat, x_cont = interp.inputs
    bg = torch.tensor(a['background_index'])
    with torch.no_grad():                                                  # every row gets the background-mean prediction
        mean_pred = learn.model.eval()(x_cat[bg].long(), x_cont[bg]).double().mean()
    y = interp.targets().double()
    assert abs(a['loss_empty'] - float(((mean_pred - y) ** 2).mean())) < 1e-5
    assert list(sg.columns[:3]) == ['feature', 'sage', 'std'] and sg.sage.is_monotonic_decreasing
    assert a['n_permutations'] == 6 and a['n_background'] == N_BG and a['n_rows'] == N_ROWS


def test_classifier_efficiency_and_plot(clf):
    learn, test_df = clf
    sg = learn.sage_importance(df=test_df.iloc[:N_ROWS], seed=0, n_background=N_BG, n_permutations=8, progress=False)
    assert abs(sg.sage.sum() - (sg.attrs['loss_empty'] - sg.attrs['loss_full'])) < 1e-9
    assert abs(sg.attrs['loss_empty'] - np.log(2)) < 0.2 and sg.attrs['activation'] == 'softmax'
    ax = plot_sage(sg)
    assert [t.get_text() for t in ax.get_yticklabels()] == list(sg.feature)
    # a higher-is-better metric with a per-row form: the values are accuracy gains, adding up to full - empty
    acc = learn.sage_importance(df=test_df.iloc[:N_ROWS], metric='accuracy', seed=0, n_background=N_BG, n_permutations=8, progress=False)
    a = acc.attrs
    assert a['higher_is_better'] and abs(acc.sage.sum() - (a['loss_full'] - a['loss_empty'])) < 1e-9
    assert a['loss_full'] > a['loss_empty'] and acc.feature.iloc[0] == sg.feature.iloc[0]


def test_seeded_runs_repeat_and_facades_agree(reg):
    learn, test_df = reg
    df = test_df.iloc[:N_ROWS]
    kw = dict(n_background=N_BG, n_permutations=8, progress=False)
    a = FeatureInterpretation.from_learner(learn, df=df).sage(seed=5, **kw)
    b = learn.sage_importance(df=df, seed=5, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert a.attrs['background_index'] == b.attrs['background_index'] and a.attrs['seed'] == 5
    c = learn.sage_importance(df=df, seed=6, **kw)
    assert not np.allclose(a.set_index('feature').sage, c.set_index('feature').loc[a.feature].sage)


def test_groups_are_players(reg):
    learn, test_df = reg
    sg = learn.sage_importance(df=test_df.iloc[:N_ROWS], groups=[['x3', 'x3_twin']], seed=0, n_background=N_BG,
                               n_permutations=8, progress=False)
    t = sg.set_index('feature')
    assert 'x3+x3_twin' in t.index and 'x3' not in t.index and t.loc['x3+x3_twin', 'type'] == 'group'
    assert t.loc['x3+x3_twin', 'members'] == 'x3, x3_twin'
    assert abs(sg.sage.sum() - (sg.attrs['loss_empty'] - sg.attrs['loss_full'])) < 1e-9
    assert len(sg) == len(learn.dls.cat_names + learn.dls.cont_names) - 2        # x2_na rides with x2; the pair is one


def test_learner_and_frame_unchanged(reg):
    learn, test_df = reg
    df = test_df.iloc[:N_ROWS].copy(); before = df.copy()
    state = copy.deepcopy(learn.model.state_dict()); learn.model.train()
    loss = learn.loss_func
    try:
        learn.sage_importance(df=df, seed=0, n_background=N_BG, n_permutations=4, progress=False)
        with pytest.raises(ValueError):
            learn.sage_importance(df=df, metric=RocAucBinary(), progress=False)
        assert learn.model.training and all(m.training for m in learn.model.modules())
    finally: learn.model.eval()
    pd.testing.assert_frame_equal(df, before)
    assert all(torch.equal(v, state[k]) for k, v in learn.model.state_dict().items())
    assert learn.loss_func is loss


def test_refusals(reg, clf):
    learn, test_df = reg
    unlabelled = test_df.iloc[:50].drop(columns=['y'])
    with pytest.raises(ValueError, match='no target column'):
        learn.sage_importance(df=unlabelled, progress=False)
    c, ctest = clf
    with pytest.raises(ValueError, match='no per-row form'):
        c.sage_importance(df=ctest.iloc[:100], metric=RocAucBinary(), progress=False)
    with pytest.raises(ValueError, match='even int >= 4'):
        learn.sage_importance(df=test_df.iloc[:50], n_permutations=3, progress=False)
    with pytest.raises(TypeError, match='max_permutations'):
        learn.sage_importance(df=test_df.iloc[:50], max_permutations=10.0, progress=False)
    with pytest.raises(ValueError, match='tol'):
        learn.sage_importance(df=test_df.iloc[:50], tol=1.5, progress=False)
    with pytest.raises(ValueError, match='activation'):
        sage_importance(lambda x: x, torch.randn(10, 2), torch.randn(10, 2), activation='relu')
    with pytest.raises(ValueError, match='needs `y`'):
        sage_importance(lambda x: x, torch.randn(10, 2))


def test_no_convergence_warns():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(100, 4, generator=g)
    f = lambda x: x[:, :1] * x[:, 1:2] + torch.sin(2 * x[:, 2:3]) * x[:, 3:4]
    with pytest.warns(UserWarning, match='did not converge'):
        sg = sage_importance(f, X, f(X) + torch.randn(100, 1, generator=g), seed=0, max_permutations=4, tol=1e-9, progress=False)
    assert not sg.attrs['converged'] and sg.attrs['n_permutations'] == 4


def test_one_dimensional_output_is_scored_in_its_own_shape():
    # the background mean comes back as (n, 1); a torch loss would broadcast it against (n,) targets to (n, n)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 3, generator=g); y = 2 * X[:, 0]
    f = lambda x: 2 * x[:, 0] + 0.1 * x[:, 1]
    sg = sage_importance(f, X, y, score=torch.nn.MSELoss(), seed=0, n_background=30, progress=False)
    bg = X[torch.tensor(sg.attrs['background_index'])]
    assert abs(sg.attrs['loss_full'] - float(((f(X) - y) ** 2).mean())) < 1e-6
    assert abs(sg.attrs['loss_empty'] - float(((f(bg).mean() - y) ** 2).mean())) < 1e-5
    assert abs(sg.sage.sum() - (sg.attrs['loss_empty'] - sg.attrs['loss_full'])) < 1e-9
