"""What readers see names nothing outside the repository: README.md, every notebook (sources, stored outputs and
metadata), the site's sources in docs/ and results/README.md carry no machine path (/work/, /home/, /tmp/, ...),
no path leaving the repository (../shared, ../../), no home folder other than the documented data cache
~/.cache/resnet_fast, and no issue or pull-request number."""
import json, re
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
URL = re.compile(r'\b[a-z][a-z0-9+.-]*://[^\s)\]\'"<>`]+', re.I)
RULES = [
    ('machine path', re.compile(r'(?<![\w.~/-])/(?:work|root|home|tmp|Users|mnt|media|var|private|opt|srv|scratch|workspace)/')),
    ('machine path', re.compile(r'\b[A-Za-z]:\\\\?[\w.-]')),  # C:\Users...
    ('path outside the repository', re.compile(r'\.\./shared\b|\bshared/data\b|\bshared/docs\b')),
    ('home folder', re.compile(r'~/(?!\.cache/resnet_fast\b)')),
    ('home folder', re.compile(r'\$HOME\b|%USERPROFILE%')),
    ('issue number', re.compile(r'\b(?:issues?|PR|pull request|ticket|bug)\s*#?\s*\d+\b', re.I)),
    ('issue number', re.compile(r'(?<![\w&#/=:\'"-])#\d{1,5}\b(?![\w-])')),
    ('issue number', re.compile(r'\bGH-\d+\b')),
]
URL_RULES = [('issue number', re.compile(r'/(?:issues|pull|pulls)/\d+')),
             ('machine path', re.compile(r'^file://', re.I)),
             ('machine path', re.compile(r'^https?://(?:localhost|127\.0\.0\.1|0\.0\.0\.0)\b', re.I))]

def escapes(text:str, depth:int) -> list[str]:
    "Relative paths climbing more than `depth` folders, out of the repository (README: depth 0, nbs/x.ipynb: depth 1)."
    return [m.group(0) for m in re.finditer(r'(?:\.\./)+', text) if m.group(0).count('../') > depth]

def problems_in(text:str, depth:int) -> list[str]:
    found = []
    for url in URL.findall(text):
        found += [f'{what}: {url}' for what, rx in URL_RULES if rx.search(url)]
    plain = URL.sub(' ', text)
    found += [f'{what}: {m.group(0).strip()!r}' for what, rx in RULES for m in rx.finditer(plain)]
    found += [f'path outside the repository: {e!r}' for e in escapes(re.sub(r'(?:\.\./)+shared\b', ' ', plain), depth)]
    return list(dict.fromkeys(found))

def notebook_texts(path:Path):
    "(where, text) of every readable text of a notebook: metadata, cell sources, stored outputs (images left out)."
    nb = json.loads(path.read_text(encoding='utf-8'))
    yield 'metadata', json.dumps(nb.get('metadata', {}))
    for i, cell in enumerate(nb['cells']):
        src = cell.get('source', '')
        yield f'cell {i} source', ''.join(src) if isinstance(src, list) else src
        for j, out in enumerate(cell.get('outputs', [])):
            parts = [out.get('text', ''), *out.get('traceback', []), out.get('evalue', '')]
            parts += [v for mime, v in out.get('data', {}).items() if not mime.startswith('image/') or mime == 'image/svg+xml']
            parts += [json.dumps(out.get('metadata', {}))]
            for p in parts:
                text = ''.join(p) if isinstance(p, list) else p if isinstance(p, str) else json.dumps(p)
                if text: yield f'cell {i} output {j}', text

def files():
    out = [REPO / 'README.md', REPO / 'results' / 'README.md', *sorted((REPO / 'nbs').glob('*.ipynb'))]
    out += sorted(p for p in (REPO / 'docs').rglob('*') if p.is_file() and '_build' not in p.relative_to(REPO / 'docs').parts
                  and p.suffix in ('.md', '.py', '.css', '.js', '.html', '.txt', '.rst', '.svg', '.ipynb', '.json', '.yml', '.yaml', '.toml'))
    return [p for p in out if p.exists()]

@pytest.mark.parametrize('path', files(), ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_machine_paths_or_issue_numbers(path):
    rel = path.relative_to(REPO)
    depth = len(rel.parts) - 1
    texts = notebook_texts(path) if path.suffix == '.ipynb' else [('', path.read_text(encoding='utf-8'))]
    bad = []
    for where, text in texts:
        for n, line in enumerate(text.splitlines(), 1):
            bad += [f'{rel}{":" if not where else f" {where}, line "}{n}: {p}' for p in problems_in(line, depth)]
    assert not bad, f'{len(bad)} reference(s) to this machine, outside the repository or to issues:\n' + '\n'.join(bad[:200])

@pytest.mark.parametrize('text, flagged', [
    ('data in /work/shared/data/cifar10', True), ('see /root/.cache/x', True), ("Path('/tmp/tmpab12')", True),
    ('cd ../shared/data', True), ('read ../results/x.json', False), ('RESNET_FAST_DATA=/path/to/cifar10', False),
    ('defaults to ~/.cache/resnet_fast/cifar10', False), ('~/data/cifar', True), ('fixes issue 5', True), ('see issue #12', True),
    ('as in #12.', True), ('colour #d9480f and #5f6b7a', False), ('https://github.com/o/r/issues/3', True),
    ('https://github.com/o/r/blob/main/home/x.py', False), ('part 2, figure 3', False), ('# 1. a heading', False),
    ('x[0] #%% cell', False), ('file:///tmp/x.html', True)])
def test_hygiene_rules(text, flagged):
    "The patterns flag what they should and leave ordinary text alone (depth 1: a notebook in nbs/)."
    assert bool(problems_in(text, 1)) == flagged, problems_in(text, 1)

def test_every_long_function_has_its_reason_and_no_module_is_a_warehouse():
    "tools/long_functions.py: every function over 40 lines is named there with why it is one function; no module over 450 lines."
    import subprocess, sys
    res = subprocess.run([sys.executable, REPO / 'tools' / 'long_functions.py'], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
