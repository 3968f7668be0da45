"""The check that a results folder's hits rederive its verdicts and pairs."""

from jointsid_utils.evaluation.snapshot import recompute


def assert_recomputed(folder):
    """Every table ``recompute`` gives matches the folder's file byte for byte, and every pairs file is covered."""
    files = recompute(folder)
    on_disk = {p.name for p in folder.glob("pairs_*.csv")} | {"verdicts.csv"}
    assert on_disk <= set(files), f"not recomputed: {sorted(on_disk - set(files))}"
    for name, frame in files.items():
        if (folder / name).exists():
            assert frame.to_csv(index=False) == (folder / name).read_text(), f"{name} differs when recomputed"
    return files
