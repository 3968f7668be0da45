import dataclasses
from typing import Optional

import numpy as np
import pytest

from jointsid_utils.config import PROFILES, load_config, main, valid_keys
from jointsid_utils.errors import StudyInputError
from jointsid_utils.typecheck import check_value


def test_profiles_are_named_and_frozen():
    assert set(PROFILES) == {"smoke", "default", "paper"}
    for name, cfg in PROFILES.items():
        assert cfg.name == name
        with pytest.raises(dataclasses.FrozenInstanceError):
            cfg.seed = 3
    assert PROFILES["paper"].embeddings.base_encoder == "all-mpnet-base-v2"
    assert PROFILES["paper"].ids.codebook_size == 256 and PROFILES["paper"].ids.levels == 2


def test_overrides_apply_without_touching_the_profile():
    cfg = load_config("default", {"ids.codebook_size": 32, "seed": 7, "embeddings.finetune_lr": 1})
    assert cfg.ids.codebook_size == 32 and cfg.seed == 7
    assert cfg.embeddings.finetune_lr == 1.0 and isinstance(cfg.embeddings.finetune_lr, float)
    assert PROFILES["default"].ids.codebook_size != 32 or PROFILES["default"].seed != 7


def test_optional_and_tuple_fields():
    cfg = load_config("smoke", {"data.max_items": None, "generator.seeds": [1, 2]})
    assert cfg.data.max_items is None and cfg.generator.seeds == (1, 2)
    cfg = load_config("default", {"data.path": "/tmp/ml-25m.zip"})
    assert cfg.data.path == "/tmp/ml-25m.zip"


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(StudyInputError, match="Unknown profile 'fast'; choose one of: smoke, default, paper"):
        load_config("fast")


def test_unknown_key_lists_valid_ones():
    with pytest.raises(StudyInputError, match=r"Unknown parameter 'ids\.codebooksize'; valid parameters are: .*ids\.codebook_size"):
        load_config("default", {"ids.codebooksize": 3})


@pytest.mark.parametrize("key,value", [("seed", "one"), ("ids.codebook_size", 2.5), ("data.enrich", 1),
                                       ("ids.levels", True), ("generator.seeds", ["a"])])
def test_wrong_type_fails_with_one_sentence(key, value):
    with pytest.raises(StudyInputError, match=rf"Parameter '{key}' expects"):
        load_config("default", {key: value})


def test_recall_cutoff_above_the_generators_list_length_fails_at_validation(capsys):
    with pytest.raises(StudyInputError, match=r"^evaluation\.k=40 is above generator\.top_k=30: the generator's "
                                              r"lists hold 30 items, too few to score Recall@40; lower evaluation\.k "
                                              r"or raise generator\.top_k \(and generator\.beam_size\) to at least "
                                              r"40\.$"):
        load_config("default", {"evaluation.k": 40})
    assert main(["smoke", "evaluation.k", "40"]) == 2 and "above generator.top_k" in capsys.readouterr().err
    # checked once every override is in, whatever their order: raising both together is valid
    cfg = load_config("smoke", {"evaluation.k": 40, "generator.top_k": 40, "generator.beam_size": 40})
    assert cfg.evaluation.k == 40 and load_config("smoke", {"evaluation.k": 10}).evaluation.k == 10
    with pytest.raises(StudyInputError, match=r"^evaluation\.k=0 is not a list length"):
        load_config("smoke", {"evaluation.k": 0})


def test_section_hash_changes_only_with_its_section():
    a, b = load_config("default"), load_config("default", {"generator.lr": 0.1})
    assert a.section_hash("data", "queries") == b.section_hash("data", "queries")
    assert a.section_hash("generator") != b.section_hash("generator")
    assert a.section_hash("data") != load_config("default", {"seed": 1}).section_hash("data")


def test_every_key_is_overridable_with_its_own_default():
    cfg = PROFILES["default"]
    for key in valid_keys(cfg):
        section, _, leaf = key.partition(".")
        value = getattr(getattr(cfg, section), leaf) if leaf else getattr(cfg, section)
        assert load_config("default", {key: value}) == cfg


def test_cli_validates(capsys):
    assert main(["smoke", "seed", "3"]) == 0
    assert main(["nope"]) == 2
    assert "Unknown profile 'nope'" in capsys.readouterr().err
    assert main(["smoke", "ids.codebook_size", "x"]) == 2


def test_check_value_converts_what_fits_and_names_what_does_not():
    assert check_value(float, 2, "x") == 2.0 and isinstance(check_value(float, np.int64(2), "x"), float)
    assert type(check_value(int, np.int32(3), "x")) is int
    assert check_value(tuple[float, ...], [1, 0.5], "x") == (1.0, 0.5)
    assert check_value(int | None, None, "x") is None and check_value(Optional[int], 4, "x") == 4
    assert check_value(tuple[str, ...] | None, ["a"], "x") == ("a",)
    for hint, value in [(int, True), (float, False), (int, 2.5), (bool, 1), (str, 3), (tuple[int, ...], [1, "2"])]:
        with pytest.raises(StudyInputError, match=r"^rq_vae: parameter 'k' expects .*, got "):
            check_value(hint, value, "rq_vae: parameter 'k'")
    with pytest.raises(StudyInputError, match=r"expects int or None, got str 'x'; pass e\.g\. 3\.$"):
        check_value(int | None, "x", "k", advice="pass e.g. 3")


def test_finetune_and_diagnosis_settings_are_config_fields():
    keys = valid_keys()
    assert {"embeddings.finetune_max_seq_length", "embeddings.finetune_val_queries",
            "embeddings.finetune_evals_per_epoch", "embeddings.finetune_min_eval_steps", "diagnosis.steps",
            "diagnosis.seeds", "diagnosis.core_configs"} <= set(keys)
    assert PROFILES["default"].embeddings.enmf_c0_grid[-1] == 1.0
    assert PROFILES["smoke"].diagnosis.steps < PROFILES["default"].diagnosis.steps < PROFILES["paper"].diagnosis.steps
    assert load_config("smoke", {"diagnosis.seeds": [3, 4]}).diagnosis.seeds == (3, 4)
