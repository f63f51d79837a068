"""Build the documentation site: nbs/*.ipynb + the generated Results page -> static HTML (Sphinx + MyST-NB).

    python tools/build_docs.py [--out docs/_build/html] [--proc _proc] [--results results] [--nbs nbs]

1. nbdev processes every notebook itself (`nbdev.process.NBProcessor` with the processors of
   `nbdev.processors`, as `nbdev_docs` would): directives are parsed by nbdev, `#| hide`, export and
   `default_exp` cells are dropped, magics removed, and after every exported definition nbdev adds a
   `show_doc` cell and runs it (`exec_show_docs`, nbdev's `show_doc`: signature, docstring, the
   per-parameter comments). Stored outputs are kept: no notebook is re-run.
2. The Sphinx hand-off (what Quarto would do with nbdev's output): Quarto cell options become MyST-NB tags,
   `output: asis` cells (the API docs) become markdown under the current heading, front matter is dropped.
3. The "Results" page is generated from the committed files under results/ only: nothing is re-run and
   no number is typed in here; its tables are rounded, sorted and sized for the content column.
4. Sphinx builds PROC/ into OUT/ with MyST-NB (stored outputs, never executed), `-W --keep-going -n`:
   any warning (broken cross-reference, missing image, ...) fails the build.
"""
from __future__ import annotations
import argparse, ast, base64, contextlib, csv, json, os, re, shutil, statistics, subprocess, sys, time
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

def chapter_ref(nbs_dir:Path, *suffixes:str, fallback:str='') -> str:
    stem = find_chapter(nbs_dir, *suffixes)
    return f'{{doc}}`{stem}`' if stem else fallback

def chapter_refs(text:str, chapters:list[str]) -> str:
    "In the hand-written pages, {doc}`fast_recipe` names the chapter `NN_fast_recipe` whatever its number."
    def sub(m):
        hits = [c for c in chapters if re.fullmatch(rf'\d+[a-z]?_{re.escape(m.group(1))}', c)]
        return f'{{doc}}`{hits[0]}`' if m.group(1) not in chapters and len(hits) == 1 else m.group(0)
    return re.sub(r'\{doc\}`([\w-]+)`', sub, text)

# ---------------------------------------------------------------------------------------------------------
# 3. Results page: only from committed files under results/
# ---------------------------------------------------------------------------------------------------------
NOT_RUN = '*not run yet*'
RUN_KEYS = {'settings', 'hardware', 'final', 'rows', 'diverged'}
DASH = '–'

def describe_recipe(settings:dict) -> str:
    "The package's own wording of a recipe (imported here, not at module import: the module is being moved)."
    try: from resnet_fast.report import describe_recipe as f
    except ImportError: from resnet_fast.fast import describe_recipe as f
    return f(settings)

def _esc(s) -> str:
    return str(s).replace('|', '\\|').replace('\n', ' ')

def _f(v):
    if isinstance(v, bool): return None
    try: return float(v)
    except (TypeError, ValueError): return None

def num(v) -> str:
    "A setting or count for reading: 50,000; 0.125; 4; 1.1."
    x = _f(v)
    if x is None: return DASH if v in (None, '') else _esc(v)
    return f'{x:,.0f}' if x == int(x) else f'{x:g}'

def fmt(v, digits=4) -> str:
    if v is None or v == '': return DASH
    if isinstance(v, bool) or v in ('True', 'False'): return 'yes' if v in (True, 'True') else 'no'
    x = _f(v)
    if x is None: return _esc(v)
    return f'{x:,.0f}' if abs(x) >= 1e4 else f'{x:.{digits}g}'

def loss(v) -> str:
    x = _f(v)
    return DASH if x is None else f'{x:.3f}'

def pct(v) -> str:
    x = _f(v)
    return DASH if x is None else f'{100 * x:.2f}%'

def secs(v) -> str:
    x = _f(v)
    return DASH if x is None else f'{x:,.0f} s'

def minutes(v) -> str:
    x = _f(v)
    return DASH if x is None else f'{x:,.0f} s ({x / 60:.1f} min)'

def path_cell(path:str) -> str:
    "A file name for a table cell: code that may wrap after `/`, `_` and `=` (a long name must not widen its column)."
    from html import escape
    return '<code class="docutils literal">' + re.sub(r'([/_=])', r'\1<wbr>', escape(path)) + '</code>'

def table(header:list, rows:list, align:str='') -> str:
    "A markdown table; `align` has one letter per column (l or r: numbers are right-aligned)."
    align = (align or 'l' * len(header)).ljust(len(header), 'l')
    out = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---:' if a == 'r' else ':---' for a in align) + '|']
    out += ['| ' + ' | '.join(str(c) for c in r) + ' |' for r in rows]
    return '\n'.join(out)

def machine(hw:dict) -> str:
    if not hw: return DASH
    name = hw.get('gpu') or hw.get('cpu') or hw.get('device', '?')
    extra = f', {hw["cpu_count"]} cores' if 'gpu' not in hw and hw.get('cpu_count') else ''
    return _esc(f'{hw.get("device", "?")}: {name}{extra}')

def load_runs(results:Path) -> list[tuple[str, dict]]:
    runs = []
    for f in sorted(results.glob('*.json')):
        d = json.loads(f.read_text())
        if isinstance(d, dict) and RUN_KEYS <= set(d): runs.append((f.relative_to(results.parent).as_posix(), d))
    s = lambda d, k: _f(d['settings'].get(k)) or 0
    return sorted(runs, key=lambda r: (str(r[1]['settings'].get('model')), s(r[1], 'batch_size'), s(r[1], 'train_size'),
                                       s(r[1], 'epochs'), s(r[1], 'seed'), r[0]))

def load_sweeps(results:Path) -> dict:
    "{(preset, experiment): (path, rows)} of every results/<preset>/<experiment>/results.csv; `smoke` is never a result."
    out = {}
    for f in sorted(results.glob('*/*/results.csv')):
        preset, exp = f.parent.parent.name, f.parent.name
        if preset == 'smoke': continue
        with f.open() as fh: out[(preset, exp)] = (f.relative_to(results.parent).as_posix(), list(csv.DictReader(fh)))
    return out

def sweep_hardware(results:Path, preset:str, exp:str) -> str:
    "The machines named in the metrics files of one sweep folder (every run record carries its `hardware`)."
    names = set()
    for f in (results / preset / exp).glob('*=*.json'):
        if f.name.endswith('.failed.json'): continue
        m = json.loads(f.read_text())
        for r in ([m['run']] if 'run' in m else list(m.get('runs', {}).values())): names.add(machine(r.get('hardware', {})))
    return '; '.join(sorted(names)) or 'hardware not recorded'

def settings_text(s:dict, f:dict) -> str:
    "One cell summarising a run's settings, every value from the record."
    parts = [f'**{_esc(s.get("model", "?"))}** width {num(s.get("width"))}', f'{num(f.get("epochs_run", s.get("epochs")))} epochs',
             f'batch {num(s.get("batch_size"))}', f'LR x{num(s.get("lr_mult"))}', f'{num(s.get("train_size"))} images',
             f'aug {fmt(s.get("augment"))}', f'seed {num(s.get("seed"))}', fmt(s.get('precision'))]
    return ', '.join(parts)

def runs_table(runs) -> str:
    header = ['run', 'settings', 'hardware', 'test acc', 'test loss', 'train loss', 'train time', 'time to 94%']
    rows = []
    for path, d in runs:
        s, f = d['settings'], d['final']
        acc = pct(f.get('test_acc')) + (f' (diverged at epoch {d["diverged_at"]:.2f})' if d.get('diverged') and d.get('diverged_at')
                                        else ' (diverged)' if d.get('diverged') else '')
        rows.append([path_cell(path), settings_text(s, f), machine(d['hardware']), acc, loss(f.get('test_loss')),
                     loss(f.get('train_loss')), secs(f.get('train_time')), secs(d.get('time_to_94'))])
    if not rows: rows.append(['`results/*.json`', NOT_RUN, *[DASH] * (len(header) - 2)])
    return table(header, rows, 'lllrrrrr')

# Sweep columns: settings first (sorted in this order, as numbers), then the measurements.
SETTING_ORDER = ['model', 'width', 'batch_size', 'lr_mult', 'train_size', 'epochs', 'seed']
LABELS = {'lr_mult': 'LR factor', 'batch_size': 'batch', 'train_size': 'train images', 'test_acc': 'test acc',
          'test_loss': 'test loss', 'train_loss': 'train loss', 'train_time': 'train time', 'time_to_94': 'time to 94%',
          'reached_94': 'reached 94%', 'diverged_at': 'diverged at epoch', 'test_loss_half_no_aug': 'test loss (a) half, no aug.',
          'test_loss_full_aug': 'test loss (b) full, aug.', 'test_acc_half_no_aug': 'test acc (a)', 'test_acc_full_aug': 'test acc (b)',
          'recent_tenth_epoch_loss': 'loss, newest tenth of an epoch', 'oldest_replayed_epoch_loss': 'loss, oldest replayed epoch'}

def _cell(col:str, v) -> str:
    if col in ('diverged', 'reached_94'): return fmt(v)
    if '_acc' in col or col.endswith('acc'): return pct(v)
    if 'loss' in col: return loss(v)
    if col.endswith('_time') or col.startswith('time_to'): return secs(v)
    if col in SETTING_ORDER or col == 'diverged_at': return num(v) if col != 'diverged_at' or _f(v) is None else f'{_f(v):.2f}'
    return fmt(v)

def _is_measurement(col:str) -> bool:
    return any(k in col for k in ('acc', 'loss', 'time', 'diverged_at'))

def sweep_table(rows:list) -> str:
    """A sweep's results.csv for reading: settings first and sorted as numbers, measurements rounded; the redundant
    run name and empty columns left out, and a setting that every run shares said once above the table."""
    if not rows: return '*the file has no rows yet*'
    cols = [c for c in rows[0] if c not in ('name', 'reason') and any(r.get(c) not in (None, '') for r in rows)]
    shared = [c for c in cols if not _is_measurement(c) and len({r.get(c) for r in rows}) == 1]
    cols = [c for c in cols if c not in shared]
    settings = sorted((c for c in cols if c in SETTING_ORDER), key=SETTING_ORDER.index)
    cols = [c for c in cols if c == 'status'] + settings + [c for c in cols if c not in settings and c != 'status']
    key = lambda r: tuple((_f(r.get(c)) if _f(r.get(c)) is not None else float('inf'), str(r.get(c))) for c in settings)
    body = [[_cell(c, r.get(c, '')) for c in cols] for r in sorted(rows, key=key)]
    align = ''.join('l' if c in ('status', 'model') else 'r' for c in cols)
    note = ('Every run: ' + ', '.join(f'{LABELS.get(c, c.replace("_", " "))} {_cell(c, rows[0].get(c))}' for c in shared) + '.\n\n') if shared else ''
    return note + table([LABELS.get(c, c.replace('_', ' ')) for c in cols], body, align)

def throughput_section(results:Path, out_dir:Path) -> str:
    f = results / 'throughput_cpu.json'
    if not f.exists(): return f'`results/throughput_cpu.json`: {NOT_RUN} (`python bench/throughput.py --out results/throughput_cpu.json`).'
    d = json.loads(f.read_text())
    hw = d['hardware']
    hw_text = f'{hw.get("gpu") or hw.get("cpu")} ({hw.get("device")}, {hw.get("cpu_count")} cores, {hw.get("torch_threads")} torch threads), torch {hw.get("torch")}, Python {hw.get("python")}'
    rows = [[fmt(r['model']), num(r['batch_size']), fmt(r['resnet_fast_precision']), f'{r["resnet_fast_images_per_s"]:.0f}',
             f'{r["baseline_fp32_workers0_images_per_s"]:.0f}', f'{r["baseline_fp32_workers2_images_per_s"]:.0f}', f'{r["speedup"]:.2f}x']
            for r in sorted(d['rows'], key=lambda r: (-r['speedup'], r['model']))]
    tab = table(['model', 'batch', 'precision', 'resnet_fast images/s', 'baseline fp32, 0 workers', 'baseline fp32, 2 workers',
                 'speed-up'], rows, 'lrlrrrr')
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt, numpy as np
    models = [r['model'] for r in d['rows']]
    series = [('baseline fp32, DataLoader 0 workers', 'baseline_fp32_workers0_images_per_s', '#9aa5b1'),
              ('baseline fp32, DataLoader 2 workers', 'baseline_fp32_workers2_images_per_s', '#5f6b7a'),
              (f'resnet_fast ({d["rows"][0]["resnet_fast_precision"]}, device-side batches)', 'resnet_fast_images_per_s', '#d9480f')]
    x, w = np.arange(len(models)), 0.26
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for i, (label, key, color) in enumerate(series):
        bars = ax.bar(x + (i - 1) * w, [r[key] for r in d['rows']], w, label=label, color=color)
        ax.bar_label(bars, fmt='%.0f', fontsize=8, padding=2)
    ax.set_xticks(x, [f'{m} (batch {r["batch_size"]})' for m, r in zip(models, d['rows'])])
    ax.set_ylabel('training throughput (images/s)'); ax.set_xlabel('model')
    ax.set_title(f'Training throughput on {hw.get("cpu")} ({hw.get("cpu_count")} cores, {hw.get("device")})', fontsize=10)
    ax.legend(fontsize=8, loc='upper right'); ax.margins(y=0.15)
    ax.spines[['top', 'right']].set_visible(False)
    fig.tight_layout(); out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / 'throughput_cpu.png', dpi=110); plt.close(fig)
    return '\n'.join([
        f'From `results/throughput_cpu.json` ({d.get("benchmark", "")}, {d.get("steps")} timed steps after {d.get("warmup")} warm-up steps, '
        f'augmentation: {d.get("augmentation")}, measured {d.get("date")}). Images per second, higher is better.', '',
        f'**Hardware:** {_esc(hw_text)}.', '', tab, '',
        '```{figure} _generated/throughput_cpu.png', ':name: fig-throughput', ':alt: Bar chart of training throughput in images per second',
        ':width: 100%', '',
        f'Training throughput (images/s, higher is better) of resnet_fast against a plain fp32 DataLoader baseline, on {_esc(hw.get("cpu"))}.',
        '```'])

def results_notebook(nbs_dir:Path) -> Path | None:
    "The chapter that draws part 2's figures from the sweep results (`*_results.ipynb`, whatever its number)."
    stem = find_chapter(nbs_dir, 'results')
    return nbs_dir / f'{stem}.ipynb' if stem else None

def notebook_figures(nb_path:Path | None, out_dir:Path) -> list[tuple[str, str]]:
    "Every PNG in the stored outputs of the executed notebook `nb_path`, written to `out_dir`, with the heading it sits under."
    if not nb_path or not nb_path.exists(): return []
    nb, heading, figs = json.loads(nb_path.read_text()), nb_path.stem, []
    for cell in nb['cells']:
        if cell['cell_type'] == 'markdown':
            for m in re.finditer(r'^#{1,6}\s+(.*)$', ''.join(cell['source']), re.M): heading = m.group(1).strip()
        for out in cell.get('outputs', []):
            png = out.get('data', {}).get('image/png')
            if not png: continue
            out_dir.mkdir(parents=True, exist_ok=True)
            name = f'{nb_path.stem}_{len(figs) + 1}.png'
            (out_dir / name).write_bytes(base64.b64decode(''.join(png) if isinstance(png, list) else png))
            figs.append((heading, name))
    return figs

def figures_section(nbs_dir:Path, out_dir:Path) -> str:
    "Part 2's figures as the results notebook drew them from the committed sweep results (its stored outputs; nothing re-run)."
    nb = results_notebook(nbs_dir)
    figs = notebook_figures(nb, out_dir)
    if not figs: return f'The results chapter has no stored figures: {NOT_RUN} (run the sweeps, then execute the notebook).'
    parts = [f'Drawn by {{doc}}`{nb.stem}` from `results/<preset>/<experiment>/` (its stored outputs, shown again here; the '
             'notebook page has the article\'s claims and what these runs show beside each figure).', '']
    for i, (heading, name) in enumerate(figs, 1):
        parts += [f'```{{figure}} _generated/{name}', f':name: fig-results-{i}', f':alt: {_esc(heading)}', ':width: 100%', '',
                  f'{_esc(heading)} (figure {i} of `nbs/{nb.name}`).', '```', '']
    return '\n'.join(parts)

def bench_section(results:Path, nbs_dir:Path) -> str:
    "One row per `resnet-fast bench` record `results/bench_*.json` (accuracy over seeds, median time, efficiency, machine), then each record's seeds."
    rows, per_seed = [], []
    for f in sorted(results.glob('bench_*.json')):
        b = json.loads(f.read_text()); s, st = b['summary'], b['settings']
        path = f.relative_to(results.parent).as_posix()
        name = f'`{path}`'
        reached = round(s['fraction_reaching_target'] * s['seeds'])
        rows.append([path_cell(path), _esc(describe_recipe(st)), machine(b['hardware']),
                     f"{pct(s['mean_test_acc'])}<br>({pct(s['min_test_acc'])} to {pct(s['max_test_acc'])})",
                     f"{reached} of {num(s['seeds'])}", f"{secs(s['median_wall_time'])}<br>({s['median_wall_time'] / 60:.1f} min)",
                     f"{s['median_images_per_s']:.0f}", f"{s['median_achieved_flops'] / 1e9:.0f} of {b['peak_flops'] / 1e9:.0f}"])
        per_seed += [f'Seeds of {name}, by seed:', '',
                     table(['seed', 'test acc', 'test loss', 'training', 'final evaluation', 'wall time'],
                           [[num(r['seed']), pct(r['test_acc']), loss(r['test_loss']), secs(r['train_time']), secs(r['eval_time']),
                             minutes(r['wall_time'])] for r in sorted(b['runs'], key=lambda r: r['seed'])], 'rrrrrr'), '']
    if not rows: return f'`results/bench_*.json`: {NOT_RUN} (`resnet-fast bench --seeds 5`{", chapter " + chapter_ref(nbs_dir, "bench", "fast") if find_chapter(nbs_dir, "bench", "fast") else ""}).'
    return '\n'.join([table(['file', 'recipe', 'hardware', 'mean test acc (min to max)', 'seeds >= 94%', 'median wall time',
                              'images/s', 'GFLOP/s achieved of measured peak'], rows, 'lllrrrrr'), '', *per_seed])

def _median(xs): return statistics.median(xs) if xs else None

def project_runs(runs, sweeps, model:str, batch:int, results:Path) -> str:
    "This project's side for one recipe: single-run JSON files plus batch_size sweep rows, only from files."
    parts = []
    sel = [(p, d) for p, d in runs if d['settings'].get('model') == model and d['settings'].get('batch_size') == batch
           and d['settings'].get('train_size', 50_000) == 50_000]
    if sel:
        accs = [d['final']['test_acc'] for _, d in sel if not d['diverged']]
        times = [d['final']['train_time'] for _, d in sel]
        hw = sorted({machine(d['hardware']) for _, d in sel})
        eps = sorted({num(d['final'].get('epochs_run', d['settings'].get('epochs'))) for _, d in sel})
        ok = sum(1 for _, d in sel if d['final']['test_acc'] >= 0.94)
        parts.append(f'{len(sel)} run(s) in `results/*.json`, width {", ".join(sorted({num(d["settings"].get("width")) for _, d in sel}))}, '
                     f'{"/".join(eps)} epochs on {"; ".join(hw)}: median time {secs(_median(times))}, median test acc {pct(_median(accs))}, '
                     f'{ok} of {len(sel)} runs >= 94%')
    if model == 'resnet18':
        for (preset, exp), (path, rows) in sweeps.items():
            if exp != 'batch_size': continue
            b = [r for r in rows if r.get('status') == 'ok' and r.get('batch_size') and int(float(r['batch_size'])) == batch]
            if not b: continue
            accs = [float(r['test_acc']) for r in b if r.get('test_acc')]
            times = [float(r['train_time']) for r in b if r.get('train_time')]
            ok = sum(1 for a in accs if a >= 0.94)
            parts.append(f'`{path}` (preset `{preset}`, {sweep_hardware(results, preset, exp)}): {len(b)} run(s), median time {secs(_median(times))}, '
                         f'median test acc {pct(_median(accs))}, {ok} of {len(b)} runs >= 94%')
    return '<br>'.join(parts) if parts else NOT_RUN

def lr_sweep_side(sweeps, batch:int, results:Path) -> str:
    parts = []
    for (preset, exp), (path, rows) in sweeps.items():
        if exp != 'lr_sweep': continue
        ok = [r for r in rows if r.get('status') == 'ok' and r.get('batch_size') and int(float(r['batch_size'])) == batch]
        if not ok: continue
        div = sorted({float(r['lr_mult']) for r in ok if str(r.get('diverged')) == 'True'})
        factors = sorted({float(r['lr_mult']) for r in ok})
        parts.append(f'`{path}` (preset `{preset}`, {sweep_hardware(results, preset, exp)}): factors run {", ".join(f"{f:g}" for f in factors)}; '
                     + (f'smallest diverging factor {div[0]:g}' if div else 'no run diverged'))
    return '<br>'.join(parts) if parts else NOT_RUN

def forgetting_side(sweeps, lr_mult:float, results:Path) -> str:
    parts = []
    for (preset, exp), (path, rows) in sweeps.items():
        if exp != 'forgetting': continue
        for r in rows:
            if r.get('status') == 'ok' and r.get('lr_mult') and float(r['lr_mult']) == lr_mult:
                parts.append(f'`{path}` (preset `{preset}`, {sweep_hardware(results, preset, exp)}): test loss (a) {loss(r.get("test_loss_half_no_aug"))}, '
                             f'(b) {loss(r.get("test_loss_full_aug"))}; replayed loss, newest tenth of an epoch '
                             f'{loss(r.get("recent_tenth_epoch_loss"))}, oldest replayed epoch {loss(r.get("oldest_replayed_epoch_loss"))}')
    return '<br>'.join(parts) if parts else NOT_RUN

def fast_side(results:Path) -> str:
    "This project's fastest time to 94%: every `resnet-fast bench` record of the fast recipe, with its machine."
    parts = []
    for f in sorted(results.glob('bench_*.json')):
        b = json.loads(f.read_text()); s, st = b['summary'], b['settings']
        if st.get('recipe') != 'fast': continue
        parts.append(f"`{f.relative_to(results.parent).as_posix()}` ({_esc(describe_recipe(st))}, {machine(b['hardware'])}): "
                     f"mean {pct(s['mean_test_acc'])} over {s['seeds']} seeds ({100 * s['fraction_reaching_target']:.0f}% of runs >= 94%), "
                     f"median wall time {minutes(s['median_wall_time'])}")
    return '<br>'.join(parts) if parts else NOT_RUN

def comparison_table(runs, sweeps, results:Path) -> str:
    from resnet_fast.report import ARTICLE  # the article's figures are written once, in the package
    rows = [
        ['Fastest time to 94%', ARTICLE['fastest'], fast_side(results)],
        ['Part 4: ResNet-9 recipe, 24 epochs, batch 512', ARTICLE['resnet9'], project_runs(runs, sweeps, 'resnet9', 512, results)],
        ['Part 1/2: ResNet-18, batch 128, 35 epochs', ARTICLE['resnet18_b128'], project_runs(runs, sweeps, 'resnet18', 128, results)],
        ['Part 2: ResNet-18, batch 512, LR +10%', ARTICLE['resnet18_b512'], project_runs(runs, sweeps, 'resnet18', 512, results)],
        ['Part 2, experiment A: LR factor sweep at batch 128', ARTICLE['lr_sweep_b128'], lr_sweep_side(sweeps, 128, results)],
        ['Part 2, experiment A: LR factor sweep at batch 512', ARTICLE['lr_sweep_b512'], lr_sweep_side(sweeps, 512, results)],
        ['Part 2, experiment B: forgetting at 4x LR', ARTICLE['forgetting_4'], forgetting_side(sweeps, 4.0, results)],
        ['Part 2, experiment B: forgetting at 1/4x LR', ARTICLE['forgetting_0.25'], forgetting_side(sweeps, 0.25, results)],
    ]
    return table(['what', 'the article (one NVIDIA V100, its full protocol; peers named)', 'this project (from results/ only; preset and machine named)'], rows)

def results_page(results:Path, out_dir:Path, nbs_dir:Path=NBS) -> str:
    runs, sweeps = load_runs(results), load_sweeps(results)
    logs = [f for f in sorted(results.glob('*.log')) if not f.with_suffix('.json').exists() and f.name != 'throughput_cpu.log']
    in_progress = ''
    if logs:
        in_progress = ('\n\nLogs without a result file yet (a run in progress or interrupted; not counted anywhere on this page): '
                       + ', '.join(f'`{f.relative_to(results.parent).as_posix()}`' for f in logs) + '.')
    sweep_md = []
    for (preset, exp), (path, rows) in sweeps.items():
        sweep_md += [f'### `{exp}`, preset `{preset}`', '', f'From `{path}`, sorted by the settings; every run on {sweep_hardware(results, preset, exp)}.', '',
                     sweep_table(rows), '']
    if not sweep_md: sweep_md = [f'No sweep has been run yet (`results/<preset>/<experiment>/results.csv`): {NOT_RUN}.', '']
    res_nb = results_notebook(nbs_dir)
    return '\n'.join([
        '# Results', '',
        '> Every number on this page is read from a committed file under `results/` when the site is built; '
        'nothing is re-run and nothing is typed in. Where a file does not exist yet the page says *not run yet*.', '',
        '(figures)=', "## Part 2's figures", '', figures_section(nbs_dir, out_dir), '',
        '(runs-table)=', '## Training runs', '',
        'One row per result record `results/*.json` written by `resnet-fast train`, sorted by model, batch size and '
        'training-set size (accuracy is on the 10,000 test images; times are training time without evaluation).' + in_progress, '',
        '```{container} runs-table', '', runs_table(runs), '', '```', '',
        '## Sweeps', '', *sweep_md,
        '(time-to-94)=', '## Time to 94% (`resnet-fast bench`)', '',
        'Each record trains a recipe once per seed on the full training set; wall time is training plus the final evaluation.', '',
        bench_section(results, nbs_dir), '',
        '(throughput)=', '## Throughput benchmark', '', throughput_section(results, out_dir), '',
        '## The article against this project', '',
        "The article's numbers are from *How to train your ResNet* (parts 2 and 4); this project's are "
        'computed from the result files above. Runs at a reduced width, epoch count or on other hardware are not the '
        "article's protocol: the hardware and scale are named with every number.", '',
        '```{container} comparison-table', '', comparison_table(runs, sweeps, results), '', '```', '',
        (f"Part 2's figures, drawn from the sweep results, are on the page {{doc}}`{res_nb.stem}`. " if res_nb else '')
        + 'How to produce the missing files: {doc}`rerun`.', ''])

# ---------------------------------------------------------------------------------------------------------
# 4. Sphinx: the site's hand-written sources (conf.py, static files, the rerun page) live in docs/
# ---------------------------------------------------------------------------------------------------------
def build(out:Path, proc:Path, results:Path, quiet:bool=True, nbs_dir:Path=NBS) -> float:
    t0 = time.perf_counter()
    if proc.exists(): shutil.rmtree(proc)
    shutil.copytree(DOCS, proc, ignore=shutil.ignore_patterns('_build', 'screenshots'))
    nbs = sorted(nbs_dir.glob('*.ipynb'), key=lambda p: (p.name != 'index.ipynb', p.name))
    if not nbs or nbs[0].name != 'index.ipynb': sys.exit(f'build_docs: no index.ipynb in {nbs_dir}')
    chapters = [p.stem for p in nbs[1:]]
    hand_written = sorted(p.stem for p in DOCS.glob('*.md')  # docs/rerun.md and the other pages written by hand, orphans aside
                          if not re.match(r'---\s*\n(?:.*\n)*?orphan:\s*true', p.read_text()))
    extra = ['results', *(['rerun'] if 'rerun' in hand_written else []), *(p for p in hand_written if p != 'rerun')]
    toc = '\n'.join(['```{toctree}', ':caption: Chapters', ':hidden:', '', *chapters, '```', '',
                     '```{toctree}', ':caption: Results', ':hidden:', '', *extra, '```'])
    for md in proc.rglob('*.md'): md.write_text(chapter_refs(md.read_text(), chapters))
    for p in nbs:
        nb = preprocess(p, toc if p.name == 'index.ipynb' else '')
        (proc / p.name).write_text(json.dumps(nb, indent=1))
    (proc / 'results.md').write_text(results_page(results, proc / '_generated', nbs_dir))
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
    ap.add_argument('--results', default=str(REPO / 'results'), help='results folder to read (default: results)')
    ap.add_argument('--nbs', default=str(NBS), help='notebooks folder (default: nbs)')
    ap.add_argument('-v', '--verbose', action='store_true')
    a = ap.parse_args(argv)
    took = build(Path(a.out).resolve(), Path(a.proc).resolve(), Path(a.results).resolve(), quiet=not a.verbose, nbs_dir=Path(a.nbs).resolve())
    print(f'build_docs: site written to {a.out} in {took:.1f} s')

if __name__ == '__main__': main()
