"""The results snapshot names the commit its run started from (git in a subprocess)."""


def test_the_snapshot_credits_the_commit_the_run_started_from(runs_dir):
    """A commit made while a two-hour run goes on must not be named as the code behind its numbers."""
    from jointsid_utils.evaluation.snapshot import provenance
    from jointsid_utils.runtime.reproducibility import current_commit

    folder = runs_dir / "smoke"
    folder.mkdir(parents=True)
    assert provenance("smoke")["commit"] == current_commit()  # no run record: the checkout's own commit
    (folder / "run.json").write_text('{"commit": "abc1234", "status": "finished"}')
    assert provenance("smoke")["commit"] == "abc1234"
