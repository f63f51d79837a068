"""Time `make test` in a fresh clone and measure the memory it takes, for the README.

    python tools/measure_make_test.py CLONE --beside 'what else ran on the machine' [--out results/make_test]

CLONE is a fresh `git clone` of the repository (no .venv yet: `make test` installs everything, as a new user's
first run does). The script runs `make test` there and, every 2 seconds, sums the proportional set size (PSS: each
shared page counted once across the processes sharing it) of every process under it, so the peak is the memory
the suite itself needed at its busiest moment; it also records how much of the machine's memory was in use. The
record (JSON) names the commit, the CPU, the wall time, the exit code, the pytest summary line and `--beside`,
the load that ran alongside; it goes to OUT/<cpu family>-<model>_<commit>.json, never over an earlier one. The
output of `make test` goes beside it as a .log.
"""
from __future__ import annotations
import argparse, json, os, re, subprocess, sys, threading, time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
import torch  # noqa: E402
from resnet_fast.machine import hardware  # noqa: E402  (the record's hardware, as every record has it)
from resnet_fast.records import write_atomic  # noqa: E402
from resnet_fast.runs import _descendants  # noqa: E402  (the sweep's walk of a process tree)

def pss_bytes(pid:int) -> int:
    "The process's proportional set size (0 once it has gone)."
    try: m = re.search(r'^Pss:\s+(\d+) kB', Path(f'/proc/{pid}/smaps_rollup').read_text(), re.M)
    except OSError: return 0
    return int(m.group(1)) * 1024 if m else 0

def used_bytes() -> int:
    "The machine's memory in use (MemTotal - MemAvailable)."
    info = dict(re.findall(r'^(\w+):\s+(\d+) kB', Path('/proc/meminfo').read_text(), re.M))
    return (int(info['MemTotal']) - int(info['MemAvailable'])) * 1024

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('clone', type=Path, help='a fresh clone of the repository')
    ap.add_argument('--beside', required=True, help='the load that runs alongside, in words (say "nothing" for a quiet machine)')
    ap.add_argument('--out', type=Path, default=REPO / 'results' / 'make_test', help='folder of the records (default: results/make_test)')
    a = ap.parse_args(argv)
    clone = a.clone.resolve()
    if not (clone / 'Makefile').exists(): sys.exit(f'{clone}: not a clone of the repository (no Makefile)')
    if (clone / '.venv').exists(): sys.exit(f'{clone}/.venv exists: give a fresh clone, so that the time includes the install')
    commit = subprocess.run(['git', '-C', str(clone), 'rev-parse', '--short', 'HEAD'], capture_output=True, text=True, check=True).stdout.strip()
    hw = hardware(torch.device('cpu'))
    name = f"{hw.get('cpu_family', 'cpu')}-{hw.get('cpu_model', '')}_{commit}"
    record, log = a.out / f'{name}.json', a.out / f'{name}.log'
    if record.exists(): sys.exit(f'{record} exists: a record is never overwritten')
    a.out.mkdir(parents=True, exist_ok=True)
    peak, peak_used, baseline, done = [0], [0], used_bytes(), threading.Event()
    started, t0 = datetime.now(timezone.utc).isoformat(timespec='seconds'), time.perf_counter()
    with open(clone / 'make_test.log', 'w') as out:
        proc = subprocess.Popen(['make', 'test'], cwd=clone, stdout=out, stderr=subprocess.STDOUT)
        def sample():
            while not done.wait(2):
                peak[0] = max(peak[0], sum(pss_bytes(p) for p in [proc.pid, *_descendants(proc.pid)]))
                peak_used[0] = max(peak_used[0], used_bytes())
        threading.Thread(target=sample, daemon=True).start()
        rc = proc.wait(); done.set()
    wall = time.perf_counter() - t0
    text = (clone / 'make_test.log').read_text(errors='replace')
    summary = next((l.strip() for l in reversed(text.splitlines()) if re.search(r'\d+ (passed|failed)', l)), None)
    write_atomic(log, text, replace=False)
    data = dict(commit=commit, started=started, command='make test', exit_code=rc, wall_s=round(wall, 1), pytest_summary=summary,
                peak_pss_gib=round(peak[0] / 2**30, 2), machine_used_gib=dict(before=round(baseline / 2**30, 2), peak=round(peak_used[0] / 2**30, 2)),
                memory_total_gib=round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30, 1), beside=a.beside, hardware=hw)
    write_atomic(record, json.dumps(data, indent=1) + '\n', replace=False)
    print(f'make test: exit {rc} in {wall / 60:.1f} min; {summary}; peak memory of the suite {data["peak_pss_gib"]} GiB; wrote {record}')
    return rc

if __name__ == '__main__': sys.exit(main())
