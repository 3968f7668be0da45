"""A stage reaches only the quantizer it fits: the registry imports its methods lazily, so editing one method
rebuilds that method's IDs (and what reads them), not every scheme's."""

import json

import numpy as np
import pytest

from jointsid_utils.cache import manifest_path
from jointsid_utils.fingerprint import reachable_modules
from jointsid_utils.ids.build import build_ids
from jointsid_utils.quantizers import QUANTIZERS

METHODS = {f"jointsid_utils.quantizers.{m}" for m in ("rq_kmeans", "rq_vae", "rq_vae_fixed", "residual_lfq",
                                                      "dict_learning")}


def _reached_methods(modules) -> set[str]:
    return set(modules) & METHODS


@pytest.mark.parametrize("name, reached", [
    ("rq_kmeans", {"rq_kmeans"}),
    ("dict_learning", {"dict_learning"}),
    ("rq_vae_fixed", {"rq_vae_fixed", "rq_vae"}),  # the fixed RQ-VAE is an RQ-VAE: both count
])
def test_an_ids_stage_reaches_its_own_quantizer_only(tmp_path, name, reached):
    X = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    budget = {"rq_vae_fixed": {"steps": 2, "batch_size": 16}, "dict_learning": {"max_iter": 1}}.get(name, {})
    build_ids("content", name, X, tmp_path, levels=2, codebook_size=4, seed=0, **budget)
    manifest = json.loads(manifest_path(tmp_path / f"content__{name}.npy").read_text())
    assert _reached_methods(manifest["modules"]) == {f"jointsid_utils.quantizers.{m}" for m in reached}


def test_the_registry_names_every_method_and_a_class_counts_its_bases():
    assert set(QUANTIZERS) == {"rq_kmeans", "rq_vae", "rq_vae_fixed", "residual_lfq", "dict_learning"}
    assert _reached_methods(reachable_modules([QUANTIZERS["rq_vae_fixed"]])) == {
        "jointsid_utils.quantizers.rq_vae", "jointsid_utils.quantizers.rq_vae_fixed"}


def test_the_generator_job_reaches_no_quantizer_method():
    from jointsid_utils.generator.job import trained_model

    assert not _reached_methods(reachable_modules([trained_model]))


def test_prefix_share_reaches_the_rq_kmeans_it_is_built_with(tmp_path):
    rng = np.random.default_rng(1)
    pair = (rng.normal(size=(40, 6)).astype(np.float32), rng.normal(size=(40, 5)).astype(np.float32))
    build_ids("prefix_share", "rq_kmeans", pair, tmp_path, levels=2, codebook_size=4, seed=0)
    manifest = json.loads(manifest_path(tmp_path / "prefix_share__rq_kmeans.npy").read_text())
    assert _reached_methods(manifest["modules"]) == {"jointsid_utils.quantizers.rq_kmeans"}
