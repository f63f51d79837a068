"The notebooks are the source of truth: they run, and the package is exactly what they export."
import filecmp, shutil, subprocess, sys
from pathlib import Path
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

def test_notebooks_run():
    "`nbdev_test` runs every notebook (cells flagged `slow` or `eval: false` are skipped)."
    res = subprocess.run([BIN / 'nbdev_test', '--n_workers', '1'], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-5000:]

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

def test_readme_is_generated_from_index():
    res = subprocess.run([sys.executable, REPO / 'tools' / 'make_readme.py', '--check'], cwd=REPO, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
