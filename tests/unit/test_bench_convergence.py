"""bench/bench_generator_convergence.py's bookkeeping: the slice it plans, hits packed into a job record,
and the paired summary against today's recipe (the training itself is notebook 05's, tested elsewhere)."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import bench_generator_convergence as bench  # noqa: E402
import bench_malloc_faults  # noqa: E402


def record(arm: str, epochs: int, seed: int, hits: dict[str, np.ndarray]) -> dict:
    row = {"arm": arm, "epochs": epochs, "scheme": "content/rq_kmeans", "seed": seed,
           "examples_per_s_per_thread": 100.0, "job_seconds_with_pretrain": 10.0}
    for task, h in hits.items():
        row[f"{task}_cases"] = [f"c{i}" for i in range(len(h))]
        row[f"{task}_targets"] = list(range(len(h)))
        row[f"{task}_hits"] = np.packbits(h.astype(bool)).tobytes().hex()
        row[f"val_{task}"] = float(h.mean())
    return row


def test_levers_run_at_the_profiles_own_length_and_curves_at_every_length():
    jobs = bench.plan("smoke", ["today", "warm", "history5"], ["content/rq_kmeans"], [1, 2], [0, 1])
    lengths = {(j["arm"], j["epochs"]) for j in jobs}
    assert lengths == {("today", 1), ("today", 2), ("warm", 1), ("warm", 2), ("history5", 1)}  # smoke: 1 epoch
    assert len(jobs) == 10 and len({bench.job_id(j) for j in jobs}) == 10


def test_packed_hits_round_trip_and_the_summary_pairs_each_arm_with_today():
    gen = np.random.default_rng(0)
    base = {t: (gen.random(37) < 0.3).astype(float) for t in bench.TASKS}
    better = {t: np.maximum(h, gen.random(37) < 0.5) for t, h in base.items()}
    records = [record("today", 1, k, base) for k in (0, 1)] + [record("today", 2, k, better) for k in (0, 1)]
    records += [record("warm", 2, k, base) for k in (0, 1)]
    np.testing.assert_array_equal(bench.hits_of(records[0], "search"), base["search"])
    rows = {(r["arm"], r["epochs"]): r for r in bench.summarise(records, own_epochs=1)}
    assert "paired_search" not in rows[("today", 1)]  # the reference itself
    longer = rows[("today", 2)]["paired_rec"]
    assert longer["vs"] == "today@1" and longer["diff"] == pytest.approx(better["rec"].mean() - base["rec"].mean(), abs=1e-4)
    warm = rows[("warm", 2)]["paired_search"]
    assert warm["vs"] == "today@2" and warm["diff"] == pytest.approx(base["search"].mean() - better["search"].mean(), abs=1e-4)
    assert rows[("today", 1)]["val_search_seed_sd"] == 0.0


def test_the_malloc_bench_reads_what_run_all_sh_exports(tmp_path):
    settings = bench_malloc_faults.run_all_malloc_settings()
    assert set(settings) == set(bench_malloc_faults.MALLOC_VARIABLES)
    assert int(settings["MALLOC_MMAP_THRESHOLD_"]) <= 32 * 2**20  # glibc ignores a larger mmap threshold
    script = tmp_path / "run_all.sh"
    script.write_text('export MALLOC_TOP_PAD_="${MALLOC_TOP_PAD_:-1}"\n')
    with pytest.raises(SystemExit, match="MALLOC_MMAP_THRESHOLD_"):
        bench_malloc_faults.run_all_malloc_settings(script)
