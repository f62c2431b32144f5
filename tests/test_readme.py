"README.md is rendered from nbs/index.ipynb by tools/make_readme.py; this keeps the two in step."
import subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_in_step_with_index_notebook():
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'make_readme.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_readme_states_the_two_commands():
    txt = (ROOT / 'README.md').read_text()
    assert 'python3 -m pip install -e . && fastai-featimp demo' in txt
    ci = (ROOT / '.ci' / 'run').read_text()
    cmd = 'python3 -m pip install -e ".[dev,ray,integrations]" && nbdev-test && python3 -m pytest -q'
    assert cmd in txt and cmd in ci   # .ci/run runs exactly the README's test command
