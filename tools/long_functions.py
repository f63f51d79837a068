"""List the package's functions over 40 lines, each with the reason it is that long, and every module's length.

    python tools/long_functions.py        # prints the table; exit 1 if a long function has no reason below

A function grows past 40 lines only with a reason written here; tests/test_hygiene.py runs this check, so a new long
function fails the tests until it is split or its reason is added.
"""
from __future__ import annotations
import ast, sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LIMIT = 40
MODULE_LIMIT = 450

REASONS = {  # module.function: why it is one function
    'claims.sweep_claims': "one row per claim of the LR sweep (2, 3a-c, 4a, 4b), each rule written beside the article's words for it",
    'bench.bench': "checks every flag before work, then one seed after another with its file; the seeds' files, the lock and "
                   'the peer share one scope',
    'sweep.sweep': 'the documented entry point: 14 parameters, each with its comment, checked before any work',
    'sweep._sweep_locked': 'the event loop of a sweep: start runs, collect outcomes, retry lost ones, stop on a signal; '
                           'the counters and the queue it updates are one state',
}

def long_functions(package:Path=REPO / 'resnet_fast') -> list[tuple[str, int]]:
    "(module.function, lines) of every function over `LIMIT` lines in the package, longest first."
    out = []
    for path in sorted(package.glob('*.py')):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > LIMIT:
                out.append((f'{path.stem}.{node.name}', node.end_lineno - node.lineno + 1))
    return sorted(out, key=lambda x: -x[1])

def module_lines(package:Path=REPO / 'resnet_fast') -> dict[str, int]:
    "Lines of each module (the generated index `_modidx` aside)."
    return {p.name: len(p.read_text().splitlines()) for p in sorted(package.glob('*.py')) if p.name != '_modidx.py'}

def main() -> int:
    missing = []
    for name, n in long_functions():
        print(f'{n:4d} lines  {name}: {REASONS.get(name, "NO REASON GIVEN")}')
        if name not in REASONS: missing.append(name)
    big = {m: n for m, n in module_lines().items() if n > MODULE_LIMIT}
    print(f'largest module: {max(module_lines().items(), key=lambda x: x[1])}; over {MODULE_LIMIT} lines: {big or "none"}')
    if missing: print(f'functions over {LIMIT} lines without a reason in {Path(__file__).name}: {missing}')
    return 1 if missing or big else 0

if __name__ == '__main__': sys.exit(main())
