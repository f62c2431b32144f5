"""Render nbs/index.ipynb to README.md (Quarto, which `nbdev-readme` needs, is not installable on our machines).

Markdown cells are copied; code cells are shown as Python blocks followed by their text outputs; `#| hide` cells and
images are left out. `python tools/make_readme.py` writes README.md; `--check` exits 1 when README.md is out of step.
"""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _text(src): return ''.join(src) if isinstance(src, list) else src

def render(nb_path=ROOT / 'nbs' / 'index.ipynb') -> str:
    nb = json.loads(Path(nb_path).read_text())
    parts = []
    for cell in nb['cells']:
        src = _text(cell['source']).rstrip()
        if cell['cell_type'] == 'markdown':
            parts.append(src); continue
        lines = src.splitlines()
        if any(l.strip() in ('#| hide', '#|hide') for l in lines): continue
        code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
        if code: parts.append(f"```python\n{code}\n```")
        for out in cell.get('outputs', []):
            if out.get('output_type') == 'stream': txt = _text(out.get('text', ''))
            elif 'data' in out and 'text/markdown' in out['data']: parts.append(_text(out['data']['text/markdown']).rstrip()); continue
            elif 'data' in out and 'text/plain' in out['data'] and not any(k.startswith('image/') for k in out['data']):
                txt = _text(out['data']['text/plain'])
            else: continue
            if txt.strip(): parts.append(f"```\n{txt.rstrip()}\n```")
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    txt, readme = render(), ROOT / 'README.md'
    if '--check' in sys.argv:
        ok = readme.exists() and readme.read_text() == txt
        print('README.md is in step with nbs/index.ipynb' if ok else 'README.md is out of step: run `python tools/make_readme.py`')
        sys.exit(0 if ok else 1)
    readme.write_text(txt); print(f'wrote {readme}')
