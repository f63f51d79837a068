"The engine keeps freed memory while a run trains on the CPU: a step reuses the last step's pages instead of page-faulting fresh ones."
import json, os, platform, subprocess, sys
from contextlib import contextmanager
import pytest, torch
import resnet_fast.machine as machine, resnet_fast.training as training
from resnet_fast.machine import freed_memory_kept
from resnet_fast.training import RECIPES, run

GLIBC = platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc'
CPU = torch.device('cpu')

SCRIPT = '''
import json, resource, torch
from torch import nn
from resnet_fast.machine import freed_memory_kept
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.manual_seed(0)
x = torch.randn(256, 64, 32, 32, requires_grad=True); conv = nn.Conv2d(64, 64, 3, padding=1)
def per_pass(n=5):
    conv(x).square().sum().backward()  # warm up: the heap grows to the pass's peak here
    before = faults()
    for _ in range(n): conv(x).square().sum().backward()
    return (faults() - before) / n
before = per_pass()
with freed_memory_kept(torch.device('cpu')) as kept: inside = per_pass()
print(json.dumps(dict(before=before, kept=kept, inside=inside, after=per_pass())))
'''

@pytest.mark.skipif(not GLIBC, reason='mallopt is glibc only')
def test_kept_memory_stops_page_faults_and_ends_with_the_block():
    # a fresh process, without the environment's own malloc settings
    env = {k: v for k, v in os.environ.items() if not k.startswith(('MALLOC_', 'GLIBC_TUNABLES', 'LD_PRELOAD'))}
    done = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    pass_pages = 256 * 64 * 32 * 32 * 4 // 4096  # one activation-sized block in 4 KiB pages
    assert out['kept'] is True
    assert out['before'] >= pass_pages, out  # glibc hands each large block back: every pass faults its pages in again
    assert out['inside'] < out['before'] / 10, out  # kept: the next pass reuses them (now and then a block is still mapped afresh)
    assert out['after'] >= pass_pages, out  # glibc's defaults are back: memory goes back to the OS again

def test_kept_memory_says_whether_it_held(monkeypatch):
    with freed_memory_kept(CPU) as held: assert held is GLIBC
    with freed_memory_kept(torch.device('cuda')) as held: assert held is False  # CUDA has its own caching allocator
    monkeypatch.setattr(machine.platform, 'libc_ver', lambda: ('', ''))  # musl, macOS, Windows: nothing to set
    with freed_memory_kept(CPU) as held: assert held is False

def test_a_cpu_run_trains_inside_it_and_records_it(cifar, monkeypatch):
    devices = []
    @contextmanager
    def recording(device): devices.append(device); yield True
    monkeypatch.setattr(training, 'freed_memory_kept', recording)
    r = run(RECIPES['fast'], width=0.125, epochs=1, batch_size=256, train_size=512, data=cifar, progress=False, device='cpu')
    assert devices == [CPU] and r.hardware['malloc_keeps_freed_memory'] is True
