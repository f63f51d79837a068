"The rules that decide part 2's claims: each gives each of its outcomes on small made-up result sets, and the instability definition on a committed run."
import csv, math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from resnet_fast.claims import (all_of, batch_claims, forgetting_claims, instability, instability_points, instability_verdict, optimum,
                                part2_verdicts, read_results_csv, sweep_claims, sweep_frame, t_interval, welch_interval, within)

ROOT = Path(__file__).resolve().parents[1]
FACTORS = (1/8, 1/4, 1/2, 1, 2, 4, 8, 16)


def sweep_rows(batch=128, sizes=(6250, 50000), seeds=(0, 1, 2), best=lambda n: 1.0, unstable_from=lambda n: 8.0, noise=0.005, epochs=None):
    "Made-up LR-sweep rows: a parabola in log2(factor) with its minimum at `best(size)`, blowing up from `unstable_from(size)`."
    rng, rows = np.random.default_rng(0), []
    for n in sizes:
        for f in FACTORS:
            for s in seeds:
                blown = f >= unstable_from(n)
                loss = math.nan if blown else 0.5 + 0.05 * (math.log2(f) - math.log2(best(n))) ** 2 + rng.normal(0, noise)
                rows.append(dict(status='ok', batch_size=batch, train_size=n, lr_mult=f, seed=s, test_loss=loss, train_loss=loss,
                                 test_acc=0.1 if blown else 0.9, diverged=blown, train_loss_rise=0.8, **({'epochs': epochs} if epochs else {})))
    return rows


def frame(rows): return instability(sweep_frame(rows))


def test_interval_rules():
    assert [within(0.2, 0.4, 0, 1), within(1.2, 1.5, 0, 1), within(0.8, 1.2, 0, 1), within(math.nan, math.nan, 0, 1)] == \
           ['reproduced', 'not reproduced', 'undecided', 'undecided']
    m, lo, hi, n = t_interval([1.0, 2.0, 3.0])
    assert (m, n) == (2.0, 3) and lo == pytest.approx(2 - 4.302653 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) = 4.3027
    assert math.isnan(t_interval([1.0])[1])
    d, lo, hi = welch_interval([1.0, 1.1, 0.9], [0.0, 0.1, -0.1])
    assert d == pytest.approx(1.0) and lo > 0
    assert all_of('reproduced', 'reproduced') == 'reproduced' and all_of('reproduced', 'undecided') == 'undecided'


def test_instability_marks_the_committed_run_that_blew_up_mid_run():
    "The cpu preset's 6,250-image run at batch 512, factor 1: test loss 2042 at epoch 2, 14% at the end, never 'diverged'."
    d = instability(sweep_frame(read_results_csv(ROOT/'results/cpu/lr_sweep/results.csv')))
    run = d.query('batch_size == 512 and train_size == 6250 and lr_mult == 1').iloc[0]
    assert not run.diverged and run.unstable and 'near chance' in run.why


def test_instability_reasons():
    rows = sweep_rows(sizes=(50000,), seeds=(0,), unstable_from=lambda n: 99)
    for r in rows:
        if r['lr_mult'] == 4: r['train_loss_rise'] = 1.3  # the loss climbed after the peak
        if r['lr_mult'] == 8: r['test_loss'] = 3 * 0.5  # far above the best, at a larger factor
        if r['lr_mult'] == 1/8: r['test_loss'] = 3 * 0.5  # as high, but at a smaller factor: under-training, not instability
    d = frame(rows).set_index('lr_mult')
    assert d.loc[4].why == 'loss rose after the peak' and d.loc[8].why == 'far above the best'
    assert not d.loc[1/8].unstable and not d.loc[1].unstable


@pytest.mark.parametrize('unstable_from, seeds, verdict', [
    (lambda n: 8, (0, 1, 2), 'reproduced'),  # every subset (4, 8]
    (lambda n: 2, (0, 1, 2), 'not reproduced'),  # every subset (1, 2]: too early
    (lambda n: 4 if n == 6250 else 16, (0, 1, 2), 'not reproduced'),  # brackets 4x apart: the subset size matters
    (lambda n: 8, (0,), 'undecided'),  # one seed per point
])
def test_instability_verdict(unstable_from, seeds, verdict):
    points = instability_points(frame(sweep_rows(seeds=seeds, unstable_from=unstable_from)))
    assert instability_verdict(points, centre=8)[0] == verdict


def test_a_curve_cut_short_decides_no_instability_point():
    "A curve run only up to factor 4 and stable there, (4, inf], cannot tell whether it turns unstable at 8: undecided, not a miss."
    d = frame([r for r in sweep_rows(unstable_from=lambda n: 8) if r['lr_mult'] <= 4])
    points = instability_points(d)
    assert (points.last_stable == 4).all() and points.first_unstable.isin([math.inf]).all()
    assert instability_verdict(points, centre=8)[0] == 'undecided'
    whole = instability_points(frame(sweep_rows(best=lambda n: 16.0, unstable_from=lambda n: 99)))  # stable and improving through 16
    assert (whole.last_stable == 16).all() and instability_verdict(whole, centre=8)[0] == 'not reproduced'  # twice the claimed 8: a miss


@pytest.mark.parametrize('best, seeds, noise, verdict', [
    (1.0, (0, 1, 2), 0.002, 'reproduced'),
    (8.0, (0, 1, 2), 0.002, 'not reproduced'),
    (1.9, (0, 1, 2), 0.05, 'undecided'),  # the interval crosses 2
    (1.0, (0,), 0.002, 'undecided'),  # no interval from one seed
])
def test_full_set_optimum(best, seeds, noise, verdict):
    d = frame(sweep_rows(seeds=seeds, best=lambda n: best, unstable_from=lambda n: 99, noise=noise))
    assert {r['claim']: r['verdict'] for r in sweep_claims(d)}['3a'] == verdict


def test_optimum_interval_covers_the_truth():
    d = frame(sweep_rows(sizes=(50000,), best=lambda n: 2 ** 0.4, unstable_from=lambda n: 99))
    o = optimum(d)
    assert o['lo'] < 0.4 < o['hi'] and o['seeds'] == 3


@pytest.mark.parametrize('best_small, verdict', [(4.0, 'reproduced'), (0.25, 'not reproduced')])
def test_smaller_subsets_prefer_larger_factors(best_small, verdict):
    d = frame(sweep_rows(best=lambda n: best_small if n == 6250 else 1.0, unstable_from=lambda n: 99, noise=0.002))
    assert {r['claim']: r['verdict'] for r in sweep_claims(d)}['3b'] == verdict


def batch_frame(diff, seeds, spread=0.001):
    rng = np.random.default_rng(1)
    return pd.DataFrame([dict(batch_size=b, lr_mult=m, seed=s, test_acc=acc + rng.normal(0, spread), test_loss_noise=0.01 if b == 128 else 0.02 + rng.normal(0, 0.001))
                         for b, m, acc in ((128, 1.0, 0.92), (512, 1.1, 0.92 + diff)) for s in range(seeds)])


@pytest.mark.parametrize('diff, seeds, verdict', [(0.0, 5, 'reproduced'), (-0.02, 5, 'not reproduced'), (-0.005, 5, 'undecided'), (0.0, 1, 'undecided')])
def test_batch_512_matches_128(diff, seeds, verdict):
    assert batch_claims(batch_frame(diff, seeds))[0]['verdict'] == verdict


def forgetting_frame(gap4, age4, gap_quarter, age_quarter, seeds=3, spread=0.01):
    rng = np.random.default_rng(2)
    return pd.DataFrame([dict(lr_mult=m, seed=s, diverged=False, test_loss_last3_full_aug=1.0, test_loss_last3_half_no_aug=1.0 + gap + rng.normal(0, spread),
                              forgetting_age_unseen=age + rng.normal(0, spread), forgetting_age_unseen_censored=0)
                         for m, gap, age in ((4, gap4, age4), (0.25, gap_quarter, age_quarter)) for s in range(seeds)])


@pytest.mark.parametrize('gap4, age4, gap_quarter, age_quarter, seeds, verdicts', [
    (0.0, 0.5, 0.3, 1.8, 3, ['reproduced'] * 4),
    (0.5, 3.0, -0.3, 0.2, 3, ['not reproduced'] * 4),
    (0.0, 0.5, 0.3, 1.8, 1, ['undecided'] * 4),
])
def test_forgetting_claims(gap4, age4, gap_quarter, age_quarter, seeds, verdicts):
    rows = forgetting_claims(forgetting_frame(gap4, age4, gap_quarter, age_quarter, seeds))
    assert [r['claim'] for r in rows] == ['5a', '6a', '5b', '6b'] and [r['verdict'] for r in rows] == verdicts


def write_csv(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with open(path, 'w', newline='') as f:
        w = csv.DictWriter(f, columns); w.writeheader(); w.writerows(rows)


def test_part2_verdicts_reads_a_results_folder(tmp_path):
    "From results.csv files alone: every claim, and the conclusion from its parts."
    small = sweep_rows(best=lambda n: 4.0 if n == 6250 else 1.0, unstable_from=lambda n: 8, noise=0.002)
    large = sweep_rows(batch=512, best=lambda n: 4.0 if n == 6250 else 1.0, unstable_from=lambda n: 2, noise=0.002)
    write_csv(tmp_path/'lr_sweep/results.csv', small + large)
    write_csv(tmp_path/'forgetting/results.csv', forgetting_frame(0.0, 0.5, 0.3, 1.8).assign(status='ok').to_dict('records'))
    write_csv(tmp_path/'batch_size/results.csv', batch_frame(0.0, 5).assign(status='ok').to_dict('records'))
    v = part2_verdicts(tmp_path).set_index('claim').verdict
    assert v['2'] == 'reproduced' and v['4a'] == 'reproduced' and v['1a'] == 'reproduced'
    assert v['7'] == all_of(v['3b'], v['4a'], v['6a'])


@pytest.mark.parametrize('unstable_from, best, seeds, full_set_unstable_from, verdict', [
    (8.0, 4.0, (0, 1, 2), 99, 'reproduced'),  # the optimum 4, the bracket (4, 8]: one factor of 2 below it
    (99, 2.0, (0, 1, 2), 99, 'not reproduced'),  # stable through the grid's 16 (an open bracket) with the optimum at 2: three factors below
    (8.0, 4.0, (0,), 99, 'undecided'),  # one seed at the bracket's edges
    (99, 2.0, (0, 1, 2), 8.0, 'not reproduced'),  # the open bracket again, while the full set has an unstable factor
])
def test_smallest_subset_optimum_near_its_instability(unstable_from, best, seeds, full_set_unstable_from, verdict):
    d = frame(sweep_rows(seeds=seeds, best=lambda n: best if n == 6250 else 1.0,
                         unstable_from=lambda n: unstable_from if n == 6250 else full_set_unstable_from, noise=0.002))
    assert {r['claim']: r['verdict'] for r in sweep_claims(d)}['3c'] == verdict


@pytest.mark.parametrize('best, unstable_from, hi', [
    (64.0, 99, math.inf),  # still falling at the grid's last factor, 16: the optimum may lie anywhere beyond it
    (64.0, 8.0, 3.0),  # still falling at the last stable factor, 4: the optimum lies below the first unstable one, 8
    (1.0, 99, None),  # a minimum inside the grid: a closed bootstrap interval
    (1 / 64, 99, 'low'),  # still falling at the grid's first factor, 1/8: open below, down to 0
])
def test_an_optimum_at_the_curves_end_is_open(best, unstable_from, hi):
    o = optimum(frame(sweep_rows(sizes=(6250,), best=lambda n: best, unstable_from=lambda n: unstable_from)))
    if hi is None: assert not (o['open_lo'] or o['open_hi']) and -1 < o['lo'] <= o['log2_opt'] <= o['hi'] < 1
    elif hi == 'low': assert o['open_lo'] and not o['open_hi'] and o['lo'] == -math.inf and o['log2_opt'] == -3
    else: assert o['open_hi'] and not o['open_lo'] and o['hi'] == hi and o['lo'] <= o['log2_opt'] < hi


def test_an_open_bracket_cannot_confirm_claim_3c():
    "Stable through the grid at 6,250 images with the optimum at its last factor: where it turns unstable is unknown, so 3c is undecided."
    d = frame(sweep_rows(best=lambda n: 16.0 if n == 6250 else 1.0, unstable_from=lambda n: 99, noise=0.002))
    assert {r['claim']: r['verdict'] for r in sweep_claims(d)}['3c'] == 'undecided'
