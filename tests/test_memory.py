"""Memory behaviour that holds on any machine: compact codes, no full copy of the frame while encoding, the numbers unchanged.

Peak memory against `get_preds` is measured by `benchmarks/bench_memory.py`, not here: timings and RSS are not unit tests.
"""
import tracemalloc
import numpy as np
import pandas as pd
import pytest
import torch
from fastai_featimp.all import FeatureInterpretation, make_demo_data
from fastai_featimp.adapters.tabular.spec import LearnerSpec
from fastai_featimp.adapters.tabular.encode import encode, encode_frame, code_dtype
from fastai_featimp.core.engine import Job, predict_jobs, eval_mode, model_input_dtype


def _bytes(data): return sum(t.numel() * t.element_size() for t in (data.x_cat, data.x_cont, data.y) if t is not None)


def test_interpretation_keeps_compact_codes_with_the_same_numbers(clf):
    learn, test_df = clf
    interp = FeatureInterpretation.from_learner(learn, df=test_df)
    wide = encode(learn, df=test_df)
    assert interp.data.x_cat.dtype == torch.int16          # zip has 300 levels: too many for int8
    assert torch.equal(interp.data.x_cat.long(), wide.x_cat) and torch.equal(interp.data.x_cont, wide.x_cont)
    assert _bytes(interp.data) < _bytes(wide)
    # the same importances, to the last bit, as an interpretation built on int64 codes
    long_interp = FeatureInterpretation(interp.spec, wide, df=test_df)
    a = interp.importance(seed=3, n_repeats=2, progress=False)
    b = long_interp.importance(seed=3, n_repeats=2, progress=False)
    pd.testing.assert_frame_equal(a, b)


def test_code_dtype_is_the_smallest_that_holds_every_level(reg):
    learn, _ = reg
    spec = LearnerSpec.from_learner(learn)
    assert max(len(v) for v in learn.dls.classes.values()) - 1 == 300     # zip: codes 0..300
    assert code_dtype(spec) == np.int16 and model_input_dtype(torch.int16) == torch.int64


def test_the_model_sees_int64_codes_in_every_pass(reg):
    learn, test_df = reg
    interp = FeatureInterpretation.from_learner(learn, df=test_df)
    seen = set()
    def model(x_cat, x_cont): seen.add(x_cat.dtype); return learn.model(x_cat, x_cont)
    with eval_mode(learn.model):
        list(predict_jobs(model, interp.inputs, [Job(), Job(((0, 0),), torch.randperm(interp.n_rows))], bs=500))
    assert seen == {torch.int64}


@pytest.mark.parametrize('compact', [False, True])
def test_encoding_holds_no_copy_of_the_frame(reg, compact):
    """Beyond its output arrays, encoding allocates one chunk's work plus small per-column temporaries: growing the
    frame by 12,000 rows adds less than 16 bytes a row (measured: about 6). A reconciled copy of the frame alone would
    add 64 (two object columns and six float64 ones), and processed chunks left for the garbage collector (a
    `TabularPandas` holds a bound method of itself) would add more with every chunk."""
    learn, _ = reg
    spec = LearnerSpec.from_learner(learn)
    extra = {}
    for n in (4000, 16000):
        df = make_demo_data(n, 'regression', seed=11)
        encode_frame(spec, df.iloc[:50])                      # warm-up: lazy imports and caches
        tracemalloc.start()
        try:
            data = encode_frame(spec, df, chunk_rows=1000, compact=compact)
            peak = tracemalloc.get_traced_memory()[1]
        finally: tracemalloc.stop()
        extra[n] = peak - _bytes(data)
        assert data.n_rows == n
    per_row = (extra[16000] - extra[4000]) / 12000
    assert per_row < 16, per_row

