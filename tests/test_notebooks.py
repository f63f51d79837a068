"""The notebooks are the source of truth: every one runs top to bottom as JupyterLab's *Run All* would, in minutes,
without writing anywhere but a scratch copy; opening one in JupyterLab does not mark it modified; and the package
is exactly what they export.

The *Run All* tests carry the `notebooks` marker (`pytest -m notebooks` runs only them, `-m "not notebooks"` skips
them). No test decides anything by the clock: $RESNET_FAST_NB_LIMIT seconds (default 1800) only guards against a
notebook that hangs, and each kernel is shut down as soon as its notebook is done."""
import os, re, shutil, subprocess, sys, time
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NOTEBOOKS = sorted((REPO / 'nbs').glob('*.ipynb'))
LIMIT = float(os.environ.get('RESNET_FAST_NB_LIMIT', 1800))  # a hang guard, not a speed test
SKIP_DIRS = {'.venv', '.git', '__pycache__', '.pytest_cache', '.ipynb_checkpoints'}

# ---------------------------------------------------------------------------------------------------------------
# Run All, in a scratch copy of the working tree
# ---------------------------------------------------------------------------------------------------------------
def tree_state(root:Path) -> dict:
    "{relative path: (mtime_ns, size)} of every file under `root`, without .venv, .git and caches."
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for f in filenames:
            p = Path(dirpath) / f
            try: st = p.lstat()
            except FileNotFoundError: continue
            out[p.relative_to(root).as_posix()] = (st.st_mtime_ns, st.st_size)
    return out

def tree_diff(before:dict, after:dict) -> list[str]:
    return ([f'new      {p}' for p in sorted(after.keys() - before.keys())] +
            [f'deleted  {p}' for p in sorted(before.keys() - after.keys())] +
            [f'modified {p}' for p in sorted(before.keys() & after.keys()) if before[p] != after[p]])

def git(root:Path, *args) -> str | None:
    "Output of `git args` in `root`, or None where git or the repository is missing."
    if not shutil.which('git'): return None
    res = subprocess.run(['git', '-C', str(root), *args], capture_output=True, text=True)
    return res.stdout if res.returncode == 0 else None

def git_status(root:Path) -> list[str] | None:
    out = git(root, 'status', '--porcelain', '--untracked-files=all')
    return None if out is None else sorted(out.splitlines())

def working_tree(root:Path) -> list[str]:
    "The working tree's files as git sees them (tracked plus untracked, not ignored); every file outside .venv/.git without git."
    out = git(root, 'ls-files', '-z', '--cached', '--others', '--exclude-standard')
    if out is not None: return sorted({p for p in out.split('\0') if p and (root / p).is_file()})
    return sorted(tree_state(root))

def install_prerequisites(root:Path) -> list[str]:
    "The files whose change makes `make` reinstall everything (the Makefile's `$(STAMP):` line)."
    m = re.search(r'^\$\(STAMP\)\s*:(.*)$', (root / 'Makefile').read_text(), re.M) if (root / 'Makefile').exists() else None
    return m.group(1).split() if m else ['settings.ini', 'setup.py', 'pyproject.toml']

def run_all(nb_path:Path, env:dict, connection_file:Path, limit:float) -> dict:
    """Execute every code cell of `nb_path` in order in a fresh `python3` kernel started in the notebook's folder,
    as JupyterLab's Run All does: `#| eval: false` and `skip-execution` cells run too. Stops at the first error
    or when `limit` seconds (a hang guard) have passed; the kernel is shut down either way. The notebook file is not written."""
    import nbformat
    from jupyter_core.utils import run_sync
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:  # nbclient honours this tag, JupyterLab does not
        tags = cell.get('metadata', {}).get('tags')
        if tags and 'skip-execution' in tags: tags.remove('skip-execution')
    km = AsyncKernelManager(kernel_name='python3', connection_file=str(connection_file))
    client = NotebookClient(nb, km=km, kernel_name='python3', timeout=int(limit) + 1, allow_errors=False,
                            resources={'metadata': {'path': str(nb_path.parent)}})
    times, error, t0 = [], None, time.monotonic()
    try:
        with client.setup_kernel(env=env, cwd=str(nb_path.parent)): error = _run_cells(client, nb, limit, times, t0)
    finally:
        if run_sync(km.is_alive)(): run_sync(km.shutdown_kernel)(now=True)  # a kernel holds the data it loaded: gigabytes
    return dict(seconds=time.monotonic() - t0, error=error, slowest=sorted(times, reverse=True)[:3], kernel_alive=run_sync(km.is_alive)())

def _run_cells(client, nb, limit:float, times:list, t0:float) -> str | None:
    "Run the code cells of `nb` in order with `client`, timing each into `times`; the first error (or the hang guard's message), else None."
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != 'code' or not cell.source.strip(): continue
        left = limit - (time.monotonic() - t0)
        if left <= 0: return f'the hang guard ({limit:.0f} s, RESNET_FAST_NB_LIMIT) ran out before cell {i}'
        client.timeout, c0, error = max(1, int(left + 1)), time.monotonic(), None
        try: client.execute_cell(cell, i)
        except CellTimeoutError: error = f'cell {i} was still running after {limit:.0f} s: hung (the hang guard, RESNET_FAST_NB_LIMIT)'
        except (CellExecutionError, DeadKernelError) as e: error = f'cell {i} failed:\n' + re.sub(r'\x1b\[[0-9;]*m', '', str(e))[-4000:]
        times.append((time.monotonic() - c0, i, cell.source.strip().splitlines()[0][:80]))
        if error: return error
    return None

@pytest.fixture(scope='session')
def kernel_home(tmp_path_factory):
    "A HOME for the kernels, so that IPython history, matplotlib and other caches land in the scratch area too."
    return tmp_path_factory.mktemp('home')

@pytest.fixture(scope='module', params=NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def ran(request, tmp_path_factory, kernel_home):
    "Run All of one notebook inside a scratch copy of the working tree, with the repository watched before and after."
    nb = request.param
    data = Path(os.environ.get('RESNET_FAST_DATA') or Path('~/.cache/resnet_fast/cifar10').expanduser()).resolve()
    scratch = tmp_path_factory.mktemp(f'run_{nb.stem}')
    copy = scratch / REPO.name
    for rel in working_tree(REPO):
        (copy / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, copy / rel)
    copy_git = None
    if git(copy, 'init', '-q') is not None and git(copy, 'add', '-A') is not None: copy_git = git_status(copy)
    prereq = {p: (copy / p).stat().st_mtime_ns for p in install_prerequisites(copy) if (copy / p).exists()}
    env = dict(os.environ, HOME=str(kernel_home), RESNET_FAST_DATA=str(data), PYTHONDONTWRITEBYTECODE='1',
               MPLBACKEND='module://matplotlib_inline.backend_inline')
    watched = {REPO: (tree_state(REPO), git_status(REPO))}
    if data.is_dir() and not data.is_relative_to(REPO): watched[data] = (tree_state(data), None)
    result = run_all(copy / 'nbs' / nb.name, env, scratch / 'kernel.json', LIMIT)
    result.update(name=nb.name, copy=copy, copy_git=(copy_git, git_status(copy) if copy_git is not None else None),
                  prereq=(prereq, {p: (copy / p).stat().st_mtime_ns for p in prereq if (copy / p).exists()}),
                  watched={root: ((before, st), (tree_state(root), git_status(root) if st is not None else None))
                           for root, (before, st) in watched.items()})
    return result

@pytest.mark.notebooks
def test_run_all(ran):
    "Every code cell runs without an error (the clock decides nothing: a slow or busy machine is not a failure), and the kernel is gone afterwards."
    took = f"{ran['name']} ran {ran['seconds']:.0f} s; slowest cells: " + '; '.join(f'cell {i} {s:.0f} s `{src}`' for s, i, src in ran['slowest'])
    print(took)  # shown with -s / -rP
    assert not ran['error'], f"{ran['name']}: {ran['error']}\n{took}"
    assert not ran['kernel_alive'], f"{ran['name']}: its kernel was still running after the notebook was done"

@pytest.mark.notebooks
def test_run_all_writes_nothing_outside_tmp(ran):
    "The repository (and the CIFAR-10 folder) have the same files, sizes and mtimes before and after the run."
    for root, ((before, _), (after, _)) in ran['watched'].items():
        diff = tree_diff(before, after)
        assert not diff, (f"running {ran['name']} changed files under {root} (not its scratch copy); if you edited files "
                          'while the test ran, run it again:\n' + '\n'.join(diff[:50]))

@pytest.mark.notebooks
def test_run_all_leaves_git_status_clean(ran):
    """`git status` of the repository is unchanged by the run, and in the scratch copy (where the notebook ran, as it
    would in place) the run left git status clean: no new, changed or deleted file that is not ignored. The files
    `make` depends on are not even touched (a new mtime makes the next `make` reinstall everything)."""
    (_, status_before), (_, status_after) = ran['watched'][REPO]
    if status_before is None: pytest.skip('git or the repository is missing')
    assert status_after == status_before, f"running {ran['name']} changed `git status` of the repository:\n" + \
        '\n'.join(sorted(set(status_after or []) ^ set(status_before)))
    copy_before, copy_after = ran['copy_git']
    changed = sorted(set(copy_after) ^ set(copy_before))
    assert not changed, f"running {ran['name']} in place would leave `git status` dirty:\n" + '\n'.join(changed[:50])
    touched = [p for p, t in ran['prereq'][0].items() if ran['prereq'][1].get(p) != t]
    assert not touched, f"running {ran['name']} rewrote {touched}: the next `make` would reinstall everything"

# ---------------------------------------------------------------------------------------------------------------
# Opening a notebook in JupyterLab does not mark it modified
# ---------------------------------------------------------------------------------------------------------------
def kernel_metadata() -> dict:
    "The `kernelspec` and `language_info` JupyterLab writes into a notebook once the `python3` kernel has started."
    from ipykernel.ipkernel import IPythonKernel
    from jupyter_client.kernelspec import KernelSpecManager
    spec = KernelSpecManager().get_kernel_spec('python3')
    return dict(kernelspec=dict(display_name=spec.display_name, language=spec.language, name='python3'),
                language_info=dict(IPythonKernel.language_info))

@pytest.mark.parametrize('nb', NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_opens_unmodified(nb):
    """JupyterLab marks a notebook modified as soon as its kernel starts when the stored `kernelspec` or
    `language_info` differ from the kernel's (nbdev_clean's `display_name: python3` and a missing `language_info`
    do), and it saves what nbformat writes: the file must be valid nbformat 4.5 with cell ids, byte-identical to
    nbformat's own serialisation, and carry the kernel's metadata (Python's version compared to major.minor only)."""
    import nbformat
    raw = nb.read_text(encoding='utf-8')
    node = nbformat.reads(raw, as_version=4)
    nbformat.validate(node)
    assert (node.nbformat, node.nbformat_minor) >= (4, 5) and all('id' in c for c in node.cells), f'{nb.name}: cells without ids'
    written = nbformat.writes(node, version=4)
    assert raw in (written, written + '\n'), f'{nb.name}: not as nbformat writes it (JupyterLab would rewrite it on save)'
    want, meta = kernel_metadata(), node.metadata
    have_li = dict(meta.get('language_info', {}))
    same_li = {**have_li, 'version': '.'.join(str(have_li.get('version', '')).split('.')[:2])} == \
              {**want['language_info'], 'version': '.'.join(want['language_info']['version'].split('.')[:2])}
    assert dict(meta.get('kernelspec', {})) == want['kernelspec'] and same_li, (
        f'{nb.name}: JupyterLab marks it modified on open; its metadata should be\n'
        f'"kernelspec": {dict(meta.get("kernelspec", {}))} -> {want["kernelspec"]}\n'
        f'"language_info": {have_li} -> {want["language_info"]}')

# ---------------------------------------------------------------------------------------------------------------
# The package is the notebooks' export
# ---------------------------------------------------------------------------------------------------------------
def test_export_matches_package(tmp_path):
    "A fresh `nbdev_export` of the notebooks, in a scratch copy, reproduces resnet_fast/ file for file."
    for name in ('settings.ini', 'pyproject.toml'): shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / 'nbs', tmp_path / 'nbs')
    (tmp_path / 'resnet_fast').mkdir()
    for module in (REPO / 'resnet_fast').glob('*.py'): (tmp_path / 'resnet_fast' / module.name).write_text('')  # exports into existing modules need the file
    subprocess.run([BIN / 'nbdev_export'], cwd=tmp_path, check=True)
    ours = sorted(p.name for p in (REPO / 'resnet_fast').glob('*.py'))
    fresh = sorted(p.name for p in (tmp_path / 'resnet_fast').glob('*.py'))
    assert ours == fresh
    changed = [n for n in ours if (REPO / 'resnet_fast' / n).read_text() != (tmp_path / 'resnet_fast' / n).read_text()]
    assert not changed, f'exporting the notebooks does not reproduce {changed}: export and commit notebooks and package together'
    assert all('def ' in (REPO / 'resnet_fast' / n).read_text() for n in ours if not n.startswith('_'))

def test_export_leaves_project_files_untouched(tmp_path):
    "`nbdev_export` (what each notebook's export cell runs) does not rewrite pyproject.toml or settings.ini, not even their mtime."
    for name in ('settings.ini', 'pyproject.toml', 'setup.py'): shutil.copy2(REPO / name, tmp_path / name)
    shutil.copytree(REPO / 'nbs', tmp_path / 'nbs')
    shutil.copytree(REPO / 'resnet_fast', tmp_path / 'resnet_fast', ignore=shutil.ignore_patterns('__pycache__'))
    old = {n: (tmp_path / n).stat().st_mtime_ns - 10**9 for n in ('settings.ini', 'pyproject.toml', 'setup.py')}
    for n, t in old.items(): os.utime(tmp_path / n, ns=(t, t))
    subprocess.run([BIN / 'nbdev_export'], cwd=tmp_path / 'nbs', check=True)
    touched = [n for n, t in old.items() if (tmp_path / n).stat().st_mtime_ns != t]
    assert not touched, f'nbdev_export rewrote {touched} (set `update_pyproject = False` in settings.ini)'

def test_readme_is_generated_from_index():
    res = subprocess.run([sys.executable, REPO / 'tools' / 'make_readme.py', '--check'], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr

def test_chapters_import_only_from_earlier_chapters():
    "Chapters are in dependency order: a chapter imports only modules exported by chapters before it (nbdev sorts them by name)."
    import json
    chapters = [p for p in NOTEBOOKS if p.stem != 'index']
    exported_by = {}
    for p in chapters:
        for c in json.loads(p.read_text())['cells']:
            m = re.match(r'#\|\s*default_exp\s+(\w+)', ''.join(c['source']))
            if c['cell_type'] == 'code' and m: exported_by[m.group(1)] = p.stem
    late = []
    for i, p in enumerate(chapters):
        text = ''.join(''.join(c['source']) for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'code')
        for module in set(re.findall(r'\bresnet_fast\.(\w+)', text)):
            owner = exported_by.get(module)
            if owner and [c.stem for c in chapters].index(owner) > i: late.append(f'{p.stem} imports resnet_fast.{module} from the later {owner}')
    assert exported_by and not late, late
