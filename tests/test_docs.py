"""The documentation site builds (Sphinx + MyST-NB, warnings are errors) and every page works in a real browser.

The browser tests drive headless chromium through chromedriver: `make test` finds them or installs Debian's
(`apt-get install chromium chromium-driver`, as root); where they are missing these tests skip and say what to run.
$RESNET_FAST_CHROMIUM / $RESNET_FAST_CHROMEDRIVER point at other binaries. Screenshots of the home page, a chapter
and the results page go to $RESNET_FAST_SCREENSHOTS (default: the pytest tmp dir)."""
import functools, http.server, json, os, shutil, subprocess, sys, tempfile, threading, urllib.request
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
    for n in chapters + ['rerun.html']: assert n in names, f'{n} missing from the site'

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
    "The chapter shown in the screenshot: the fastest recipe's (`*_fastest`), else the one whose stored outputs hold the most HTML tables."
    chapters = [p for p in sorted(NBS.glob('*.ipynb')) if p.stem != 'index']
    fastest = [p for p in chapters if p.stem.endswith('_fastest')]
    return (fastest[0] if fastest else max(chapters, key=lambda p: p.read_text(encoding='utf-8').count('<table'))).stem + '.html'

def full_page_shot(browser, path:Path, width:int=1280):
    "A screenshot of the whole page (up to 12000 px) at `width`, the narrowest window the tables are checked at."
    browser.set_window_size(width, 1000)
    browser.set_window_size(width, min(browser.execute_script('return document.documentElement.scrollHeight'), 12000))
    browser.save_screenshot(str(path))
    browser.set_window_size(1280, 2000)

def test_tables_fit_the_content_column(site, server, browser):
    """At every window width a reader may use, no table of any page is wider than the content column, runs under
    the right-hand contents, or hides columns in a box that scrolls sideways: every table is read without scrolling."""
    bad, scrolled, n = [], [], 0
    for width in WIDTHS:
        browser.set_window_size(width, 1200)
        for page in pages(site):
            browser.get(server + page)
            b, sc, k = browser.execute_script(TABLES_FIT)
            bad += [f'{page} at {width} px: {x}' for x in b]; scrolled += [f'{page} at {width} px: {x}' for x in sc]; n += k
    browser.set_window_size(1280, 2000)
    print(f'{n} tables checked on {len(pages(site))} pages at {", ".join(map(str, WIDTHS))} px')
    assert n, 'no table found on any page'
    assert not bad + scrolled, '\n'.join(bad + scrolled)

def test_code_blocks_wrap_inside_the_column(site, server, browser):
    "At 1280 px no code block or printed output hides its line ends (comments included) in a sideways scroll."
    browser.set_window_size(1280, 1200)
    hidden = []
    for page in pages(site):
        browser.get(server + page)
        hidden += [f'{page}: {x}' for x in browser.execute_script(
            "return [...document.querySelectorAll('article pre')].filter(p => p.scrollWidth > p.clientWidth + 1)"
            ".map(p => `${p.scrollWidth} px in ${p.clientWidth} px: ` + p.innerText.split('\\n').sort((a, b) => b.length - a.length)[0].slice(0, 80))")]
    browser.set_window_size(1280, 2000)
    assert not hidden, '\n'.join(hidden)

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
    "The Results page is the results chapter: the verdict table, every stored figure decoded, and every recipe's fastest benchmark."
    from resnet_fast.report import bench_table
    nb = build_docs.results_notebook(NBS)
    assert nb, 'no results chapter (*_results.ipynb) in the notebooks'
    browser.get(server + 'index.html')
    assert browser.find_elements('css selector', f'a[href="{nb}.html"]'), 'the sidebar does not link the Results page'
    browser.get(server + f'{nb}.html')
    body = browser.find_element('css selector', 'article').text
    assert 'Claim by claim' in body and 'Time to 94%' in body
    stored = sum('image/png' in o.get('data', {}) for c in json.loads((NBS / f'{nb}.ipynb').read_text())['cells'] for o in c.get('outputs', []))
    figures = browser.find_elements('css selector', 'article img')
    assert len(figures) >= stored > 0, f"the results page shows {len(figures)} images of the chapter's {stored} stored figures"
    assert all(browser.execute_script('return arguments[0].naturalWidth', f) > 0 for f in figures)
    tables = [t.text for t in browser.find_elements('css selector', 'article table')]
    times = bench_table(REPO / 'results')
    for r in times.itertuples():  # every recipe's fastest record on each machine is listed, the fastest recipe included
        assert any(r.record in t and f'{r.median_s:.1f}' in t for t in tables), f'{r.record} ({r.median_s} s) is not in the time-to-94% table'
    full_page_shot(browser, shots / 'results.png')

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
