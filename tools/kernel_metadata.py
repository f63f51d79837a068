"""Give every notebook the kernel metadata JupyterLab writes when its `python3` kernel starts, after `nbdev_clean`.

nbdev_clean writes `kernelspec.display_name: python3` and drops `language_info`; JupyterLab then marks a notebook
modified as soon as it is opened. Run after cleaning: `python tools/kernel_metadata.py [NOTEBOOK ...]` (default: nbs/*.ipynb)."""
import sys
from pathlib import Path
import nbformat
from ipykernel.ipkernel import IPythonKernel
from jupyter_client.kernelspec import KernelSpecManager

REPO = Path(__file__).resolve().parents[1]

def kernel_metadata() -> dict:
    spec = KernelSpecManager().get_kernel_spec('python3')
    return dict(kernelspec=dict(display_name=spec.display_name, language=spec.language, name='python3'), language_info=dict(IPythonKernel.language_info))

def restore(path:Path, meta:dict) -> bool:
    "Set `path`'s kernel metadata to `meta`, written as nbformat writes it; whether the file changed."
    raw = path.read_text(encoding='utf-8')
    nb = nbformat.reads(raw, as_version=4)
    nb.metadata.update(meta)
    text = nbformat.writes(nb, version=4) + '\n'
    if text != raw: path.write_text(text, encoding='utf-8')
    return text != raw

if __name__ == '__main__':
    meta = kernel_metadata()
    for p in [Path(a) for a in sys.argv[1:]] or sorted((REPO / 'nbs').glob('*.ipynb')):
        if restore(p, meta): print(f'{p.name}: kernel metadata restored')
