"A public recipe beside one of ours: what `bench --peer` checks before any work, and the data it hands the peer."
import pytest, torch
from resnet_fast.bench import PEERS, airbench_files, bench, check_peer, summarise
from resnet_fast.cli import main
from resnet_fast.report import format_peer
from resnet_fast.training import RECIPES

def test_a_peer_is_refused_before_any_work_unless_it_is_known_and_the_device_is_cuda(tmp_path):
    out = tmp_path/'b.json'
    with pytest.raises(ValueError, match=r"peer='airbench94' needs a CUDA device .*device is cpu"):
        bench(RECIPES['fastest'], seeds=1, device='cpu', out=out, peer='airbench94')
    with pytest.raises(ValueError, match=r"peer='airbench95' is not allowed: choose one of \['airbench94'\]"):
        bench(RECIPES['fastest'], seeds=1, device='cpu', out=out, peer='airbench95')
    assert not out.exists() and list(tmp_path.iterdir()) == []  # nothing trained, nothing written
    assert check_peer(None, torch.device('cpu')) is None

def test_the_cli_reports_a_refused_peer_as_a_usage_error(tmp_path, capsys):
    assert main(['bench', '--recipe', 'fastest', '--seeds', '1', '--device', 'cpu', '--peer', 'airbench94', '--out', str(tmp_path/'b.json')]) == 2
    assert 'needs a CUDA device' in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

def test_airbench_reads_exactly_the_images_and_labels_bench_trains_on(cifar, tmp_path):
    airbench = pytest.importorskip('airbench')
    folder = airbench_files(cifar, tmp_path)
    assert folder == tmp_path/'cifar10' and sorted(p.name for p in folder.iterdir()) == ['test.pt', 'train.pt']
    for split, images, labels in (('train', cifar.train_images, cifar.train_labels), ('test', cifar.test_images, cifar.test_labels)):
        saved = torch.load(folder/f'{split}.pt', weights_only=True)  # plain tensors and strings: loads without running code
        assert saved['images'].dtype == torch.uint8 and saved['images'].shape == (len(labels), 32, 32, 3)
        assert torch.equal(saved['images'].permute(0, 3, 1, 2), images) and torch.equal(saved['labels'], labels)
        theirs = airbench.CifarLoader(str(folder), train=split == 'train', gpu='cpu')  # airbench's own loader, on the CPU
        assert torch.equal(theirs.labels, labels) and torch.equal(theirs.images, images.half() / 255)
        assert theirs.classes[0] == 'airplane' and len(theirs.classes) == 10
    assert set(PEERS) == {'airbench94'} and 'train94' in dir(airbench)

def test_a_peer_in_a_record_is_summarised_and_reported_beside_the_recipe():
    "Made-up numbers (a check of the arithmetic and the wording, not a result)."
    runs = [dict(seed=s, test_acc=a, wall_time=t) for s, a, t in [(0, 0.9405, 3.0), (1, 0.9391, 3.2), (2, 0.9412, 3.1)]]
    s = summarise(runs)
    assert s['median_wall_time'] == 3.1 and 'median_images_per_s' not in s and s['fraction_reaching_target'] == pytest.approx(2 / 3)
    peer = dict(peer='airbench94', package='airbench', version='0.1.8', settings={}, runs=runs, summary=s, time_ratio=0.8)
    text = format_peer(peer)
    assert 'peer airbench94 (airbench 0.1.8 from PyPI' in text and 'median wall time 3.10 s' in text and '0.80x the peer' in text
    assert format_peer(None) == ''
