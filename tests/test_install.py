"""The offline install path (a Kaggle kernel without internet): `pip wheel --no-deps .` gives a pure-Python wheel,
and `pip install --no-deps --no-index` of that file into an environment that already has fastai gives a working
`fastai_featimp.all`, imported from the install (not from the source tree)."""
import json, os, shutil, site, subprocess, sys, zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = 'fastai_featimp'

CHECK = """
import json, sys
import fastai_featimp, fastai_featimp.all as A
from fastai_featimp.all import *
from fastai.learner import Learner
names = list(A.__all__)
print(json.dumps(dict(
    file=fastai_featimp.__file__, version=fastai_featimp.__version__, n=len(names),
    missing=[n for n in names if not hasattr(A, n)],
    none=[n for n in names if getattr(A, n, None) is None],
    # UPPER_CASE names are constants; every other public name is a function or a class
    not_callable=[n for n in names if not n.isupper() and not callable(getattr(A, n, None))],
    star=[n for n in names if globals().get(n) is not getattr(A, n, None)],
    patched=all(callable(getattr(Learner, m, None)) for m in ('feature_importance', 'partial_dependence'))
)))
"""


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


def _clean_env(**extra):
    "No PYTHONPATH (the source tree must not leak in) and no machine pip settings (indexes, find-links, constraints)."
    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH' and not k.startswith('PIP_')}
    return {**env, 'PIP_CONFIG_FILE': os.devnull, 'PIP_DISABLE_PIP_VERSION_CHECK': '1', 'MPLBACKEND': 'Agg', **extra}


def _setuptools_ok():
    "The running environment can build the wheel itself (pyproject's build-system: setuptools>=77), with no download."
    try: import setuptools
    except ImportError: return False
    return int(setuptools.__version__.split('.')[0]) >= 77


def build_wheel(out:Path)->Path:
    "`pip wheel --no-deps` of a copy of the package sources (so no stale `build/` of the source tree ends up in it)."
    src = out / 'src'
    shutil.copytree(ROOT / PKG, src / PKG, ignore=shutil.ignore_patterns('__pycache__', '*.pyc'))
    for f in ROOT.iterdir():
        if f.is_file() and (f.name in ('pyproject.toml', 'README.md', 'MANIFEST.in') or f.name.upper().startswith(('LICENSE', 'LICENCE', 'NOTICE'))):
            shutil.copy2(f, src / f.name)
    cmd = [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-w', str(out / 'dist'), str(src)]
    if _setuptools_ok(): cmd.insert(4, '--no-build-isolation')   # else pip fetches setuptools for the build, as a user's would
    _run(cmd, cwd=out)
    wheels = list((out / 'dist').glob(f'{PKG}-*.whl'))
    assert len(wheels) == 1, wheels
    return wheels[0]


def make_venv(path:Path)->Path:
    """A venv that sees the running interpreter's packages (fastai, torch, ...), as a Kaggle kernel has them:
    `--system-site-packages`, plus the running venv's site-packages when the tests themselves run in a venv."""
    _run([sys.executable, '-m', 'venv', '--system-site-packages', str(path)])
    py = path / 'bin' / 'python'
    if sys.prefix != sys.base_prefix:
        sp = Path(_run([str(py), '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']).stdout.strip())
        (sp / '_parent_env.pth').write_text(''.join(f'import site; site.addsitedir({p!r})\n' for p in site.getsitepackages()))
    return py


def test_wheel_installs_offline_and_imports_from_the_install(tmp_path):
    whl = build_wheel(tmp_path)
    assert whl.name.endswith('-py3-none-any.whl'), whl.name    # pure Python: one file for every kernel
    with zipfile.ZipFile(whl) as z: tops = {n.split('/')[0] for n in z.namelist()}
    assert tops == {PKG, whl.name.split('-')[0] + '-' + whl.name.split('-')[1] + '.dist-info'}, tops   # the package only

    py = make_venv(tmp_path / 'kernel')
    work = tmp_path / 'work'; work.mkdir()    # a cwd outside the source tree
    env = _clean_env()
    _run([str(py), '-m', 'pip', 'install', '--no-deps', '--no-index', '--force-reinstall', str(whl)], cwd=work, env=env)
    info = json.loads(_run([str(py), '-c', CHECK], cwd=work, env=env).stdout.strip().splitlines()[-1])

    installed = Path(info['file']).resolve()
    assert installed.is_relative_to((tmp_path / 'kernel').resolve()), f'imported from {installed}, not from the venv'
    assert not installed.is_relative_to(ROOT), installed
    assert info['n'] > 0 and info['patched'], info
    bad = {k: info[k] for k in ('missing', 'none', 'not_callable', 'star') if info[k]}
    assert not bad, f'public names of fastai_featimp.all broken in the installed wheel: {bad}'
    r = _run([str(tmp_path / 'kernel' / 'bin' / 'fastai-featimp'), '--help'], cwd=work, env=env)   # the console script
    assert 'demo' in r.stdout, r.stdout
