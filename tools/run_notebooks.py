"""Execute notebooks in place so that readers (and the docs) see real outputs.

Cells marked `#| eval: false` (hours of training) are skipped, as in `nbdev_test`; their results
come from committed files under results/. Usage: python tools/run_notebooks.py nbs/00_data.ipynb ..."""
import os, sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from nbdev.process import NBProcessor, extract_directives

def skip(cell):
    if cell.cell_type != 'code': return True
    if 'nbdev_export' + '(' in cell.source: return True
    directives = getattr(cell, 'directives_', {}) or {}
    return directives.get('eval:', [''])[0].lower() == 'false'

for name in [Path(a).resolve() for a in sys.argv[1:]]:
    path = name
    os.chdir(path.parent)
    nb = read_nb(path)
    NBProcessor(path, procs=[], nb=nb).process()  # parses the #| directives into cell.directives_
    shell = CaptureShell(path)
    shell.run_all(nb, exc_stop=True, preproc=skip)
    for cell in nb.cells:
        cell.pop('directives_', None)
    write_nb(nb, path)
    print('executed', name)
