"""Write README.md from nbs/index.ipynb, nbdev's way, without Quarto.

Markdown cells are copied; code cells become fenced Python blocks followed by their text output (a displayed
Markdown object, such as the chapter table, as Markdown);
cells with a `#| hide` directive are left out. `--check` exits 1 if README.md is out of date."""
import json, sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

def render(nb_path=REPO / 'nbs' / 'index.ipynb') -> str:
    cells = json.loads(Path(nb_path).read_text())['cells']
    parts = []
    for cell in cells:
        src = ''.join(cell['source'])
        lines = src.splitlines()
        directives = [l for l in lines if l.startswith('#|')]
        if any(d.replace(' ', '') in ('#|hide', '#|exec_doc') for d in directives): continue
        echo = not any(d.replace(' ', '') == '#|echo:false' for d in directives)
        body = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
        if cell['cell_type'] == 'markdown': parts.append(body)
        elif cell['cell_type'] == 'code' and body:
            if echo: parts.append(f'```python\n{body}\n```')
            outputs = cell.get('outputs', [])
            markdown = ''.join(''.join(o.get('data', {}).get('text/markdown', '')) for o in outputs)
            if markdown.strip(): parts.append(markdown.strip()); continue  # a displayed Markdown object (a table, say) is part of the page
            text = ''.join(''.join(o.get('text', '')) if o['output_type'] == 'stream' else ''.join(o.get('data', {}).get('text/plain', ''))
                           for o in outputs)
            if text.strip(): parts.append(f'```\n{text.rstrip()}\n```')
    return '<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook, not this file -->\n\n' + '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text, readme = render(), REPO / 'README.md'
    if '--check' in sys.argv:
        if not readme.exists() or readme.read_text() != text: sys.exit('README.md is out of date: run python tools/make_readme.py')
    else: readme.write_text(text)
