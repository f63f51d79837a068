"""Build the documentation site: nbs/*.ipynb -> static HTML (Sphinx + MyST-NB).

    python tools/build_docs.py [--out docs/_build/html] [--proc _proc] [--nbs nbs]

1. nbdev processes every notebook itself (`nbdev.process.NBProcessor` with the processors of
   `nbdev.processors`, as `nbdev_docs` would): directives are parsed by nbdev, `#| hide`, export and
   `default_exp` cells are dropped, magics removed, and after every exported definition nbdev adds a
   `show_doc` cell and runs it (`exec_show_docs`, nbdev's `show_doc`: signature, docstring, the
   per-parameter comments). Stored outputs are kept: no notebook is re-run.
2. The Sphinx hand-off (what Quarto would do with nbdev's output): Quarto cell options become MyST-NB tags,
   `output: asis` cells (the API docs) become markdown under the current heading, front matter is dropped.
3. The site's Results page is the results chapter itself (`*_results.ipynb`: its stored outputs, computed from
   the committed files under results/ by `resnet_fast.report` and `resnet_fast.claims`); nothing is generated here.
4. Sphinx builds PROC/ into OUT/ with MyST-NB (stored outputs, never executed), `-W --keep-going -n`:
   any warning (broken cross-reference, missing image, ...) fails the build.
"""
from __future__ import annotations
import argparse, ast, contextlib, json, os, re, shutil, subprocess, sys, time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NBS = REPO / 'nbs'
DOCS = REPO / 'docs'

# ---------------------------------------------------------------------------------------------------------
# 1-2. Notebooks: nbdev's processing, then the hand-off to MyST-NB
# ---------------------------------------------------------------------------------------------------------
_QUARTO_OPT = re.compile(r'^\s*#\s*\|\s*([\w-]+)\s*:\s*(.*?)\s*$')

def _only_imports(cell) -> bool:
    try: tree = ast.parse(cell.source)
    except SyntaxError: return False
    return bool(tree.body) and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body)

def _procs():
    "nbdev's documentation processors (`FilterDefaults.base_procs`) less the Quarto-only ones, then the Sphinx hand-off."
    from nbdev.processors import (populate_language, add_show_docs, strip_ansi, hide_line, filter_stream_, rm_header_dash,
                                  clean_show_doc, exec_show_docs, rm_export, ai_magics, clean_magics, hide_, mv_exports,
                                  strip_hidden_metadata)

    class exec_show_docs_stored(exec_show_docs):
        """nbdev's `exec_show_docs`, for a site that shows stored outputs: it runs what `show_doc` needs (exported
        cells, import-only cells, the `show_doc` cells) and nothing else, and only the `show_doc` cells get new outputs."""
        def __call__(self, cell):
            if cell.cell_type != 'code': return
            show = getattr(cell, 'has_sd', False)
            if not (show or cell.directives_.keys() & {'export', 'exports', 'exporti', 'exec_doc'} or _only_imports(cell)): return
            stored = (cell.get('outputs'), cell.get('execution_count'))
            super().__call__(cell)
            if not show: cell['outputs'], cell['execution_count'] = stored

    # FrontmatterProc, insert_warning, add_links and add_fold write Quarto: front matter, doc_host links, code folds.
    return [populate_language, add_show_docs, strip_ansi, hide_line, filter_stream_, rm_header_dash, clean_show_doc,
            exec_show_docs_stored, rm_export, ai_magics, clean_magics, hide_, mv_exports, strip_hidden_metadata, SphinxHandoff]

class SphinxHandoff:
    """What Quarto would do with nbdev's processed notebook, for MyST-NB: front matter dropped, the Quarto cell
    options nbdev leaves in the source turned into MyST-NB tags (`echo: false` -> remove-input, `output: false`
    -> remove-output, `include: false` -> no cell), `output: asis` cells (`show_doc`) turned into markdown,
    their headings one level below the section they document."""
    def __init__(self, nb):
        from nbdev.processors import _default_exp
        self.nb, self.level, self.module = nb, 1, _default_exp(nb)

    def begin(self): pass

    def __call__(self, cell):
        if cell.cell_type == 'raw':
            if cell.source.lstrip().startswith('---'): del cell['source']
            return
        if cell.cell_type == 'markdown':
            for m in re.finditer(r'^(#{1,6})\s', cell.source, re.M): self.level = len(m.group(1))
            return
        lines, opts = cell.source.splitlines(), {}
        while lines and (m := _QUARTO_OPT.match(lines[0])):
            opts[m.group(1)] = m.group(2).strip('\'"').lower(); lines.pop(0)
        cell.source = '\n'.join(lines).strip('\n')
        if opts.get('include') == 'false' or not cell.source.strip() and not cell.get('outputs'):
            del cell['source']; return
        if opts.get('output') == 'asis':
            md = [''.join(o['data']['text/markdown']) for o in cell.get('outputs', []) if 'text/markdown' in o.get('data', {})]
            cell.cell_type, cell.source = 'markdown', '\n\n'.join(self.api_markdown(m) for m in md)
            for k in ('outputs', 'execution_count'): cell.pop(k, None)
            if not cell.source.strip(): del cell['source']
            return
        for o in cell.get('outputs', []):
            if 'text/html' in o.get('data', {}): o['data']['text/html'] = self.wrappable_headers(o['data']['text/html'])
        tags = list(cell.get('metadata', {}).get('tags', []))
        if opts.get('echo') == 'false': tags.append('remove-input')
        if opts.get('output') == 'false': tags.append('remove-output')
        if tags: cell.setdefault('metadata', {})['tags'] = list(dict.fromkeys(tags))
        cell['execution_count'] = None

    @staticmethod
    def wrappable_headers(html):
        "Column names of HTML tables (pandas: `test_loss_half_no_aug`) may wrap after an underscore, so the table fits the column."
        html = ''.join(html) if isinstance(html, list) else html
        return re.sub(r'(<th\b[^>]*>)([^<]+)(</th>)', lambda m: m.group(1) + m.group(2).replace('_', '_<wbr>') + m.group(3), html)

    def api_markdown(self, md:str) -> str:
        "nbdev's `show_doc` markdown without its Quarto-only parts (rule, `{target=...}` source link), a label before each heading."
        md = re.sub(r'^---\s*$', '', md, flags=re.M)
        md = re.sub(r'^\[source\]\([^)]*\)\{[^}]*\}\s*$', '', md, flags=re.M)
        level = min(self.level + 1, 6)
        def heading(m):
            name = m.group(2).strip()
            label = re.sub(r'[^\w-]+', '-', f'api-{self.module or "nb"}-{name}').strip('-').lower()
            return f'({label})=\n{"#" * level} `{name}`'
        md = re.sub(r'^(#{1,6})\s+(.+?)\s*$', heading, md, flags=re.M)
        return re.sub(r'\n{3,}', '\n\n', md).strip()

@contextlib.contextmanager
def _cwd(path:Path):
    old = os.getcwd(); os.chdir(path)
    try: yield
    finally: os.chdir(old)

def preprocess(nb_path:Path, extra_md:str='') -> dict:
    "The notebook as nbdev processes it for its docs, handed to MyST-NB (plain nbformat-4 JSON)."
    from execnb.nbio import read_nb
    from nbdev.process import NBProcessor
    nb = read_nb(nb_path)
    nb.path_ = str(nb_path)
    with _cwd(nb_path.parent):  # the show_doc cells run where Jupyter would run the notebook
        NBProcessor(nb=nb, procs=_procs()).process()
    cells = []
    for i, c in enumerate(nb.cells):
        cell = dict(cell_type=c.cell_type, id=c.get('id') or f'docs-{i}', metadata=dict(c.get('metadata', {})), source=c.source)
        cell['metadata'].pop('language', None)  # set by populate_language
        if c.cell_type == 'code': cell.update(outputs=[dict(o) for o in c.get('outputs', [])], execution_count=None)
        if c.get('attachments'): cell['attachments'] = c.attachments
        cells.append(cell)
    if extra_md: cells.append(dict(cell_type='markdown', id='docs-toc', metadata={}, source=extra_md))
    meta = {'kernelspec': nb.metadata.get('kernelspec') or {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'},
            'language_info': {'name': 'python'}}
    return _plain(dict(nbformat=4, nbformat_minor=5, metadata=meta, cells=cells))

def _plain(o):
    if isinstance(o, dict): return {k: _plain(v) for k, v in o.items() if not k.endswith('_') and k != 'has_sd'}
    if isinstance(o, (list, tuple)): return [_plain(v) for v in o]
    return o

def find_chapter(nbs_dir:Path, *suffixes:str) -> str | None:
    "Stem of the first notebook whose name ends with `_<suffix>` (chapters are renamed and renumbered: never hard-code one)."
    for s in suffixes:
        hits = sorted(nbs_dir.glob(f'*_{s}.ipynb'))
        if hits: return hits[0].stem
    return None

def chapter_refs(text:str, chapters:list[str]) -> str:
    "In the hand-written pages, {doc}`fast_recipe` names the chapter `NN_fast_recipe` whatever its number."
    def sub(m):
        hits = [c for c in chapters if re.fullmatch(rf'\d+[a-z]?_{re.escape(m.group(1))}', c)]
        return f'{{doc}}`{hits[0]}`' if m.group(1) not in chapters and len(hits) == 1 else m.group(0)
    return re.sub(r'\{doc\}`([\w-]+)`', sub, text)

# ---------------------------------------------------------------------------------------------------------
# 3-4. The Results page and Sphinx: the site's hand-written sources (conf.py, static files, the rerun page) live in docs/
# ---------------------------------------------------------------------------------------------------------
def results_notebook(nbs_dir:Path) -> str | None:
    "The chapter that decides part 2's claims from the committed runs (`*_results.ipynb`, whatever its number): the site's Results page."
    return find_chapter(nbs_dir, 'results')

def build(out:Path, proc:Path, quiet:bool=True, nbs_dir:Path=NBS) -> float:
    t0 = time.perf_counter()
    if proc.exists(): shutil.rmtree(proc)
    shutil.copytree(DOCS, proc, ignore=shutil.ignore_patterns('_build', 'screenshots'))
    nbs = sorted(nbs_dir.glob('*.ipynb'), key=lambda p: (p.name != 'index.ipynb', p.name))
    if not nbs or nbs[0].name != 'index.ipynb': sys.exit(f'build_docs: no index.ipynb in {nbs_dir}')
    results = results_notebook(nbs_dir)
    chapters = [p.stem for p in nbs[1:]]
    hand_written = sorted(p.stem for p in DOCS.glob('*.md')  # docs/rerun.md and the other pages written by hand, orphans aside
                          if not re.match(r'---\s*\n(?:.*\n)*?orphan:\s*true', p.read_text()))
    extra = [*([results] if results else []), *(['rerun'] if 'rerun' in hand_written else []), *(p for p in hand_written if p != 'rerun')]
    toc = '\n'.join(['```{toctree}', ':caption: Chapters', ':hidden:', '', *(c for c in chapters if c != results), '```', '',
                     '```{toctree}', ':caption: Results', ':hidden:', '', *extra, '```'])
    for md in proc.rglob('*.md'): md.write_text(chapter_refs(md.read_text(), chapters))
    for p in nbs:
        nb = preprocess(p, toc if p.name == 'index.ipynb' else '')
        (proc / p.name).write_text(json.dumps(nb, indent=1))
    if out.exists(): shutil.rmtree(out)
    # Sphinx writes into PROC/_build/html (MyST-NB puts its jupyter_execute/ beside the output folder, so it stays
    # inside PROC); the finished site is copied to OUT only when the build has no warning at all.
    html = proc / '_build' / 'html'
    cmd = [sys.executable, '-m', 'sphinx', '-b', 'html', '-W', '--keep-going', '-n', '-E', '-j', '1',
           *(['-q'] if quiet else []), '-d', str(proc / '_build' / 'doctrees'), str(proc), str(html)]
    res = subprocess.run(cmd)
    if res.returncode != 0: sys.exit(f'build_docs: sphinx failed (exit {res.returncode}): warnings are errors; nothing was written to {out}')
    shutil.copytree(html, out)
    missing = [n for n in ['index', *chapters, *extra] if not (out / f'{n}.html').exists()]
    if missing: sys.exit(f'build_docs: pages missing from {out}: {missing}')
    return time.perf_counter() - t0

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--out', default=str(DOCS / '_build' / 'html'), help='where the HTML site goes (default: docs/_build/html)')
    ap.add_argument('--proc', default=str(REPO / '_proc'), help='intermediate folder of preprocessed sources (default: _proc)')
    ap.add_argument('--nbs', default=str(NBS), help='notebooks folder (default: nbs)')
    ap.add_argument('-v', '--verbose', action='store_true')
    a = ap.parse_args(argv)
    took = build(Path(a.out).resolve(), Path(a.proc).resolve(), quiet=not a.verbose, nbs_dir=Path(a.nbs).resolve())
    print(f'build_docs: site written to {a.out} in {took:.1f} s')

if __name__ == '__main__': main()
