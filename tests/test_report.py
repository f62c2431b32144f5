"""The HTML report, opened in a real browser.

`fastai-featimp demo --report` writes the demo's report; headless Chromium (Debian's `chromium`, which `.ci/run` installs when it is
missing) opens it through the DevTools protocol over a pipe (`--remote-debugging-pipe`: no port, no network), and the
tests check that it loads with no console message, no script error and no request outside the file, that every
section and every image is there and decodes, that nothing overflows the page width, and save a screenshot.

`python tests/test_report.py --docs` rebuilds the documentation's copy: `nbs/images/demo_report.html` (the demo report
with the default settings) and `nbs/images/demo_report.png` (its screenshot in Chromium), and prints the timings.
"""
import base64, fcntl, json, os, re, select, shutil, subprocess, sys, tempfile, time
from pathlib import Path
import pandas as pd
import pytest
import torch

from fastai_featimp.all import FeatureInterpretation, make_demo_data
from fastai_featimp.present.demo_report import demo_report
from fastai_featimp.present.html import REPORT_SECTIONS

torch.set_num_threads(1)

CHROMIUM = next((p for p in (shutil.which('chromium'), shutil.which('chromium-browser'), '/usr/lib/chromium/chromium')
                 if p and os.path.exists(p)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium; "
                                                             ".ci/run installs it): the browser checks cannot run")
FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--disable-extensions', '--remote-debugging-pipe']
TOP_K = 6
# images per section of the demo report: importance, fold view, dendrogram, one PDP/ICE + ALE figure per top column,
# the H-statistic, the Shapley summary, the method comparison; the data and embedding sections are tables only
EXPECTED_IMAGES = dict(data=0, importance=1, folds=1, groups=1, dependence=TOP_K, interactions=1, shapley=1, embeddings=0, methods=1)


class Chromium:
    "Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4 of the child), with a fresh profile."
    def __init__(self, binary=CHROMIUM, timeout=60.0):
        self.timeout, self.profile = timeout, tempfile.mkdtemp(prefix='featimp-chromium-')
        to_child, self._w = os.pipe()
        self._r, from_child = os.pipe()
        def child():   # in the child, before exec: the protocol's pipe ends become fds 3 (commands) and 4 (replies)
            a, b = fcntl.fcntl(to_child, fcntl.F_DUPFD, 10), fcntl.fcntl(from_child, fcntl.F_DUPFD, 10)
            os.dup2(a, 3); os.dup2(b, 4)   # inheritable; every other fd Python opened is not (PEP 446)
        self.proc = subprocess.Popen([binary, *FLAGS, f'--user-data-dir={self.profile}', 'about:blank'], preexec_fn=child,
                                     close_fds=False, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        os.close(to_child); os.close(from_child)
        self._buf, self._id, self.events = b'', 0, []

    def _read(self, deadline):
        while b'\0' not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]: raise TimeoutError('chromium did not answer in time')
            chunk = os.read(self._r, 1 << 20)
            if not chunk: raise RuntimeError(f'chromium closed the pipe: {self.proc.stderr.read().decode()[-2000:]}')
            self._buf += chunk
        msg, self._buf = self._buf.split(b'\0', 1)
        return json.loads(msg)

    def wait_for(self, pred):
        "The first message (kept event or new one) for which `pred` is true; other messages are kept in `events`."
        for i, m in enumerate(self.events):
            if pred(m): return self.events.pop(i)
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read(deadline)
            if pred(m): return m
            self.events.append(m)

    def send(self, method, session=None, **params):
        self._id += 1
        msg = {'id': self._id, 'method': method, 'params': params}
        if session: msg['sessionId'] = session
        os.write(self._w, json.dumps(msg).encode() + b'\0')
        reply = self.wait_for(lambda m, i=self._id: m.get('id') == i)
        if 'error' in reply: raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get('result', {})

    def close(self):
        try: self.send('Browser.close')
        except Exception: pass
        try: self.proc.wait(10)
        except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        os.close(self._w); os.close(self._r)
        shutil.rmtree(self.profile, ignore_errors=True)


PAGE_FACTS = """JSON.stringify({
  ready: document.readyState,
  sections: [...document.querySelectorAll('section')].map(s => s.id),
  images_per_section: Object.fromEntries([...document.querySelectorAll('section')].map(s => [s.id, s.querySelectorAll('img').length])),
  how_per_section: Object.fromEntries([...document.querySelectorAll('section')].map(s => [s.id, s.querySelectorAll('p.how').length])),
  images: [...document.images].map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth, shown: i.getBoundingClientRect().width})),
  scroll_width: document.documentElement.scrollWidth, view_width: window.innerWidth,
  height: document.documentElement.scrollHeight, nav_links: document.querySelectorAll('nav a').length,
  scripts: document.scripts.length, stylesheets: document.querySelectorAll('link').length})"""


def open_in_chromium(path, screenshot=None, width=1280, height=4000, full_page=False):
    "Load `path` in headless Chromium; the page's facts, every console / log message and exception, every request; a screenshot."
    b = Chromium()
    try:
        target = b.send('Target.createTarget', url='about:blank')['targetId']
        s = b.send('Target.attachToTarget', targetId=target, flatten=True)['sessionId']
        for domain in ('Page', 'Runtime', 'Log', 'Network'): b.send(f'{domain}.enable', session=s)
        b.send('Emulation.setDeviceMetricsOverride', session=s, width=width, height=height, deviceScaleFactor=1, mobile=False)
        url = Path(path).resolve().as_uri()
        nav = b.send('Page.navigate', session=s, url=url)
        assert 'errorText' not in nav, nav
        b.wait_for(lambda m: m.get('method') == 'Page.loadEventFired')
        facts = json.loads(b.send('Runtime.evaluate', session=s, expression=PAGE_FACTS, returnByValue=True)['result']['value'])
        if screenshot is not None:
            h = facts['height'] if full_page else min(height, facts['height'])
            shot = b.send('Page.captureScreenshot', session=s, format='png', captureBeyondViewport=full_page,
                          clip=dict(x=0, y=0, width=width, height=h, scale=1))
            Path(screenshot).write_bytes(base64.b64decode(shot['data']))
        ev = [m for m in b.events if m.get('sessionId') == s]
        facts['console'] = [m['params'] for m in ev if m.get('method') == 'Runtime.consoleAPICalled']
        facts['exceptions'] = [m['params']['exceptionDetails'] for m in ev if m.get('method') == 'Runtime.exceptionThrown']
        facts['log'] = [m['params']['entry'] for m in ev if m.get('method') == 'Log.entryAdded']
        facts['requests'] = [m['params']['request']['url'][:80] for m in ev if m.get('method') == 'Network.requestWillBeSent']
        facts['failed'] = [m['params'] for m in ev if m.get('method') == 'Network.loadingFailed']
        facts['url'] = url
        return facts
    finally: b.close()


def check_page(facts, expected_images):
    "Assert the page loaded cleanly: no console message, no exception, no request outside the file, every section and image."
    assert facts['ready'] == 'complete'
    assert facts['console'] == [] and facts['exceptions'] == [] and facts['log'] == [], (facts['console'], facts['exceptions'], facts['log'])
    outside = [u for u in facts['requests'] if not (u.startswith('data:') or u == facts['url'][:80])]
    assert outside == [] and facts['failed'] == [], (outside, facts['failed'])
    assert facts['scripts'] == 0 and facts['stylesheets'] == 0
    assert facts['sections'] == list(expected_images), facts['sections']
    assert facts['images_per_section'] == expected_images, facts['images_per_section']
    assert facts['how_per_section'] == {k: 1 for k in expected_images}        # every section says how to read it
    assert facts['nav_links'] == len(expected_images)
    bad = [i for i in facts['images'] if not (i['complete'] and i['width'] > 0 and i['shown'] > 0)]
    assert bad == [], bad                                                        # every image decoded and is displayed
    assert facts['scroll_width'] <= facts['view_width'], (facts['scroll_width'], facts['view_width'])   # nothing sticks out


@pytest.fixture(scope='module')
def demo_page(tmp_path_factory):
    "`fastai-featimp demo --report` (all sections: folds and method comparison included), on a smaller demo to keep the suite fast."
    from fastai_featimp.present.cli import main
    out = tmp_path_factory.mktemp('report')
    t = time.perf_counter()
    assert main(['demo', '--out', str(out), '--rows', '2000', '--epochs', '2', '--report', '--no-progress']) == 0
    print(f"fastai-featimp demo --report (2,000 rows, 2 epochs): {time.perf_counter() - t:.1f} s")
    assert sorted(p.name for p in out.iterdir()) == ['importance.csv', 'importance.png', 'report.html']
    return out / 'report.html'


def test_demo_report_is_self_contained(demo_page):
    page = demo_page.read_text(encoding='utf-8')
    assert re.findall(r'<section id="(\w+)"', page) == list(REPORT_SECTIONS)
    for bad in ('<script', '<link', '<iframe', '@import', 'url(', 'src="http', "src='http", 'href="http'): assert bad not in page, bad
    srcs = re.findall(r'<img src="([^"]+)"', page)
    assert len(srcs) == sum(EXPECTED_IMAGES.values())
    for s in srcs:
        assert s.startswith('data:image/png;base64,')
        assert base64.b64decode(s.split(',', 1)[1]).startswith(b'\x89PNG\r\n\x1a\n')
    assert demo_page.stat().st_size < 600_000, demo_page.stat().st_size
    for text in ('x3+x3_twin', 'What grouping changed', 'retrain seed 1', 'drop_above_noise', 'zip'): assert text in page, text


@needs_chromium
def test_demo_report_in_chromium(demo_page, tmp_path):
    shot = tmp_path / 'demo_report.png'
    facts = open_in_chromium(demo_page, screenshot=shot)
    check_page(facts, EXPECTED_IMAGES)
    png = shot.read_bytes()
    assert png.startswith(b'\x89PNG') and len(png) > 50_000
    from PIL import Image
    assert Image.open(shot).size == (1280, min(4000, facts['height']))
    print(f"screenshot: {shot} ({len(png) / 1e3:.0f} kB; page height {facts['height']} px)")


@needs_chromium
def test_the_browser_check_catches_errors(tmp_path):
    "The checks are not vacuous: a console error, a script error, a broken image and a request out of the file are all seen."
    page = tmp_path / 'bad.html'
    page.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><title>bad</title></head><body><section id="a"><p class="how">x</p>'
                    '<img src="data:image/png;base64,AAAA" alt="broken"><img src="http://127.0.0.1:9/x.png" alt="outside"></section>'
                    '<script>console.error("boom"); undefined_function();</script></body></html>')
    facts = open_in_chromium(page)
    assert [c['type'] for c in facts['console']] == ['error'] and len(facts['exceptions']) == 1
    assert any(u.startswith('http://127.0.0.1:9/') for u in facts['requests'])
    assert [i['width'] for i in facts['images']] == [0, 0]
    with pytest.raises(AssertionError, match='boom'): check_page(facts, {'a': 2})                 # the console error
    quiet = dict(facts, console=[], exceptions=[], log=[])
    with pytest.raises(AssertionError, match='127.0.0.1:9'): check_page(quiet, {'a': 2})          # then the request out of the file


def test_fold_view_legend_names_the_fold_dots():
    "The fold view's legend says what the dots are (it showed matplotlib's '_child12' before)."
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from fastai_featimp.all import importance_table, combine_importance, plot_importance, plot_methods
    folds = [importance_table(['a', 'b'], ['continuous', 'categorical'], [[1.0 + k, 1.2], [0.1, 0.3 + k]]) for k in range(3)]
    ax = plot_importance(combine_importance(folds))
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ['continuous', 'categorical', 'fold values']
    cmp = pd.DataFrame({'feature': ['a'], 'type': ['continuous'], 'permutation': [1.0], 'drop_column': [0.5]})
    assert all(len(line) <= 70 for line in plot_methods(cmp).get_title().splitlines())   # the long title is wrapped, not cut off
    plt.close('all')


@pytest.fixture(scope='module')
def continuous_only(request):
    "A learner with continuous columns only, one of them with a very long name (no embeddings to report)."
    from conftest import train_tabular
    from fastai.tabular.all import RegressionBlock, rmse
    long = 'x1_' + 'measured_in_a_rather_long_unit_name_' * 4
    df = make_demo_data(1500, 'regression', seed=4, missing=0.0).drop(columns=['shade', 'zip']).rename(columns={'x1': long})
    learn, test_df = train_tabular(df, [], [long, 'x2', 'x3', 'x3_twin', 'noise'], 'y', RegressionBlock(), rmse, n_valid=300, n_test=300, seed=4, epochs=2)
    return learn, test_df, long


@pytest.mark.filterwarnings("ignore:the H-statistic on")
def test_sections_that_do_not_apply_are_left_out(continuous_only, tmp_path):
    learn, test_df, long = continuous_only
    before, training = test_df.copy(), learn.model.training
    p = learn.importance_report(test_df, tmp_path / 'r.html', seed=0, top_k=2, n_explain=20, max_rows=100, h_rows=30)
    page = p.read_text(encoding='utf-8')
    assert re.findall(r'<section id="(\w+)"', page) == ['data', 'importance', 'groups', 'dependence', 'interactions', 'shapley']
    assert 'Embedding sizes: no categorical columns' in page and 'no fold tables were given' in page
    assert f'<td class="text">{long}</td>' in page                       # the long name is kept whole in the tables
    pd.testing.assert_frame_equal(test_df, before); assert learn.model.training == training
    if CHROMIUM is not None:                                              # and wraps instead of widening the page
        facts = open_in_chromium(p, width=900, height=1500)
        check_page(facts, dict(data=0, importance=1, groups=1, dependence=2, interactions=1, shapley=1))


def test_bad_arguments_fail_before_any_work(continuous_only, tmp_path):
    learn, test_df, _ = continuous_only
    interp = FeatureInterpretation.from_learner(learn, df=test_df)
    calls = []
    interp.importance = lambda *a, **k: calls.append(1)   # nothing may be computed before the arguments are checked
    for kw, msg in [(dict(sections='embedding'), "unknown section(s) ['embedding']"), (dict(sections=['methods']), "asks for 'methods'"),
                    (dict(max_rows=1), 'max_rows must be an int >= 2'), (dict(n_explain=0), 'n_explain must be an int >= 1'),
                    (dict(auto_threshold=2), 'auto_threshold must be'), (dict(folds="nope.csv"), "do not exist"),
                    (dict(comparison=pd.DataFrame({'feature': ['a']})), 'comparison tables come from')]:
        with pytest.raises((ValueError, TypeError), match=re.escape(msg)): interp.report(tmp_path / 'x.html', **kw)
    assert calls == [] and not (tmp_path / 'x.html').exists()


if __name__ == '__main__':
    if sys.argv[1:] != ['--docs']: sys.exit('usage: python tests/test_report.py --docs   (rebuilds nbs/images/demo_report.html and .png)')
    images = Path(__file__).resolve().parents[1] / 'nbs' / 'images'
    images.mkdir(exist_ok=True)
    t = time.perf_counter()
    path = demo_report(images / 'demo_report.html', seed=0)
    print(f"demo report (default settings) written in {time.perf_counter() - t:.1f} s: {path} ({path.stat().st_size / 1e3:.0f} kB)")
    full = Path(tempfile.mkdtemp()) / 'full.png'
    facts = open_in_chromium(path, screenshot=full, height=4000)
    check_page(facts, EXPECTED_IMAGES)
    from PIL import Image   # the docs keep the top 1280 x 4000 of the page, in 256 colours (a few hundred kB)
    Image.open(full).convert('RGB').quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(images / 'demo_report.png')
    print(f"checked in {CHROMIUM}: {len(facts['sections'])} sections, {len(facts['images'])} images, no console messages; "
          f"screenshot of the top 4000 px of {facts['height']}: {images / 'demo_report.png'} ({(images / 'demo_report.png').stat().st_size / 1e3:.0f} kB)")


def test_fold_view_states_rank_agreement_and_flips(tmp_path):
    "The fold view gives Kendall's W and names the features whose sign flips between the tables."
    from fastai_featimp.all import importance_table, importance_stability
    a = importance_table(['x1', 'x2', 'zz'], ['continuous'] * 3, [[1.0, 1.2], [0.5, 0.4], [0.1, 0.2]])
    b = importance_table(['x1', 'x2', 'zz'], ['continuous'] * 3, [[0.9, 1.1], [0.6, 0.5], [-0.1, -0.2]])
    st = importance_stability([a, b])
    assert st.attrs['unstable'] == [] and st.attrs['kendalls_w'] == pytest.approx(1.0)     # zz is never important: no verdict flips
    assert st.set_index('feature').sign_flips.to_dict() == {'x1': False, 'x2': False, 'zz': True}
    from fastai_featimp.present.report import _folds_section
    from fastai_featimp.core.tables import combine_importance
    html = _folds_section(combine_importance([a, b]), 'png')
    assert "Kendall's W = 1.00" in html and '<code>zz</code>' in html and 'flips' in html
