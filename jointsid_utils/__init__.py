"""jointsid: semantic IDs for joint generative search and recommendation (Penha et al., RecSys 2025)."""

from jointsid_utils.config import PROFILES, StudyConfig, load_config
from jointsid_utils.errors import StudyInputError

__all__ = ["PROFILES", "StudyConfig", "StudyInputError", "load_config"]
__version__ = "0.1.0"
