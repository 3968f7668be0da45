"""A run never writes the committed figures; ``publish_figures`` copies them from the plain default run only."""

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from jointsid_utils import notebook  # noqa: E402
from jointsid_utils.cache import run_dir  # noqa: E402
from jointsid_utils.config import as_dict, load_config  # noqa: E402
from jointsid_utils.errors import StudyInputError  # noqa: E402


def test_save_figure_writes_the_run_folder_only(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(notebook, "FIGURES", tmp_path / "figures")
    fig, _ = plt.subplots()
    path = notebook.save_figure(fig, "99_test", load_config("default"))
    plt.close(fig)
    assert path.exists() and path.parent == run_dir("default", "figures")
    assert not (tmp_path / "figures").exists()


def test_publish_figures_needs_the_plain_profile(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(notebook, "FIGURES", tmp_path / "figures")
    fig, _ = plt.subplots()
    notebook.save_figure(fig, "99_test", load_config("default"))
    plt.close(fig)
    config = run_dir("default") / "config.json"
    config.write_text(json.dumps(as_dict(load_config("default", {"ids.codebook_size": 32}))))
    with pytest.raises(StudyInputError, match="plain 'default' profile"):
        notebook.publish_figures("default")
    config.write_text(json.dumps(as_dict(load_config("default"))))
    assert [p.name for p in notebook.publish_figures("default")] == ["99_test.png"]
    assert (tmp_path / "figures" / "99_test.png").exists()
