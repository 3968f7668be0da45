"""How a process runs, apart from what it computes: threads and environment, seeds, precision, workers, ranks.

``environment``: ``configure_runtime``, the one function that sets thread counts and the libraries'
environment variables, which every entry point that computes calls first. ``reproducibility``: seeds, the
salted ``rng`` and the commit a run was made from. ``precision``: bf16 where the hardware runs it natively.
``workers``: how many jobs side by side, with how many torch threads each. ``distributed``: who writes and
who waits under ``torchrun``. ``trainer_lines``: the HF trainers' progress as the study's progress lines.

Nothing here imports a study stage, so every layer above may use it.
"""
