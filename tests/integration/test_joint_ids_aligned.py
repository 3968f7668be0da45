"""The aligned RQ-VAE construction (gradient training) and what builds and reports it."""

from __future__ import annotations

import os

import numpy as np
import pytest

from jointsid_utils.config import as_dict
from jointsid_utils.errors import StudyInputError
from jointsid_utils.generator.tokenization import make_id_scheme
from jointsid_utils.study import INCUMBENT, TWO_ID_SCHEMES
from jointsid_utils.ids import schemes as sid
from jointsid_utils.joint import constructions as joint
from jointsid_utils.joint import report as joint_report
from jointsid_utils.joint.shared_task import unit_rows
from jointsid_utils.joint.aligned import AlignedRQVAE
from jointsid_utils.quantizers.rq_vae_fixed import RQVAEFixed

from joint_fixtures import N, config, runs, unique_rows, vectors


# the pure balanced assignment -------------------------------------------------------------------


# the three constructions -------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(joint.JOINT_CONSTRUCTIONS))
def test_construction_shapes_unique_ids_and_seeds(name, runs):
    v = vectors()
    codes, diag = joint.build_joint_ids(config(0), name, v)
    again, _ = joint.build_joint_ids(config(0), name, v, runs / "again")
    other, _ = joint.build_joint_ids(config(1), name, v, runs / "seed1")
    L = 2
    expected = {"shared_then_task": 2 * (L + 1), "balanced_unique": L, "multitask_cf": L + 1,
                "aligned_rq_vae": L + 1}[name]
    assert codes.shape == (N, expected) and codes.dtype == np.int64 and codes.min() >= 0
    np.testing.assert_array_equal(codes, again)  # same seed, same codes
    assert (codes != other).any()  # another seed changes something
    quantizer = joint.construction(name).quantizer
    ids = sid.load_ids(config(0), name, quantizer)
    np.testing.assert_array_equal(ids.codes, codes)
    assert unique_rows(ids.search) and unique_rows(ids.rec) and ids.two_block == (name in TWO_ID_SCHEMES)
    scheme = make_id_scheme(f"{name}__{quantizer}", codes)  # the generator's tokenizer accepts them as they are
    assert scheme.levels == expected // (2 if ids.two_block else 1)
    assert diag["config"]["levels"] == L and diag["construction"] == name


# caching, inputs, and the existing schemes' keys ----------------------------------------------------

def test_cached_by_own_settings_and_existing_keys_untouched(runs):
    v = vectors()
    joint.prepare_joint_ids(config(0), v, progress=False)
    joint.prepare_joint_ids(config(0, cf_weight=1.5), v, progress=False)  # another run folder, one store
    first, second = (runs / c.folder / "ids" for c in (config(0), config(0, cf_weight=1.5)))
    same = {n: os.path.samefile(first / f"{n}__{c.quantizer}.npy", second / f"{n}__{c.quantizer}.npy")
            for n, c in joint.JOINT_CONSTRUCTIONS.items()}
    assert not same["multitask_cf"] and not same["shared_then_task"]  # both read the weight: built anew
    assert same["balanced_unique"] and same["aligned_rq_vae"]  # their keys held: linked, not rebuilt
    changed = config(0, cf_weight=1.5, shared_input="multitask", unique_codebook_size=9, align_weight=0.1)
    assert as_dict(changed.ids) == as_dict(config(0).ids)  # the ids section, which keys every existing scheme
    assert sid.scheme_kwargs(changed, "multitask", "rq_kmeans") == sid.scheme_kwargs(config(0), "multitask", "rq_kmeans")


def test_report_compares_with_the_incumbent(runs):
    v = vectors()
    results = sid.prepare_ids(config(0), v, [INCUMBENT], progress=False)
    results.update(joint.prepare_joint_ids(config(0), v, progress=False))
    table = joint_report.comparison_table(results)
    assert len(table) == 6 and table.id_tokens.tolist() == [3, 3, 3, 2, 3, 3]
    shares = joint_report.prefix_group_shares(results)
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert shares.loc["balanced_unique x rq_kmeans", "1 (unique)"] == 1.0
    assert shares.loc["multitask x rq_kmeans", "1 (unique)"] < 1.0
    fig = joint_report.plot_prefix_groups(results, "test")
    assert len(fig.axes[0].patches) == 6 * len(joint_report.GROUP_LABELS)


def test_aligned_rq_vae_weight_zero_is_rq_vae_fixed_and_the_alignment_pulls_towards_enmf(runs):
    v = vectors()
    kw = sid.quantizer_kwargs(config(0), "rq_vae_fixed")
    X = unit_rows(v["multitask"])
    plain = RQVAEFixed(**kw).fit(X).encode(X)
    zero = AlignedRQVAE(**kw, align_weight=0.0).fit_aligned(X, v["rec"])
    np.testing.assert_array_equal(zero.encode(X), plain)  # the head draws from its own generator
    pulled = AlignedRQVAE(**kw, align_weight=1.0).fit_aligned(X, v["rec"])
    assert pulled.diagnostics()["align_cosine"] > zero.diagnostics()["align_cosine"] + 0.2
    assert "align_loss" in pulled.history[-1] and "align_loss" not in zero.history[-1]
    codes, diag = joint.build_joint_ids(config(0, align_weight=1.0), "aligned_rq_vae", v)
    assert diag["config"]["align_weight"] == 1.0 and diag["align_cosine"] > 0.5
    with pytest.raises(StudyInputError, match="align_weight is -0.5; use a finite weight >= 0"):
        AlignedRQVAE(**kw, align_weight=-0.5)
    with pytest.raises(StudyInputError, match="align_temperature is 0.0; use a temperature > 0"):
        AlignedRQVAE(**kw, align_temperature=0.0)
    with pytest.raises(StudyInputError, match="call fit_aligned"):
        AlignedRQVAE(**kw).fit(X)
    with pytest.raises(StudyInputError, match="the alignment target has 59 rows but X has 60"):
        AlignedRQVAE(**kw).fit_aligned(X, v["rec"][:-1])


