"The notebooks are the source of truth: they run, and the package is exactly what they export."
import subprocess, sys
from pathlib import Path
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def test_notebooks_run():
    "`nbdev_test` runs every notebook (cells flagged `slow` or `eval: false` are skipped)."
    res = subprocess.run([BIN / 'nbdev_test', '--n_workers', '1'], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]

def test_export_matches_package():
    "`nbdev_export` reproduces resnet_fast/ byte for byte: nobody edited an exported file by hand."
    files = sorted((REPO / 'resnet_fast').glob('*.py'))
    before = {f: f.read_text() for f in files}
    subprocess.run([BIN / 'nbdev_export'], cwd=REPO, check=True)
    after = {f: f.read_text() for f in sorted((REPO / 'resnet_fast').glob('*.py'))}
    changed = [str(f.relative_to(REPO)) for f in set(before) | set(after) if before.get(f) != after.get(f)]
    assert not changed, f'nbdev_export changed {changed}: export and commit the notebooks and package together'

def test_readme_is_generated_from_index():
    res = subprocess.run([sys.executable, REPO / 'tools' / 'make_readme.py', '--check'], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
