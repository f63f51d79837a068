"""A new user follows the README line by line: every shell command in it works as typed.

Every command of the README's `sh` blocks is checked for what it names: a `make` target exists in the Makefile, a
`resnet-fast` command line parses with the command's own parser (nothing is trained), a `papermill` line names a
notebook in nbs/ and parameters of its `parameters` cell, `source` names the environment's activation script. The
cheap ones also run in a fresh shell: the activation line followed by `resnet-fast --help`, and the papermill
command that shows a committed run (its output notebook goes to a scratch folder)."""
import json, os, re, shlex, subprocess, sys
from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def readme_commands() -> list[list[str]]:
    "The README's shell commands, one per line of its `sh` blocks, as argument lists without comments or VAR=value prefixes."
    text = (REPO / 'README.md').read_text()
    commands = []
    for block in re.findall(r'```(?:sh|bash|shell)\n(.*?)```', text, re.S):
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r'[A-Z_][A-Z0-9_]*=\S*', words[0]): words.pop(0)
            if words: commands.append(words)
    return commands

COMMANDS = readme_commands()

def parameters_of(notebook:Path) -> set[str]:
    "The names the notebook's papermill `parameters` cell assigns."
    cell = next(c for c in json.loads(notebook.read_text())['cells'] if 'parameters' in c.get('metadata', {}).get('tags', []))
    return set(re.findall(r'^(\w+)\s*=', ''.join(cell['source']), re.M))

def check(words:list[str]):
    "Assert that one README command names things that exist, with arguments its program accepts."
    tool, args = words[0], words[1:]
    if tool == 'make':
        targets = set(re.findall(r'^([\w-]+)\s*:', (REPO / 'Makefile').read_text(), re.M))
        assert set(args) <= targets, f'make {args}: the Makefile has targets {sorted(targets)}'
    elif tool == 'source':
        assert args == ['.venv/bin/activate'], f'source {args}: the environment the Makefile makes is .venv'
    elif tool == 'resnet-fast':
        from resnet_fast.cli import parser
        p = parser()
        try: ns, unknown = p.parse_known_args(args)
        except SystemExit as e: pytest.fail(f'{shlex.join(words)}: refused by its parser (exit {e.code})')
        assert not unknown, f'{shlex.join(words)}: unknown arguments {unknown}'
    elif tool == 'papermill':
        notebook = REPO / args[0]
        assert notebook.exists(), f'{args[0]} does not exist'
        given = [args[i + 1] for i, a in enumerate(args) if a in ('-p', '-r')]
        assert set(given) <= parameters_of(notebook), f'{shlex.join(words)}: {args[0]} has parameters {sorted(parameters_of(notebook))}'
    else: pytest.fail(f'the README runs {tool!r}, which this test does not know how to check: teach it')

@pytest.mark.parametrize('words', COMMANDS, ids=[shlex.join(w)[:60] for w in COMMANDS])
def test_every_readme_command_names_what_exists(words):
    check(words)

def test_the_readme_has_its_commands():
    tools = {w[0] for w in COMMANDS}
    assert {'make', 'source', 'resnet-fast', 'papermill'} <= tools, tools

def test_activation_then_the_command_works_in_a_fresh_shell():
    "`source .venv/bin/activate` (here: the environment running the tests), then `resnet-fast --help`, as a new shell would."
    activate = BIN / 'activate'
    if not activate.exists(): pytest.skip(f'{sys.executable} is not in a virtual environment with an activate script')
    env = {k: v for k, v in os.environ.items() if k not in ('VIRTUAL_ENV', 'PYTHONPATH')} | {'PATH': '/usr/local/bin:/usr/bin:/bin'}
    res = subprocess.run(['bash', '--noprofile', '--norc', '-c', f'source {shlex.quote(str(activate))} && resnet-fast --help && command -v papermill'],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert 'train' in res.stdout and 'sweep' in res.stdout and res.stdout.strip().endswith('papermill')

@pytest.mark.notebooks
def test_the_papermill_command_that_shows_a_committed_run(tmp_path):
    "The README's first papermill line, as typed but for where its output notebook goes: it runs and shows the committed run."
    words = next(w for w in COMMANDS if w[0] == 'papermill')
    out = tmp_path / 'out.ipynb'
    args = [str(out) if a == 'out.ipynb' else a for a in words[1:]]
    res = subprocess.run([BIN / 'papermill', *args, '--no-progress-bar'], cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    text = ''.join(''.join(o.get('text', '')) + ''.join(o.get('data', {}).get('text/plain', ''))
                   for c in json.loads(out.read_text())['cells'] for o in c.get('outputs', []))
    assert 'committed' in text, 'the notebook did not say it shows the committed run'
