"""Build the documentation site: nbs/*.ipynb (nbdev conventions) + results pages -> static HTML (Sphinx + MyST-NB).

    python tools/build_docs.py [--out docs/_build/html] [--proc _proc] [--results results] [--nbs nbs]

1. Every notebook of nbs/ is preprocessed into PROC/: `#| hide` cells, raw front matter and the
   `nbdev.nbdev_export()` cells are dropped, `#|` directive lines are stripped from shown code, and after
   every exported cell a markdown cell documents its public functions and classes (signature, docstring,
   nbdev's per-parameter comments) as imported from `resnet_fast.<default_exp>`.
2. The site's hand-written sources in docs/ (conf.py, _static/, rerun.md) are copied beside them.
3. The "Results" page is generated from the committed files under results/ only: nothing is re-run and
   no number is typed in here.
4. Sphinx builds PROC/ into OUT/ with MyST-NB (stored outputs, never executed), `-W --keep-going -n`:
   any warning (broken cross-reference, missing image, ...) fails the build.
"""
from __future__ import annotations
import argparse, ast, base64, copy, csv, glob, importlib, inspect, json, re, shutil, statistics, subprocess, sys, time
from dataclasses import is_dataclass
from pathlib import Path

from resnet_fast.fast import describe_recipe

REPO = Path(__file__).resolve().parents[1]
NBS = REPO / 'nbs'
LIB = REPO / 'resnet_fast'

# ---------------------------------------------------------------------------------------------------------
# Notebook preprocessing
# ---------------------------------------------------------------------------------------------------------
DIRECTIVE = re.compile(r'^\s*#\s?\|\s*(.*)$')

def directives(src:str) -> dict:
    "nbdev directives (`#| name args`) of the leading comment lines of a cell, as {name: args}."
    out = {}
    for line in src.splitlines():
        if not line.strip(): continue
        m = DIRECTIVE.match(line)
        if not m:
            if line.lstrip().startswith('#'): continue  # ordinary comments may precede directives
            break
        body = m.group(1).strip()
        name, _, args = body.partition(' ')
        name = name.rstrip(':')
        out[name] = args.strip()
    return out

def strip_directives(src:str) -> str:
    return '\n'.join(l for l in src.splitlines() if not DIRECTIVE.match(l)).strip('\n')

def exported_cells(nb_name:str) -> dict:
    "Cell indices of `nb_name` that nbdev exported, from the `# %% ../nbs/NB IDX` markers of resnet_fast/*.py."
    out = {}
    for py in sorted(LIB.glob('*.py')):
        for m in re.finditer(rf'^# %% \.\./nbs/{re.escape(nb_name)} (\d+)\s*$', py.read_text(), re.M):
            out[int(m.group(1))] = py.stem
    return out

def _esc(s) -> str:
    return str(s).replace('|', '\\|').replace('\n', ' ')

def _anno(a) -> str:
    if a is inspect.Parameter.empty or a is None: return ''
    if isinstance(a, str): return a
    return getattr(a, '__name__', None) or repr(a).replace('typing.', '')

def _signature(name:str, obj) -> str | None:
    try: sig = inspect.signature(obj)
    except (TypeError, ValueError): return None
    params = []
    for p in sig.parameters.values():
        star = '*' if p.kind is p.VAR_POSITIONAL else '**' if p.kind is p.VAR_KEYWORD else ''
        text = star + p.name + (f':{_anno(p.annotation)}' if p.annotation is not p.empty else '')
        if p.default is not p.empty: text += f'={p.default!r}'
        params.append(text)
    ret = '' if sig.return_annotation is inspect.Signature.empty else f'->{_anno(sig.return_annotation)}'
    one = f'{name}({", ".join(params)}){ret}'
    if len(one) <= 90 or not params: return one
    return f'{name}(\n' + ''.join(f'    {p},\n' for p in params) + f'){ret}'

def _own_init(cls) -> bool:
    return is_dataclass(cls) or any('__init__' in vars(k) for k in cls.__mro__[:-1] if k.__module__ == cls.__module__)

def api_markdown(obj, name:str, level:int, module:str) -> str:
    "Markdown API docs of one function or class: heading, signature, docstring, parameter table."
    from fastcore.docments import docments
    kind = 'dataclass' if inspect.isclass(obj) and is_dataclass(obj) else 'class' if inspect.isclass(obj) else 'function'
    parts = [f'(api-{module}-{name})=', f'{"#" * level} `{name}`', '']
    sig = None
    if inspect.isclass(obj):
        bases = ', '.join(b.__name__ for b in obj.__bases__ if b is not object)
        head = f'class {name}({bases})' if bases else f'class {name}'
        sig = _signature(name, obj) if _own_init(obj) else None
        code = sig or head
    else:
        sig = _signature(name, obj)
        code = sig or name
    parts += [f'*{kind} in `resnet_fast.{module}`*', '', '```python', code, '```', '']
    doc = inspect.getdoc(obj)
    if doc: parts += [doc, '']
    if sig:
        try: docs = docments(obj, full=True, returns=True)
        except Exception: docs = {}
        rows = []
        for pname, d in docs.items():
            d = dict(d)
            default = d.get('default', inspect.Parameter.empty)
            default = '' if default is inspect.Parameter.empty else f'`{default!r}`'
            label = '**returns**' if pname == 'return' else f'`{pname}`'
            anno = _anno(d.get('anno', inspect.Parameter.empty))
            if pname == 'return' and not anno and not d.get('docment'): continue
            rows.append(f'| {label} | {_esc(anno)} | {_esc(default)} | {_esc(d.get("docment") or "")} |')
        if rows: parts += ['| parameter | type | default | details |', '| --- | --- | --- | --- |', *rows, '']
    return '\n'.join(parts)

def public_names(src:str) -> list[str]:
    try: tree = ast.parse(src)
    except SyntaxError: return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not n.name.startswith('_')]

def md_cell(text:str) -> dict:
    return dict(cell_type='markdown', metadata={}, source=text)

def preprocess(nb_path:Path, extra_md:str = '') -> dict:
    "The notebook with nbdev conventions applied, ready for MyST-NB."
    nb = json.loads(nb_path.read_text())
    exported = exported_cells(nb_path.name)
    default_exp = next((directives(''.join(c['source'])).get('default_exp') for c in nb['cells']
                        if c['cell_type'] == 'code' and 'default_exp' in directives(''.join(c['source']))), None)
    cells, level = [], 1
    for idx, cell in enumerate(nb['cells']):
        src = ''.join(cell['source'])
        if cell['cell_type'] == 'raw':
            if src.lstrip().startswith('---'): continue  # front matter
            cells.append(cell); continue
        if cell['cell_type'] == 'markdown':
            for m in re.finditer(r'^(#{1,6})\s', src, re.M): level = len(m.group(1))
            cells.append(dict(cell, source=src)); continue
        d = directives(src)
        if 'hide' in d or 'include' in d and d['include'].lower() == 'false': continue
        body = strip_directives(src)
        if re.fullmatch(r'\s*(import nbdev\s*;\s*)?nbdev\.nbdev_export\(\)\s*', body): continue
        if re.fullmatch(r'\s*(from nbdev\.\w+ import \w+\s*;?\s*)?\w*nbdev_export\(\)\s*', body): continue
        if not body.strip() and not cell.get('outputs'): continue
        new = copy.deepcopy(cell)
        new['source'] = body
        new['execution_count'] = None
        tags = list(new.get('metadata', {}).get('tags', []))
        if d.get('echo', '').lower() == 'false': tags.append('remove-input')
        if d.get('output', '').lower() == 'false': tags.append('remove-output')
        new['metadata'] = {'tags': tags} if tags else {}
        cells.append(new)
        is_export = any(k in d for k in ('export', 'exports')) or idx in exported
        module = exported.get(idx, d.get('export') or default_exp)
        if is_export and module:
            mod = importlib.import_module(f'resnet_fast.{module}')
            public = getattr(mod, '__all__', None)
            docs = [api_markdown(getattr(mod, n), n, min(level + 1, 6), module) for n in public_names(body)
                    if hasattr(mod, n) and (public is None or n in public)]
            if docs: cells.append(md_cell('\n\n'.join(docs)))
    if extra_md: cells.append(md_cell(extra_md))
    for i, c in enumerate(cells): c['id'] = c.get('id') or f'docs-{i}'
    meta = {'kernelspec': nb.get('metadata', {}).get('kernelspec') or {'display_name': 'Python 3', 'language': 'python', 'name': 'python3'},
            'language_info': {'name': 'python'}}
    return dict(nbformat=4, nbformat_minor=5, metadata=meta, cells=cells)

# ---------------------------------------------------------------------------------------------------------
# Results pages: only from committed files under results/
# ---------------------------------------------------------------------------------------------------------
NOT_RUN = '*not run yet*'
RUN_KEYS = {'settings', 'hardware', 'final', 'rows', 'diverged'}

def fmt(v, digits=4) -> str:
    if v is None or v == '': return '–'
    if isinstance(v, bool): return 'yes' if v else 'no'
    if isinstance(v, float): return f'{v:.{digits}g}' if abs(v) < 1e4 else f'{v:,.0f}'
    return _esc(v)

def pct(v) -> str:
    return '–' if v is None or v == '' else f'{100 * float(v):.2f}%'

def secs(v) -> str:
    return '–' if v is None or v == '' else f'{float(v):,.0f} s'

def table(header:list, rows:list) -> str:
    out = ['| ' + ' | '.join(header) + ' |', '|' + '---|' * len(header)]
    out += ['| ' + ' | '.join(str(c) for c in r) + ' |' for r in rows]
    return '\n'.join(out)

def machine(hw:dict) -> str:
    if not hw: return '–'
    name = hw.get('gpu') or hw.get('cpu') or hw.get('device', '?')
    extra = f', {hw["cpu_count"]} cores' if 'gpu' not in hw and hw.get('cpu_count') else ''
    return _esc(f'{hw.get("device", "?")}: {name}{extra}')

def load_runs(results:Path) -> list[tuple[str, dict]]:
    runs = []
    for f in sorted(results.glob('*.json')):
        d = json.loads(f.read_text())
        if isinstance(d, dict) and RUN_KEYS <= set(d): runs.append((f.relative_to(results.parent).as_posix(), d))
    return runs

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
    parts = [f'**{_esc(s.get("model", "?"))}** width {fmt(s.get("width"))}', f'{fmt(f.get("epochs_run", s.get("epochs")))} epochs',
             f'batch {fmt(s.get("batch_size"))}', f'lr x{fmt(s.get("lr_mult"))}', f'{fmt(s.get("train_size"))} images',
             f'aug {fmt(s.get("augment"))}', f'seed {fmt(s.get("seed"))}', fmt(s.get('precision'))]
    return ', '.join(parts)

def runs_table(runs) -> str:
    header = ['file', 'settings', 'hardware', 'train loss', 'test loss', 'test acc', 'train time', 'time to 94%', 'diverged']
    rows = []
    for path, d in runs:
        s, f = d['settings'], d['final']
        rows.append([f'`{path}`', settings_text(s, f), machine(d['hardware']), fmt(f.get('train_loss')),
                     fmt(f.get('test_loss')), pct(f.get('test_acc')), secs(f.get('train_time')), secs(d.get('time_to_94')),
                     fmt(d['diverged']) + (f' (epoch {d["diverged_at"]:.2f})' if d.get('diverged_at') else '')])
    if not rows: rows.append(['`results/*.json`', NOT_RUN, *['–'] * (len(header) - 2)])
    return table(header, rows)

def sweep_table(rows:list) -> str:
    if not rows: return '*the file has no rows yet*'
    cols = [c for c in rows[0] if c not in ('reason',)]
    body = []
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, '')
            try: v = float(v) if c not in ('name', 'status') and v not in ('', 'True', 'False') else v
            except ValueError: pass
            cells.append(pct(v) if c.endswith('acc') and isinstance(v, float) else fmt(v))
        body.append(cells)
    return table([f'`{c}`' for c in cols], body)

def throughput_section(results:Path, out_dir:Path) -> str:
    f = results / 'throughput_cpu.json'
    if not f.exists(): return f'`results/throughput_cpu.json`: {NOT_RUN} (`python bench/throughput.py --out results/throughput_cpu.json`).'
    d = json.loads(f.read_text())
    hw = d['hardware']
    hw_text = f'{hw.get("gpu") or hw.get("cpu")} ({hw.get("device")}, {hw.get("cpu_count")} cores, {hw.get("torch_threads")} torch threads), torch {hw.get("torch")}, Python {hw.get("python")}'
    rows = [[fmt(r['model']), fmt(r['batch_size']), fmt(r['resnet_fast_precision']), f'{r["resnet_fast_images_per_s"]:.1f}',
             f'{r["baseline_fp32_workers0_images_per_s"]:.1f}', f'{r["baseline_fp32_workers2_images_per_s"]:.1f}', f'{r["speedup"]:.2f}x']
            for r in d['rows']]
    tab = table(['model', 'batch', 'resnet_fast precision', 'resnet_fast (images/s)', 'baseline fp32, 0 workers (images/s)',
                 'baseline fp32, 2 workers (images/s)', 'speed-up'], rows)
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt, numpy as np
    models = [r['model'] for r in d['rows']]
    series = [('baseline fp32, DataLoader 0 workers', 'baseline_fp32_workers0_images_per_s', '#9aa5b1'),
              ('baseline fp32, DataLoader 2 workers', 'baseline_fp32_workers2_images_per_s', '#5f6b7a'),
              (f'resnet_fast ({d["rows"][0]["resnet_fast_precision"]}, device-side batches)', 'resnet_fast_images_per_s', '#d9480f')]
    x, w = np.arange(len(models)), 0.26
    fig, ax = plt.subplots(figsize=(7.5, 4))
    for i, (label, key, color) in enumerate(series):
        vals = [r[key] for r in d['rows']]
        bars = ax.bar(x + (i - 1) * w, vals, w, label=label, color=color)
        ax.bar_label(bars, fmt='%.0f', fontsize=8, padding=2)
    ax.set_xticks(x, [f'{m} (batch {r["batch_size"]})' for m, r in zip(models, d['rows'])])
    ax.set_ylabel('training throughput (images/s)')
    ax.set_xlabel('model')
    ax.set_title(f'Training throughput on {hw.get("cpu")} ({hw.get("cpu_count")} cores, {hw.get("device")})', fontsize=10)
    ax.legend(fontsize=8, loc='upper right'); ax.margins(y=0.15)
    ax.spines[['top', 'right']].set_visible(False)
    fig.tight_layout(); out_dir.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_dir / 'throughput_cpu.png', dpi=110); plt.close(fig)
    return '\n'.join([
        f'From `results/throughput_cpu.json` ({d.get("benchmark", "")}, {d.get("steps")} timed steps after {d.get("warmup")} warm-up steps, '
        f'augmentation: {d.get("augmentation")}, measured {d.get("date")}).', '',
        f'**Hardware:** {_esc(hw_text)}.', '', tab, '',
        '```{figure} _generated/throughput_cpu.png', ':name: fig-throughput', ':alt: Bar chart of training throughput in images per second',
        f':width: 100%', '',
        f'Training throughput (images/s, higher is better) of resnet_fast against a plain fp32 DataLoader baseline, on {_esc(hw.get("cpu"))}.',
        '```'])

def notebook_figures(nb_path:Path, out_dir:Path) -> list[tuple[str, str]]:
    "Every PNG in the stored outputs of the executed notebook `nb_path`, written to `out_dir`, with the heading it sits under."
    if not nb_path.exists(): return []
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
    figs = notebook_figures(nbs_dir / '06_results.ipynb', out_dir)
    if not figs: return f'`nbs/06_results.ipynb` has no stored figures: {NOT_RUN} (run the sweeps, then execute the notebook).'
    parts = ['Drawn by {doc}`06_results` from `results/<preset>/<experiment>/` (its stored outputs, shown again here; the '
             'notebook page has the article\'s claims and what these runs show beside each figure).', '']
    for i, (heading, name) in enumerate(figs, 1):
        parts += [f'```{{figure}} _generated/{name}', f':name: fig-results-{i}', f':alt: {_esc(heading)}', ':width: 100%', '',
                  f'{_esc(heading)} (figure {i} of `nbs/06_results.ipynb`).', '```', '']
    return '\n'.join(parts)

def bench_section(results:Path) -> str:
    "One row per `resnet-fast bench` record `results/bench_*.json` (accuracy over seeds, median time, efficiency, machine), then each record's seeds."
    rows, per_seed = [], []
    for f in sorted(results.glob('bench_*.json')):
        b = json.loads(f.read_text()); s, st = b['summary'], b['settings']
        name = f'`{f.relative_to(results.parent).as_posix()}`'
        rows.append([name, _esc(describe_recipe(st)), machine(b['hardware']), fmt(s['seeds']),
                     f"{pct(s['mean_test_acc'])} ({pct(s['min_test_acc'])} to {pct(s['max_test_acc'])})",
                     f"{100 * s['fraction_reaching_target']:.0f}%", f"{secs(s['median_wall_time'])} ({s['median_wall_time'] / 60:.1f} min)",
                     f"{s['median_images_per_s']:.0f}", f"{s['median_achieved_flops'] / 1e9:.0f} of {b['peak_flops'] / 1e9:.0f}"])
        per_seed += [f'Seeds of {name}:', '',
                     table(['seed', 'test acc', 'test loss', 'training', 'final evaluation', 'wall time'],
                           [[str(r['seed']), pct(r['test_acc']), f"{r['test_loss']:.4f}", secs(r['train_time']), secs(r['eval_time']),
                             f"{secs(r['wall_time'])} ({r['wall_time'] / 60:.1f} min)"] for r in b['runs']]), '']
    if not rows: return f'`results/bench_*.json`: {NOT_RUN} (`resnet-fast bench --seeds 5`, chapter {{doc}}`07_fast`).'
    return '\n'.join([table(['file', 'recipe', 'hardware', 'seeds', 'mean test acc (min to max)', 'runs >= 94%', 'median wall time',
                              'images/s', 'GFLOP/s achieved of measured peak'], rows), '', *per_seed])

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
        eps = sorted({str(d['final'].get('epochs_run', d['settings'].get('epochs'))) for _, d in sel})
        ok = sum(1 for _, d in sel if d['final']['test_acc'] >= 0.94)
        parts.append(f'{len(sel)} run(s) in `results/*.json`, width {", ".join(sorted({fmt(d["settings"].get("width")) for _, d in sel}))}, '
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
                parts.append(f'`{path}` (preset `{preset}`, {sweep_hardware(results, preset, exp)}): test loss (a) {fmt(_f(r.get("test_loss_half_no_aug")))}, '
                             f'(b) {fmt(_f(r.get("test_loss_full_aug")))}; replayed loss, newest tenth of an epoch '
                             f'{fmt(_f(r.get("recent_tenth_epoch_loss")))}, oldest replayed epoch {fmt(_f(r.get("oldest_replayed_epoch_loss")))}')
    return '<br>'.join(parts) if parts else NOT_RUN

def _f(v):
    try: return float(v)
    except (TypeError, ValueError): return None

def fast_side(results:Path) -> str:
    "This project's fastest time to 94%: every `resnet-fast bench` record of the fast recipe, with its machine."
    parts = []
    for f in sorted(results.glob('bench_*.json')):
        b = json.loads(f.read_text()); s, st = b['summary'], b['settings']
        if st.get('recipe') != 'fast': continue
        parts.append(f"`{f.relative_to(results.parent).as_posix()}` ({_esc(describe_recipe(st))}, {machine(b['hardware'])}): "
                     f"mean {pct(s['mean_test_acc'])} over {s['seeds']} seeds ({100 * s['fraction_reaching_target']:.0f}% of runs >= 94%), "
                     f"median wall time {secs(s['median_wall_time'])} ({s['median_wall_time'] / 60:.1f} min)")
    return '<br>'.join(parts) if parts else NOT_RUN

def comparison_table(runs, sweeps, results:Path) -> str:
    rows = [
        ['Fastest time to 94%', 'part 8 (bag of tricks): 26 s on a V100; airbench94 (peer): 3.29 s on an A100, mean 94.01%',
         fast_side(results)],
        ['Part 4: ResNet-9 recipe, 24 epochs, batch 512', '79 s on a V100; median 94.08%; 35 of 50 runs >= 94%',
         project_runs(runs, sweeps, 'resnet9', 512, results)],
        ['Part 1/2: ResNet-18, batch 128, 35 epochs', '297 s on a V100', project_runs(runs, sweeps, 'resnet18', 128, results)],
        ['Part 2: ResNet-18, batch 512, LR +10%', '256 s on a V100; 3 of 5 runs >= 94%', project_runs(runs, sweeps, 'resnet18', 512, results)],
        ['Part 2, experiment A: LR factor sweep at batch 128', 'losses unstable from a factor of about 8', lr_sweep_side(sweeps, 128, results)],
        ['Part 2, experiment A: LR factor sweep at batch 512', 'instability moves to about 2x', lr_sweep_side(sweeps, 512, results)],
        ['Part 2, experiment B: forgetting at 4x LR', '(a) and (b) reach almost the same test loss; recent batches clearly lower loss, '
         'back to the test level within about half an epoch', forgetting_side(sweeps, 4.0, results)],
        ['Part 2, experiment B: forgetting at 1/4x LR', 'the full augmented set gives a lower test loss; recent batches stay better for many epochs',
         forgetting_side(sweeps, 0.25, results)],
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
        sweep_md += [f'### `{exp}`, preset `{preset}`', '', f'From `{path}`; every run on {sweep_hardware(results, preset, exp)}.', '',
                     sweep_table(rows), '']
    if not sweep_md: sweep_md = [f'No sweep has been run yet (`results/<preset>/<experiment>/results.csv`): {NOT_RUN}.', '']
    return '\n'.join([
        '# Results', '',
        '> Every number on this page is read from a committed file under `results/` when the site is built; '
        'nothing is re-run and nothing is typed in. Where a file does not exist yet the page says *not run yet*.', '',
        '(figures)=', "## Part 2's figures", '', figures_section(nbs_dir, out_dir), '',
        '(runs-table)=', '## Training runs', '',
        'One row per result record `results/*.json` written by `resnet-fast train` (accuracy is on the 10,000 test images; '
        'times are training time without evaluation).' + in_progress, '',
        '```{container} runs-table', '', runs_table(runs), '', '```', '',
        '## Sweeps', '', *sweep_md,
        '(time-to-94)=', '## Time to 94% (`resnet-fast bench`)', '',
        'Each record trains a recipe once per seed on the full training set; wall time is training plus the final evaluation.', '',
        bench_section(results), '',
        '(throughput)=', '## Throughput benchmark', '', throughput_section(results, out_dir), '',
        '## The article against this project', '',
        "The article's numbers are from *How to train your ResNet* (parts 2 and 4; see `article-brief.md`); this project's are "
        'computed from the result files above. Runs at a reduced width, epoch count or on other hardware are not the '
        "article's protocol: the hardware and scale are named with every number.", '',
        comparison_table(runs, sweeps, results), '',
        "Part 2's figures, drawn from the sweep results, are on the page {doc}`06_results`. How to produce the missing files: {doc}`rerun`.", ''])

# ---------------------------------------------------------------------------------------------------------
# Sphinx: the site's hand-written sources (conf.py, static files, the rerun page) live in docs/
# ---------------------------------------------------------------------------------------------------------
DOCS = REPO / 'docs'

def build(out:Path, proc:Path, results:Path, quiet:bool=True, nbs_dir:Path=NBS) -> float:
    t0 = time.perf_counter()
    if proc.exists(): shutil.rmtree(proc)
    shutil.copytree(DOCS, proc, ignore=shutil.ignore_patterns('_build', 'screenshots'))
    nbs = sorted(nbs_dir.glob('*.ipynb'), key=lambda p: (p.name != 'index.ipynb', p.name))
    if not nbs or nbs[0].name != 'index.ipynb': sys.exit(f'build_docs: no index.ipynb in {nbs_dir}')
    chapters = [p.stem for p in nbs[1:]]
    toc = '\n'.join(['```{toctree}', ':caption: Chapters', ':hidden:', '', *chapters, '```', '',
                     '```{toctree}', ':caption: Results', ':hidden:', '', 'results', 'rerun', '```'])
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
    missing = [n for n in ['index', *chapters, 'results', 'rerun'] if not (out / f'{n}.html').exists()]
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
