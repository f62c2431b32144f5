"""Issue 23 item 7, the rough edges a review of the report and console found: a recipe prints in one line, a silent
run prints nothing, progress bars over retrains say what they are doing."""
from fastai_featimp.all import RetrainRecipe, RetrainExecutor, make_demo_data


def test_a_recipe_prints_in_one_short_line():
    df = make_demo_data(3000, 'regression', seed=0)
    r = RetrainRecipe(df, cat_names=['shade', 'zip'], cont_names=['x1', 'x2', 'x3', 'x3_twin', 'noise'], y_names=['y'],
                      learner_kwargs=dict(layers=[8]), epochs=1)
    text = repr(r)
    assert len(text) < 300 and '\n' not in text and '3,000 rows' in text and "layers [8]" in text, text


def test_progress_bars_over_retrains_say_what_they_do(capsys):
    from fastprogress import fastprogress
    seen = []
    class Spy(fastprogress.progress_bar):
        def on_iter_end(self):
            seen.append(self.comment); super().on_iter_end()
    ex = RetrainExecutor()
    import fastai_featimp.retrain.executor as exmod
    orig = exmod.progress_bar
    exmod.progress_bar = Spy
    try: out = dict(ex.map(lambda x: x * 2, [('a', dict(x=1)), ('b', dict(x=2))], what='drop-column retrains'))
    finally: exmod.progress_bar = orig
    assert out == {'a': 2, 'b': 4} and seen and seen[-1].startswith('drop-column retrains (in process)')


def test_the_reports_shapley_cost_is_bounded():
    from fastai_featimp.present.report import _shapley_budget, SHAPLEY_MODEL_ROWS
    assert _shapley_budget(100, 100, 7) == (100, 100)                  # the demo: as asked
    e, b = _shapley_budget(100, 100, 73)                                # ames: 73 features
    assert e * b * 32 * 74 <= SHAPLEY_MODEL_ROWS and e >= 20 and b >= 20 and (e, b) != (100, 100)


def test_categorical_shapley_colours_follow_the_levels_effect_not_their_codes():
    import numpy as np
    from fastai_featimp.plots.shapley import _colour_values
    v = np.array(['b', 'a', 'c', 'a', 'b', 'c'], dtype=object)
    a = np.array([0.0, 1.0, -1.0, 1.2, 0.1, -0.8])                   # a pushes up, c down, b in between
    c = _colour_values(v, a)
    assert c[1] == c[3] == 1.0 and c[2] == c[5] == 0.0 and c[0] == c[4] == 0.5
    assert list(_colour_values(np.array([3.0, 1.0, 2.0]))) == [1.0, 1 / 3, 2 / 3]   # numbers: by rank
