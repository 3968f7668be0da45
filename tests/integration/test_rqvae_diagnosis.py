"""The RQ-VAE diagnosis (notebook 04): caching and resume, the plan from the profile, tables, the registered fix."""

import shutil

import numpy as np
import pytest

from jointsid_utils.config import load_config
from jointsid_utils.errors import StudyInputError
from jointsid_utils.ids import rqvae_diagnosis as rd
from jointsid_utils.ids import rqvae_tables as rt
from jointsid_utils.quantizers import QUANTIZERS, RQVAE, make_quantizer
from jointsid_utils.runtime.workers import machine_cores, plan_workers

TINY = dict(levels=2, codebook_size=8, steps=40, batch_size=128, hidden_dims=(64, 32), latent_dim=16, log_every=10)


@pytest.fixture(scope="module")
def unit_vectors():
    """Sentence-embedding-like data: 400 unit vectors in 64-d around 16 nearby directions, so the
    per-coordinate scale is small (about 0.1), as for MiniLM item vectors."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(16, 64)) * 0.3 + rng.normal(size=(1, 64))
    X = centres[rng.integers(0, 16, 400)] + 0.1 * rng.normal(size=(400, 64))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def test_grid_caches_and_resumes(unit_vectors, tmp_path, runs_dir, monkeypatch):
    names = ["paper_like", "kmeans_init+dead_code"]
    first = rd.run_grid({"toy": unit_vectors}, TINY, tmp_path, names, seeds=[0, 1], progress=False)
    assert [(r["name"], r["seed"]) for r in first] == [(n, s) for n in names for s in (0, 1)]
    files = sorted((tmp_path / "toy").glob("*.json"))
    assert len(files) == 4

    calls = []
    real = rd._fit_record
    monkeypatch.setattr(rd, "_fit_record", lambda X, cfg: calls.append(cfg["seed"]) or real(X, cfg))
    again = rd.run_grid({"toy": unit_vectors}, TINY, tmp_path, names, seeds=[0, 1], progress=False)
    assert calls == []  # a second call loads every run instead of retraining
    assert [r["collision_rate"] for r in again] == [r["collision_rate"] for r in first]

    files[0].unlink()  # a run folder that lost a record links it again from the store
    rd.run_grid({"toy": unit_vectors}, TINY, tmp_path, names, seeds=[0, 1], progress=False)
    assert calls == [] and files[0].exists()
    entries = sorted((runs_dir / ".store" / "rqvae_diagnosis").iterdir())
    shutil.rmtree(entries[0] / "out")  # a run killed before it published: only that run recomputes
    rd.run_grid({"toy": unit_vectors}, TINY, tmp_path, names, seeds=[0, 1], progress=False)
    assert len(calls) == 1

    rd.run_grid({"toy": unit_vectors}, {**TINY, "steps": 20}, tmp_path, names[:1], seeds=[0], progress=False)
    assert len(calls) == 2  # a changed config is a new run, not a stale cache hit


def test_tables_and_history_fields(unit_vectors, tmp_path, runs_dir):
    records = rd.run_grid({"toy": unit_vectors}, TINY, tmp_path, ["paper_like", "residual_only"], seeds=[0, 1],
                          progress=False)
    for r in records:
        assert {"collision_rate", "max_items_per_prefix", "levels", "reconstruction_mse", "history",
                "probe_init", "probe_final"} <= set(r)
        for row in r["history"]:
            assert {"step", "loss", "recon_loss", "commit_loss", "used", "perplexity", "distinct_ids"} <= set(row)
            assert len(row["used"]) == len(row["perplexity"]) == len(row["commit_loss"]) == TINY["levels"]
        assert r["history"][-1]["step"] == TINY["steps"]
    runs = rt.runs_table(records)
    assert len(runs) == 2 * 2 * TINY["levels"]
    summary = rt.summary_table(runs)
    assert set(summary.seeds) == {2} and (summary.used_sd >= 0).all()
    table = rt.pretty_table(summary, "toy")
    assert list(table.index) == ["paper_like", "residual_only"] and "±" in table.loc["paper_like", "L1 used"]
    history = rt.history_table(records)
    assert {"embedding", "config", "seed", "step", "level", "used", "perplexity", "distinct_ids", "recon_loss",
            "commit_loss"} <= set(history.columns)
    assert len(rt.death_steps(history)) == 2 * 2 * TINY["levels"]
    deaths = rt.death_summary(history, ["paper_like"])
    assert set(deaths.index.get_level_values("config")) == {"paper_like"} and len(deaths) == TINY["levels"]
    assert list(rt.configs_table().config) == list(rd.CONFIGS)
    assert rt.input_scale({"toy": unit_vectors}).loc["toy", "mean row norm"] == pytest.approx(1.0)
    probe = rt.probe_table(runs)
    assert list(probe.index) == [("toy", "paper_like"), ("toy", "residual_only")]
    assert (probe["radius / spacing"] > 0).all() and (probe.codes_used_init_l1 >= 1).all()


def test_plan_comes_from_the_profile_and_overrides_are_checked():
    default = rd.plan(load_config("default"))
    assert (default["steps"], default["seeds"]) == (500, (0, 1, 2))
    runs = sum(len(names) for names in default["configs"].values()) * 3
    assert default["workers"] == plan_workers(machine_cores(), gpu=False, jobs=runs).workers  # 0: scales
    assert rd.plan(load_config("default", {"diagnosis.workers": 3}))["workers"] == 3  # a fixed count wins
    assert default["configs"]["content"] == tuple(c for c in rd.CONFIGS if c not in
                                                  ("l2_input", "ema_decay_0.99", "kmeans+dead+commit_0.25"))
    assert default["configs"]["multitask"] == ("paper_like", "standardise_input", "kmeans_init", "dead_code_2",
                                               "kmeans_init+dead_code", "residual_only")
    assert default["base"]["steps"] == 500 and default["base"]["log_every"] == 12
    smoke = rd.plan(load_config("smoke"))
    assert smoke["configs"]["content"] == smoke["configs"]["multitask"] and smoke["seeds"] == (0,)
    assert rd.plan(load_config("paper"))["configs"]["multitask"] == tuple(rd.CONFIGS)
    longer = rd.plan(load_config("default", {"diagnosis.steps": 1000, "diagnosis.embeddings": ["content"]}))
    assert longer["base"]["steps"] == 1000 and list(longer["configs"]) == ["content"]
    with pytest.raises(StudyInputError, match="Parameter 'diagnosis.steps' expects int"):
        load_config("default", {"diagnosis.steps": "many"})
    with pytest.raises(StudyInputError, match="unknown configuration"):
        rd.plan(load_config("default", {"diagnosis.core_configs": ["paper_like", "no_such_fix"]}))


def test_stage_ids_tables_and_metrics(unit_vectors, runs_dir):
    cfg = load_config("smoke", {"ids.rq_vae_steps": 20, "ids.rq_vae_log_every": 10,
                                "diagnosis.embeddings": ["toy"]})
    stage = rd.stage_diagnostics(cfg, {"toy": unit_vectors})
    assert set(stage) == {("toy", "rq_vae"), ("toy", "rq_vae_fixed")}
    assert (runs_dir / cfg.folder / "ids" / "toy__rq_vae_fixed.json").exists()
    table = rt.stage_table(stage)
    assert list(table.quantizer) == ["rq_vae", "rq_vae_fixed"] and {"L1 used", "L2 perplexity"} <= set(table.columns)
    history = rt.stage_history(stage, seed=cfg.seed)
    assert set(history.config) == {"rq_vae", "rq_vae_fixed"} and set(history.step) == {10, 20}
    records = rd.run_grid({"toy": unit_vectors}, TINY, runs_dir / "grid", ["paper_like"], seeds=[0], progress=False)
    summary = rt.summary_table(rt.runs_table(records))
    plan = {"steps": TINY["steps"], "seeds": (0,), "configs": {"toy": ("paper_like",)}}
    metrics = rt.diagnosis_metrics(plan, records, summary, stage, levels=2)
    assert metrics["runs"] == 1 and metrics["toy/paper_like/L1_used"] >= 1
    assert metrics[f"toy/{rd.FIXED}/collision_rate"] is None  # not in this grid
    assert metrics["stage/toy/rq_vae_fixed/used"] == table.loc[1, ["L1 used", "L2 used"]].tolist()


def test_rq_vae_fixed_is_registered_and_uses_more_codes(unit_vectors):
    assert "rq_vae_fixed" in QUANTIZERS and issubclass(QUANTIZERS["rq_vae_fixed"], RQVAE)
    cfg = dict(levels=2, codebook_size=16, steps=150, seed=0, log_every=50)
    fixed = make_quantizer("rq_vae_fixed", **cfg)
    assert fixed.cfg.kmeans_init and fixed.cfg.threshold_ema_dead_code > 0
    used = {}
    for name in ("rq_vae", "rq_vae_fixed"):
        codes = make_quantizer(name, **cfg).fit(unit_vectors).encode(unit_vectors)
        used[name] = [np.unique(codes[:, level]).size for level in range(2)]
    assert used["rq_vae"][0] <= 2  # the paper-like first level collapses on unit-norm inputs
    assert used["rq_vae_fixed"][0] >= 12 and sum(used["rq_vae_fixed"]) > sum(used["rq_vae"])


def test_unknown_configuration_fails_with_a_sentence():
    with pytest.raises(Exception, match="choose from"):
        rd.resolve_config("no_such_fix", TINY)
    assert rd.resolve_config("steps_x3", TINY)["steps"] == 3 * TINY["steps"]
    assert rd.resolve_config("codebook_half", TINY)["codebook_size"] == 4
