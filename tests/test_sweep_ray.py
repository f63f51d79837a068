"""The sweep on a Ray cluster (`pip install 'resnet_fast[ray]'`): a local cluster of a head and two worker nodes on this
machine, a `smoke` sweep of the LR grid (4 combinations) through it, a worker killed mid-run, a driver killed and restarted.
Skipped where Ray is not installed; `make test` installs it."""
import os, signal, threading, time
from pathlib import Path
import pytest

ray = pytest.importorskip('ray')
from ray.cluster_utils import Cluster
from resnet_fast.grids import read_metrics
from resnet_fast.runs import _descendants
from resnet_fast.sweep import sweep
from test_sweep import DATA, alive, assert_complete, kernels, marked, rows, start_driver, summaries, wait_for

ALL_NODES = 2

@pytest.fixture(scope='module')
def cluster():
    "A head node that runs nothing (0 CPUs) and two worker nodes of 1 CPU each; every process of the cluster ends with it."
    c = Cluster(initialize_head=True, head_node_args=dict(num_cpus=0, include_dashboard=False))
    try:
        for _ in range(ALL_NODES): c.add_node(num_cpus=1)
        c.wait_for_nodes()
        yield c
    finally:
        ours = [i.process.pid for n in c.list_all_nodes() for infos in n.all_processes.values() for i in infos]
        ours += [p for pid in ours for p in _descendants(pid)]  # the nodes' worker processes
        c.shutdown()
        wait_for(lambda: not any(alive(p) for p in ours), 60, 'every process of the Ray cluster to end')

def sweep_kw(tmp_path, cluster, **kw):
    return dict(experiment='lr_sweep', preset='smoke', results_dir=tmp_path / 'results', backend='ray', address=cluster.address,
                threads=1, data_dir=DATA, **kw)

def test_ray_sweep_gives_the_local_results(cluster, tmp_path):
    "Same combinations, same numbers (same seeds and threads, on the CPU) and the same table as the local backend, spread over both workers."
    local = sweep('lr_sweep', 'smoke', tmp_path / 'local', workers=2, threads=1, data_dir=DATA, progress=False)
    counts = sweep(**sweep_kw(tmp_path, cluster))
    assert counts == local == dict(done=4, skipped=0, failed=0)
    d, l = tmp_path / 'results' / 'smoke' / 'lr_sweep', tmp_path / 'local' / 'smoke' / 'lr_sweep'
    assert_complete(d)
    assert summaries(d) == summaries(l)
    strip = lambda rs: [{k: v for k, v in r.items() if 'time' not in k} for r in rs]
    assert strip(rows(d)) == strip(rows(l))
    info = [read_metrics(p)['sweep'] for p in sorted(d.glob('*=*.json'))]
    assert {i['backend'] for i in info} == {'ray'} and {i['attempts'] for i in info} == {1}
    assert len({i['node'] for i in info}) == ALL_NODES  # the work was spread over the cluster
    assert not ray.is_initialized()  # the sweep disconnected

def test_a_worker_killed_mid_run_is_retried_and_recorded(cluster, tmp_path):
    d = tmp_path / 'results' / 'smoke' / 'lr_sweep'
    killed = []
    def kill_one_worker():
        "SIGKILL the Ray worker process executing the first run seen (the parent of its papermill)."
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not killed:
            for pid in kernels(d):
                papermill = int(Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[1])
                worker = int(Path(f'/proc/{papermill}/stat').read_text().rsplit(')', 1)[1].split()[1])
                if b'ray::' in Path(f'/proc/{worker}/cmdline').read_bytes():
                    os.kill(worker, signal.SIGKILL); killed.append((worker, papermill, pid)); return
            time.sleep(0.2)
    killer = threading.Thread(target=kill_one_worker); killer.start()
    try: counts = sweep(**sweep_kw(tmp_path, cluster, max_retries=2), progress=False)
    finally: killer.join()
    assert killed, 'no worker was killed'
    assert counts == dict(done=4, skipped=0, failed=0)
    assert_complete(d)
    attempts = {p.stem: read_metrics(p)['sweep']['attempts'] for p in d.glob('*=*.json')}
    assert sorted(attempts.values()) == [1, 1, 1, 2]  # the killed run once more, the others once
    assert sorted(r['attempts'] for r in rows(d)) == ['1', '1', '1', '2']
    assert not any(alive(p) for p in killed[0])

def test_a_killed_driver_restarted_resumes_without_rerunning_finished_runs(cluster, tmp_path):
    d = tmp_path / 'results' / 'smoke' / 'lr_sweep'
    kw = sweep_kw(tmp_path, cluster)
    driver = start_driver(tmp_path / 'driver.log', **kw)
    finished = lambda: [p for p in d.glob('*=*.json') if read_metrics(p)]
    try: wait_for(lambda: finished() and kernels(d), 240, 'a finished run and another in flight')
    finally: driver.kill(); driver.wait()
    done = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_text()) for p in finished()}
    wait_for(lambda: marked(d) == [], 60, "the killed driver's runs to end")  # Ray ends the tasks of a dead driver
    counts = sweep(**kw, progress=False)
    assert counts == dict(done=4 - len(done), skipped=len(done), failed=0)
    assert {n: (p.stat().st_ino, p.stat().st_mtime_ns, p.read_text()) for n, p in ((n, d / n) for n in done)} == done  # not rerun
    assert_complete(d)
