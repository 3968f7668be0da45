"""jointsid: semantic IDs for joint generative search and recommendation (Penha et al., RecSys 2025)."""

from jointsid_utils.errors import StudyInputError

__all__ = ["PROFILES", "StudyConfig", "StudyInputError", "load_config"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """The config names load on first use, so ``python -m jointsid_utils.config`` (run_all.sh's check of
    the options) does not find its module imported already, which made runpy print a RuntimeWarning
    above every one-sentence error."""
    if name in ("PROFILES", "StudyConfig", "load_config"):
        from jointsid_utils import config

        return getattr(config, name)
    raise AttributeError(f"module 'jointsid_utils' has no attribute {name!r}")
