"""The documentation site builds (Sphinx + MyST-NB, warnings are errors) and every page works in a real browser.

The browser tests drive headless chromium through chromedriver: `make test` finds them or installs Debian's
(`apt-get install chromium chromium-driver`, as root); where they are missing these tests skip and say what to run.
$RESNET_FAST_CHROMIUM / $RESNET_FAST_CHROMEDRIVER point at other binaries. Screenshots of the home page, a chapter
and the results page go to $RESNET_FAST_SCREENSHOTS (default: the pytest tmp dir)."""
import functools, http.server, json, os, shutil, socket, subprocess, sys, tempfile, threading, urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlparse, urldefrag
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tools'))
import build_docs

NBS = Path(os.environ.get('RESNET_FAST_DOCS_NBS') or REPO / 'nbs').resolve()  # the notebooks the site is built from
INSTALL = 'sudo apt-get update && sudo apt-get install -y chromium chromium-driver'

def find_browser() -> tuple[str | None, str | None]:
    "chromium and chromedriver: $RESNET_FAST_CHROMIUM / $RESNET_FAST_CHROMEDRIVER, else the first on PATH."
    chromium = os.environ.get('RESNET_FAST_CHROMIUM') or next(
        (p for p in map(shutil.which, ('chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable')) if p), None)
    driver = os.environ.get('RESNET_FAST_CHROMEDRIVER') or shutil.which('chromedriver')
    return chromium, driver

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "Build the site once into a temporary folder (the same command as `make docs`, other output folders)."
    d = tmp_path_factory.mktemp('docs')
    res = subprocess.run([sys.executable, REPO / 'tools' / 'build_docs.py', '--out', d / 'site', '--proc', d / 'proc', '--nbs', NBS],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, f'build_docs.py failed:\n{res.stdout[-5000:]}\n{res.stderr[-5000:]}'
    return d / 'site'

@pytest.fixture(scope='module')
def server(site):
    "The site served over HTTP on 127.0.0.1 (not file://), from a thread."
    handler = functools.partial(_QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    t = threading.Thread(target=httpd.serve_forever, daemon=True); t.start()
    yield f'http://127.0.0.1:{httpd.server_address[1]}/'
    httpd.shutdown(); httpd.server_close()

class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass
    def handle(self):
        try: super().handle()
        except (BrokenPipeError, ConnectionResetError): pass  # the browser dropped a request it no longer needed

@pytest.fixture(scope='module')
def browser():
    chromium, chromedriver = find_browser()
    if not (chromium and chromedriver):
        missing = ' and '.join(n for n, p in (('chromium', chromium), ('chromedriver', chromedriver)) if not p)
        pytest.skip(f'{missing} not found, so the site was not checked in a browser: install them with `{INSTALL}` '
                    '(Debian/Ubuntu; `make test` does this itself when run as root), or set $RESNET_FAST_CHROMIUM and '
                    '$RESNET_FAST_CHROMEDRIVER, then run `make test` again')
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    profile = tempfile.mkdtemp(prefix='resnet_fast_chromium_')
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ('--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync',
                 '--disable-dev-shm-usage', f'--user-data-dir={profile}', '--window-size=1280,2000', '--hide-scrollbars'):
        opts.add_argument(flag)
    opts.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
    # An explicit driver path: selenium-manager never downloads anything.
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=opts)
    driver.set_window_size(1280, 2000); driver.set_page_load_timeout(60)
    yield driver
    driver.quit(); shutil.rmtree(profile, ignore_errors=True)

@pytest.fixture(scope='module')
def shots(tmp_path_factory):
    d = Path(os.environ.get('RESNET_FAST_SCREENSHOTS') or tmp_path_factory.mktemp('screenshots'))
    d.mkdir(parents=True, exist_ok=True)
    return d

def pages(site):
    return sorted(p.relative_to(site).as_posix() for p in site.glob('*.html'))

class _Links(HTMLParser):
    def __init__(self): super().__init__(); self.links = []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'a' and a.get('href'): self.links.append(a['href'])
        if tag in ('img', 'script') and a.get('src'): self.links.append(a['src'])
        if tag == 'link' and a.get('href'): self.links.append(a['href'])

def test_expected_pages(site):
    names = pages(site)
    chapters = [p.stem + '.html' for p in sorted(NBS.glob('*.ipynb'))]
    for n in chapters + ['results.html', 'rerun.html']: assert n in names, f'{n} missing from the site'

def test_every_page_in_browser(site, server, browser):
    "Every page loads with no SEVERE console message, and every <img> is decoded (naturalWidth > 0)."
    problems = []
    for page in pages(site):
        browser.get(server + page)
        browser.execute_script('window.scrollTo(0, document.body.scrollHeight)')  # load lazy images
        browser.execute_async_script('''const done = arguments[arguments.length - 1];
            Promise.all([...document.images].map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })))
                   .then(() => done());''')
        errors = [e['message'] for e in browser.get_log('browser') if e['level'] == 'SEVERE']
        if errors: problems.append(f'{page}: console errors {errors}')
        broken = browser.execute_script('return [...document.images].filter(i => !(i.naturalWidth > 0)).map(i => i.src)')
        if broken: problems.append(f'{page}: images not loaded {broken}')
        if page != 'search.html' and not browser.find_element('css selector', 'article').text.strip(): problems.append(f'{page}: empty article')
    assert not problems, '\n'.join(problems)

def test_internal_links_resolve(site, server):
    "Every same-host link, image, script and stylesheet of every page answers HTTP 200."
    host, checked, bad = urlparse(server).netloc, set(), []
    for page in pages(site):
        parser = _Links(); parser.feed((site / page).read_text())
        for href in parser.links:
            url = urldefrag(urljoin(server + page, href))[0]
            if urlparse(url).netloc != host or url in checked: continue
            checked.add(url)
            try:
                with urllib.request.urlopen(url, timeout=10) as r: status = r.status
            except Exception as e: status = getattr(e, 'code', repr(e))
            if status != 200: bad.append(f'{page} -> {href}: {status}')
    assert checked, 'no internal links found'
    assert not bad, '\n'.join(bad)

def test_no_nbdev_directives_shown(site):
    "Shown code never carries `#|` directive lines or the export call."
    import re
    for page in pages(site):
        html = (site / page).read_text()
        for block in re.findall(r'<div class="highlight[^"]*"><pre>(.*?)</pre>', html, re.S):
            text = re.sub(r'<[^>]+>', '', block)
            assert not re.search(r'^\s*#\s?\|', text, re.M), f'{page}: a #| directive is shown: {text[:200]}'
            assert 'nbdev_export()' not in text, f'{page}: the nbdev_export() cell is shown'

def test_api_docs_generated(site):
    "Exported functions get nbdev-style docs, with the per-parameter comments."
    html = (site / '00_data.html').read_text()
    assert 'id="api-data-stratified-subset"' in html or 'api-data-stratified_subset' in html
    assert 'Number of samples to keep' in html  # the docment of `size`

# What a reader's window may be: furo shows the right-hand contents from about 1312 px on.
WIDTHS = (1280, 1600)
TABLES_FIT = """
const art = document.querySelector('article[role=main]') || document.querySelector('article');
const box = art.getBoundingClientRect();
const toc = document.querySelector('.toc-drawer');
const tocBox = toc && toc.offsetWidth > 0 && getComputedStyle(toc).visibility !== 'hidden' ? toc.getBoundingClientRect() : null;
const bad = [], scrolled = [];
for (const t of art.querySelectorAll('table')) {
  let shown = t;  // what the reader sees: the table, or the horizontally scrolling box it sits in
  for (let e = t.parentElement; e && e !== art; e = e.parentElement) {
    if (['auto', 'scroll'].includes(getComputedStyle(e).overflowX)) { shown = e; break; }
  }
  const r = shown.getBoundingClientRect();
  const what = (t.closest('section') && t.closest('section').id || '?') + ': ' + t.innerText.slice(0, 60).replace(/\\s+/g, ' ');
  const width = Math.max(r.width, shown === t ? t.scrollWidth : 0);
  if (width > art.clientWidth + 1 || r.right > box.right + 1 || r.left < box.left - 1)
    bad.push(`${what} is ${Math.round(width)} px wide, the content column ${art.clientWidth} px`);
  else if (tocBox && tocBox.width > 0 && r.right > tocBox.left + 1 && r.top < tocBox.bottom && r.bottom > tocBox.top)
    bad.push(`${what} runs under the right-hand contents`);
  if (shown !== t && t.scrollWidth > shown.clientWidth + 1) scrolled.push(`${what} scrolls (${t.scrollWidth} px in ${shown.clientWidth} px)`);
}
return [bad, scrolled, art.querySelectorAll('table').length];
"""

def chapter_page(site) -> str:
    "The chapter shown in the screenshot: the one whose stored outputs hold the most HTML tables (the first chapter if none)."
    chapters = [p for p in sorted(NBS.glob('*.ipynb')) if p.stem != 'index']
    return max(chapters, key=lambda p: p.read_text(encoding='utf-8').count('<table')).stem + '.html'

def full_page_shot(browser, path:Path, width:int=1440):
    "A screenshot of the whole page (up to 6000 px) at `width`, wide enough for the right-hand contents."
    browser.set_window_size(width, 1000)
    browser.set_window_size(width, min(browser.execute_script('return document.documentElement.scrollHeight'), 6000))
    browser.save_screenshot(str(path))
    browser.set_window_size(1280, 2000)

def test_tables_fit_the_content_column(site, server, browser):
    """At every window width a reader may use, no table of any page is wider than the content column or runs under
    the right-hand contents (a table scrolling inside a box that fits the column is allowed)."""
    bad, scrolled, n = [], [], 0
    for width in WIDTHS:
        browser.set_window_size(width, 1200)
        for page in pages(site):
            browser.get(server + page)
            b, sc, k = browser.execute_script(TABLES_FIT)
            bad += [f'{page} at {width} px: {x}' for x in b]; scrolled += [f'{page} at {width} px: {x}' for x in sc]; n += k
    browser.set_window_size(1280, 2000)
    if scrolled: print('tables that scroll sideways inside the column:', *scrolled, sep='\n  ')
    assert n, 'no table found on any page'
    assert not bad, '\n'.join(bad)

def test_home_page(server, browser, shots):
    browser.get(server + 'index.html')
    assert 'resnet_fast' in browser.title
    for link in ('Results', 'How to rerun', 'Data'): assert link in browser.find_element('css selector', 'body').text
    full_page_shot(browser, shots / 'home.png')

def test_chapter_page(site, server, browser, shots):
    page = chapter_page(site)
    browser.get(server + page)
    assert browser.find_element('css selector', 'article h1').text.strip(), f'{page} has no title'
    full_page_shot(browser, shots / 'chapter.png')

def test_results_page(server, browser, shots):
    browser.get(server + 'results.html')
    body = browser.find_element('css selector', 'body').text
    assert 'Training runs' in body and 'The article against this project' in body
    tables = browser.find_elements('css selector', '.runs-table table')
    assert tables and 'test acc' in tables[0].text, 'the runs table is missing'
    if (REPO / 'results' / 'throughput_cpu.json').exists():
        imgs = browser.find_elements('css selector', 'img[src*="throughput_cpu"]')
        assert imgs and browser.execute_script('return arguments[0].naturalWidth', imgs[0]) > 0, 'the throughput figure is missing'
    nb = build_docs.results_notebook(NBS)
    stored = build_docs.notebook_figures(nb, Path(tempfile.mkdtemp(prefix='resnet_fast_figures_')))
    figures = browser.find_elements('css selector', f'img[src*="{nb.stem}_"]') if nb else []
    assert len(figures) == len(stored), f"the results page shows {len(figures)} of the results notebook's {len(stored)} figures"
    assert all(browser.execute_script('return arguments[0].naturalWidth', f) > 0 for f in figures)
    full_page_shot(browser, shots / 'results.png')

def test_results_tables_from_files(tmp_path):
    "The runs and comparison tables read result files and say *not run yet* where there are none."
    res = tmp_path / 'results'; res.mkdir()
    empty = build_docs.results_page(res, tmp_path / 'gen')
    assert 'not run yet' in empty and '94.08%' in empty
    run = dict(settings=dict(model='resnet9', width=1.0, epochs=24, batch_size=512, lr_mult=1.0, train_size=50_000,
                             augment='crop,flip,cutout', seed=0, precision='bf16'),
               hardware=dict(device='cpu', cpu='Test CPU', cpu_count=2), rows=[], diverged=False, diverged_at=None,
               final=dict(train_loss=0.25, train_acc=0.9, test_loss=0.3125, test_acc=0.9375, train_time=1234.0, epochs_run=24),
               time_to_94=None)
    (res / 'resnet9_test.json').write_text(json.dumps(run))
    page = build_docs.results_page(res, tmp_path / 'gen')
    assert 'results/<wbr>resnet9_<wbr>test.json' in page and '93.75%' in page and '0.312' in page and '1,234 s' in page
    assert '0 of 1 runs >= 94%' in page

def test_build_fails_loudly(tmp_path):
    "A missing image or a broken cross-reference fails the build instead of publishing a hole."
    nbs = tmp_path / 'nbs'; nbs.mkdir()
    shutil.copy(REPO / 'nbs' / 'index.ipynb', nbs)
    for name in [p.name for p in (REPO / 'nbs').glob('*.ipynb') if p.name != 'index.ipynb']:
        broken = 'Broken: ![a figure](no_such_figure.png) and {doc}`no_such_page`.' if name.startswith('00') else 'A chapter.'
        (nbs / name).write_text(json.dumps(dict(nbformat=4, nbformat_minor=5, metadata={}, cells=[
            dict(cell_type='markdown', id='c0', metadata={}, source=f'# {name}\n\n> summary\n\n{broken}')])))
    res = subprocess.run([sys.executable, REPO / 'tools' / 'build_docs.py', '--nbs', nbs, '--out', tmp_path / 'site',
                          '--proc', tmp_path / 'proc'], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode != 0, 'the build should have failed'
    assert 'no_such_figure.png' in res.stderr and 'no_such_page' in res.stderr, res.stderr[-3000:]
    assert not (tmp_path / 'site').exists(), 'a failed build must not publish a site'
