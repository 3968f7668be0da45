"""One exception type for bad input, so callers (and run_all.sh) can print one clear sentence."""


class StudyInputError(ValueError):
    """Raised for input the study cannot use; the message names the input and the fix."""
