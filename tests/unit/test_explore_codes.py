"""The code browser's words and a run folder's config, without a trained model."""

import json

import numpy as np
import pandas as pd

from jointsid_utils.config import as_dict, load_config
from jointsid_utils.explore import code_table, config_of_run


def test_a_word_in_most_items_never_names_a_code():
    n = 12
    items = pd.DataFrame({"item_id": range(n), "title": [f"Film {i}" for i in range(n)], "year": [1990] * n,
                          "genres": [["Drama"]] * n,
                          # every text carries the template's "runtime"; only code 0's items say "pirate",
                          # and code 0 has some of the template-heavy "rating" more often than the catalogue
                          "text": [f"Runtime: 90 min. {'pirate ship rating' if i < 4 else ('rating' if i % 2 else '')}"
                                   for i in range(n)]})
    codes = np.column_stack([(np.arange(n) >= 4).astype(int), np.zeros(n, int), np.arange(n)])
    words = code_table(items, codes, level=1).loc[0, "words"]
    assert "pirate x3.0" in words and "runtime" not in words


def test_a_run_made_before_a_setting_existed_explores_with_its_default(tmp_path, monkeypatch):
    monkeypatch.setenv("JOINTSID_RUNS_DIR", str(tmp_path))  # config_of_run points it at the folder's parent
    saved = as_dict(load_config("smoke"))
    del saved["embeddings"]["extra"]  # a run folder from before embeddings.extra
    saved["ids"]["codebook_size"] = 16
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps(saved))
    cfg = config_of_run(tmp_path / "old")
    assert cfg.embeddings.extra == () and cfg.ids.codebook_size == 16 and cfg.folder == "old"
