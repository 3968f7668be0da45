"""The ``run_all.sh`` driver, apart from the study's stages.

``runner`` executes the numbered notebooks (``python -m jointsid_utils.driver.runner``), ``stamps`` decides
which executed copies still stand, ``progress`` turns a kernel's output into the terminal's progress lines.
"""
