"""The package's structure: the layers contract in pyproject.toml holds, and no module is part of an import cycle.

`grimp` (import-linter's graph) reads every import statement, including those inside functions, so a lazy import
that runs upward is caught too. Skipped where import-linter is not installed (the oldest set's venv)."""
import shutil
import subprocess
import sys
from pathlib import Path
import pytest

grimp = pytest.importorskip('grimp')
ROOT = Path(__file__).resolve().parents[1]


def _cycles(graph, modules):
    "Strongly connected components with more than one module (Tarjan), i.e. the import cycles."
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
        for w in graph.find_modules_directly_imported_by(v):
            if w not in modules: continue
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for m in sorted(modules):
        if m not in index: visit(m)
    return out


def test_no_import_cycle():
    graph = grimp.build_graph('fastai_featimp')
    modules = {m for m in graph.modules if m.startswith('fastai_featimp')}
    assert len(modules) > 30   # the whole package was read
    assert _cycles(graph, modules) == []


def test_cycle_finder_finds_a_cycle():
    "The check above can fail: a graph with a -> b -> a has one cycle."
    g = grimp.ImportGraph()
    for m in ('pkg', 'pkg.a', 'pkg.b', 'pkg.c'): g.add_module(m)
    g.add_import(importer='pkg.a', imported='pkg.b'); g.add_import(importer='pkg.b', imported='pkg.a')
    g.add_import(importer='pkg.c', imported='pkg.a')
    assert _cycles(g, {'pkg.a', 'pkg.b', 'pkg.c'}) == [['pkg.a', 'pkg.b']]


@pytest.mark.skipif(shutil.which('lint-imports') is None and not Path(sys.executable).with_name('lint-imports').exists(),
                    reason='lint-imports is not installed')
def test_layers_contract_kept():
    exe = shutil.which('lint-imports') or str(Path(sys.executable).with_name('lint-imports'))
    r = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert 'broken' in r.stdout and ' 0 broken' in r.stdout
