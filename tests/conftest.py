from pathlib import Path
import pytest

REPO = Path(__file__).resolve().parents[1]

@pytest.fixture(scope='session')
def cifar():
    "The real CIFAR-10, from $RESNET_FAST_DATA (CI points it at ../shared/data/cifar10)."
    from resnet_fast.data import load_cifar10
    return load_cifar10(download=False)

def pytest_configure(config):
    config.addinivalue_line('markers', 'notebooks: runs a notebook top to bottom as JupyterLab Run All would (minutes each; deselect with -m "not notebooks")')
