"The engine keeps freed memory on the CPU: a step reuses the last step's pages instead of page-faulting fresh ones."
import json, os, platform, subprocess, sys
import pytest
import resnet_fast.training as training
from resnet_fast.training import RECIPES, keep_freed_memory, run

GLIBC = platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc'

SCRIPT = '''
import json, resource, torch
from torch import nn
from resnet_fast.training import keep_freed_memory
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.manual_seed(0)
x = torch.randn(256, 64, 32, 32, requires_grad=True); conv = nn.Conv2d(64, 64, 3, padding=1)
def per_pass(n=5):
    conv(x).square().sum().backward()  # warm up: the heap grows to the pass's peak here
    before = faults()
    for _ in range(n): conv(x).square().sum().backward()
    return (faults() - before) / n
print(json.dumps(dict(before=per_pass(), kept=keep_freed_memory(), after=per_pass())))
'''

@pytest.mark.skipif(not GLIBC, reason='mallopt is glibc only')
def test_keep_freed_memory_stops_page_faults():
    # a fresh process, so that no earlier test has set malloc's options yet; without the environment's own malloc settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(('MALLOC_', 'GLIBC_TUNABLES', 'LD_PRELOAD'))}
    done = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    pass_pages = 256 * 64 * 32 * 32 * 4 // 4096  # one activation-sized block in 4 KiB pages
    assert out['kept'] is True
    assert out['before'] >= pass_pages, out  # glibc hands each large block back: every pass faults its pages in again
    assert out['after'] < out['before'] / 10, out  # kept: the next pass reuses them (now and then one block is still mapped afresh)

def test_keep_freed_memory_says_whether_it_held(monkeypatch):
    assert keep_freed_memory() is GLIBC and keep_freed_memory() is GLIBC  # asking twice changes nothing
    monkeypatch.setattr(training, '_malloc_keeps_freed', False)
    monkeypatch.setattr(training.platform, 'libc_ver', lambda: ('', ''))  # musl, macOS, Windows: nothing to set
    assert keep_freed_memory() is False

def test_training_on_the_cpu_asks_for_it_and_records_it(cifar, monkeypatch):
    calls = []
    monkeypatch.setattr(training, 'keep_freed_memory', lambda: calls.append(1) or True)
    r = run(RECIPES['fast'], width=0.125, epochs=1, batch_size=256, train_size=512, data=cifar, progress=False, device='cpu')
    assert calls and 'malloc_keeps_freed_memory' in r.hardware
