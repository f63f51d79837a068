"The engine keeps freed memory on the CPU: a step reuses the last step's pages instead of page-faulting fresh ones."
import json, platform, subprocess, sys
import pytest

SCRIPT = '''
import json, resource, torch
from torch import nn
from resnet_fast.training import keep_freed_memory
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
torch.manual_seed(0)
x = torch.randn(256, 64, 32, 32, requires_grad=True); conv = nn.Conv2d(64, 64, 3, padding=1)
def per_pass(n=3):
    conv(x).square().sum().backward()  # warm up: the heap grows to the pass's peak here
    before = faults()
    for _ in range(n): conv(x).square().sum().backward()
    return (faults() - before) / n
print(json.dumps(dict(before=per_pass(), kept=keep_freed_memory(), after=per_pass())))
'''

@pytest.mark.skipif(platform.system() != 'Linux' or platform.libc_ver()[0] != 'glibc', reason='mallopt is glibc only')
def test_keep_freed_memory_stops_page_faults():
    # a fresh process, so that no earlier test has set malloc's options yet
    out = json.loads(subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True, check=True).stdout)
    pass_pages = 256 * 64 * 32 * 32 * 4 // 4096  # one activation-sized block in 4 KiB pages
    assert out['kept'] is True
    assert out['before'] >= pass_pages, out  # glibc hands each large block back: every pass faults its pages in again
    assert out['after'] < pass_pages / 100, out  # kept: the next pass reuses them

def test_keep_freed_memory_is_harmless_to_repeat():
    from resnet_fast.training import keep_freed_memory
    assert keep_freed_memory() == keep_freed_memory()
