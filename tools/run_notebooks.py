"""Execute notebooks in place so that readers (and the docs) see real outputs.

Cells marked `#| eval: false` (hours of training) are skipped, as in `nbdev_test`; their results
come from committed files under results/. Cell sources, directives included, are left untouched.
Usage: python tools/run_notebooks.py nbs/00_data.ipynb ..."""
import os, sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from nbdev.process import extract_directives

def skip(cell):
    "True for cells not to run: markdown, the export call, and `#| eval: false`."
    if cell.cell_type != 'code': return True
    if 'nbdev_export' + '(' in cell.source: return True
    directives = extract_directives(cell, remove=False)  # remove=False: the source keeps its #| lines
    return directives.get('eval:', [''])[0].lower() == 'false'

for path in [Path(a).resolve() for a in sys.argv[1:]]:
    os.chdir(path.parent)
    nb = read_nb(path)
    before = [c.source for c in nb.cells]
    CaptureShell(path).run_all(nb, exc_stop=True, preproc=skip)
    assert [c.source for c in nb.cells] == before, f'{path}: executing changed cell sources'
    write_nb(nb, path)
    print('executed', path)
