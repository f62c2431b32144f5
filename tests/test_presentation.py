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
