"""The runner's live progress: a kernel's recorded output streams in, a few clean lines out."""

from __future__ import annotations

import itertools

from jointsid_utils.driver.progress import Bar, BarThrottle, ProgressRelay, parse_bar

# Chunks as papermill hands them over from a kernel in a headless run: an HF Trainer fine-tune (its
# training bar, an evaluation bar, the loss lines it prints), a bar of the package, the package's
# own lines and warning, and the noise around them. Recorded, then cut short.
RECORDED = [
    ("stderr", "[IPKernelApp] WARNING | Kernel is running over TCP without encryption. All communication "
               "(including code and outputs) is sent in plain text and is susceptible to eavesdropping.\n"),
    ("stderr", "/work/main/.venv/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found. "
               "Please update jupyter and ipywidgets. See https://ipywidgets.readthedocs.io/en/stable/user_install.html"
               "\n  from .autonotebook import tqdm as notebook_tqdm\n"),
    ("stdout", "data ml-100k: {'items': 200, 'users': 150, 'interactions': 7961}\n"),
    ("stderr", "`generation_config` default values have been modified to match model-specific defaults: "
               "{'decoder_start_token_id': 0}. If this is not desired, please set these values explicitly.\n"),
    ("stderr", "\r  0%|          | 0/64 [00:00<?, ?it/s]"),
    ("stderr", "\r  3%|▎         | 2/64 [00:00<00:03, 18.08it/s]"),
    ("stderr", "\r  6%|▋         | 4/64 [00:00<00:03, 18.46it/s]"),
    ("stderr", "\r 12%|█▎        | 8/64 [00:00<00:03, 18.66it/s]"),
    ("stderr", "\r 16%|█▌        | 10/64 [00:00<00:02, 18.71it/s]"),
    ("stderr", "\r                                               "),
    ("stderr", "\r"),
    ("stderr", "\r 16%|█▌        | 10/64 [00:00<00:02, 18.71it/s]"),
    ("stdout", "{'loss': '1.403', 'grad_norm': '2.792', 'learning_rate': '3.516e-05', 'epoch': '0.3125'}\n"),
    ("stderr", "\r 22%|██▏       | 14/64 [00:00<00:02, 18.69it/s]"),
    ("stderr", "\r 50%|█████     | 32/64 [00:01<00:01, 18.47it/s]"),
    ("stderr", "\n"),
    ("stderr", "\r  0%|          | 0/16 [00:00<?, ?it/s]"),
    ("stderr", "\x1b[A"),
    ("stderr", "\n"),
    ("stderr", "\r 56%|█████▋    | 9/16 [00:00<00:00, 20.63it/s]"),
    ("stderr", "\x1b[A"),
    ("stderr", "\r100%|██████████| 16/16 [00:00<00:00, 19.62it/s]"),
    ("stderr", "\r                                               "),
    ("stdout", "{'eval_loss': '1.295', 'eval_runtime': '0.8434', 'epoch': '0.5'}\n"),
    ("stderr", "\r 97%|█████████▋| 62/64 [00:04<00:00, 17.38it/s]"),
    ("stderr", "\r100%|██████████| 64/64 [00:04<00:00, 17.70it/s]"),
    ("stderr", "\r100%|██████████| 64/64 [00:05<00:00, 17.70it/s]"),
    ("stderr", "/work/main/jointsid_utils/cache.py:191: UserWarning: runs/smoke/models/.search-checkpoints-1f/"
               "checkpoint-5 is incomplete (a run was killed while writing it); deleting it and resuming from the "
               "previous checkpoint.\n  warnings.warn(f\"{path} is incomplete (a run was killed while writing it); "
               "deleting it and resuming \"\n"),
    ("stderr", "\rdecoding:   0%|          | 0/20 [00:00<?, ?case/s]"),
    ("stderr", "\rdecoding:  25%|██▌       | 5/20 [00:00<00:00, 49.67case/s]"),
    ("stderr", "\rdecoding: 100%|██████████| 20/20 [00:00<00:00, 48.37case/s]"),
    ("stderr", "\rdecoding: 100%|██████████| 20/20 [00:00<00:00, 48.51case/s]\n"),
    ("stdout", "test queries containing the exact title: 0.0%\n"),
]


def relay_of(chunks, seconds_per_bar: float = 1.0) -> list[str]:
    """What the runner shows for ``chunks`` when each drawn bar comes ``seconds_per_bar`` after the last."""
    clock = itertools.count(step=seconds_per_bar).__next__
    shown: list[str] = []
    relay = ProgressRelay(shown.append, BarThrottle(clock=clock))
    for stream, text in chunks:
        getattr(relay, stream).write(text)
    relay.close()
    return shown


def test_recorded_kernel_output_becomes_the_studys_lines_only():
    assert relay_of(RECORDED) == [
        "data ml-100k: {'items': 200, 'users': 150, 'interactions': 7961}",
        "12% 8/64 [00:00<00:03, 18.66it/s]",
        "{'loss': '1.403', 'grad_norm': '2.792', 'learning_rate': '3.516e-05', 'epoch': '0.3125'}",
        "22% 14/64 [00:00<00:02, 18.69it/s]",  # 50% came a second later: too soon
        "100% 16/16 [00:00<00:00, 19.62it/s]",  # the evaluation bar, told apart by its total
        "{'eval_loss': '1.295', 'eval_runtime': '0.8434', 'epoch': '0.5'}",
        "97% 62/64 [00:04<00:00, 17.38it/s]",
        "100% 64/64 [00:04<00:00, 17.70it/s]",  # once, though drawn again as the bar closes
        "UserWarning: runs/smoke/models/.search-checkpoints-1f/checkpoint-5 is incomplete (a run was killed while "
        "writing it); deleting it and resuming from the previous checkpoint.",
        "decoding: 100% 20/20 [00:00<00:00, 48.37case/s]",
        "test queries containing the exact title: 0.0%",
    ]


def test_a_busy_bar_shows_every_ten_percent_and_a_quick_one_only_its_end():
    slow = [("stderr", f"\rtraining: {i // 10:3d}%|#         | {i}/1000 [00:00<00:00, 10.00it/s]")
            for i in range(0, 1001, 5)]
    shown = relay_of(slow, seconds_per_bar=0.5)  # 100 s in all
    assert [int(line.split()[1][:-1]) for line in shown] == list(range(10, 101, 10))
    quick = [("stderr", f"\rBatches: {i * 10:3d}%|#         | {i}/10 [00:00<00:00, 99.00it/s]") for i in range(11)]
    assert relay_of(quick, seconds_per_bar=0.05) == ["Batches: 100% 10/10 [00:00<00:00, 99.00it/s]"]


def test_a_bar_without_total_shows_once_a_minute():
    chunks = [("stderr", f"\rqueries: {i}item [00:{i:02d}, 1.00item/s]") for i in range(0, 150, 10)]
    assert relay_of(chunks, seconds_per_bar=10) == ["queries: 60item [00:60, 1.00item/s]",
                                                    "queries: 120item [00:120, 1.00item/s]"]


def test_parse_bar_reads_tqdms_formats_and_nothing_else():
    assert parse_bar("ENMF c0=0.1:  42%|████▏     | 5/12 [00:03<00:04,  1.60it/s]") == Bar(
        "ENMF c0=0.1", 42, "5", "12", "00:03<00:04,  1.60it/s")
    assert parse_bar(" 10%|█         | 30/300 [00:40<06:00,  0.75it/s, loss=1.2]").key == ("", "300")
    assert parse_bar("queries from llama: 7item [00:02, 3.10item/s]").key == ("queries from llama", None)
    for text in ["recall: 42% of 30", "{'loss': '1.403'}", "test queries containing the exact title: 0.0%"]:
        assert parse_bar(text) is None


def test_long_lines_are_cut():
    (line,) = relay_of([("stdout", "x" * 1000 + "\n")])
    assert len(line) == 240 and line.endswith("...")
