"""Decoding and training speed of the generator: ours vs generate(prefix_allowed_tokens_fn), examples/s.

    OMP_WAIT_POLICY=PASSIVE python bench/bench_decoding.py [--model DIR] [--cases 256] [--threads 1]

Without ``--model``: the default-size T5 (GeneratorConfig defaults) with random weights over a trie of
the default profile's shape (1,682 items, 64 x 64 codes + a dedup level). Random weights make scores
near-ties more frequent than a trained model's, so the "same lists" share is a lower bound.
Prints one JSON line; ``--out`` also writes it.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch


def default_model(vocab: int, device: str):
    from transformers import T5Config, T5ForConditionalGeneration

    from jointsid_utils.config import GeneratorConfig

    g = GeneratorConfig()
    cfg = T5Config(vocab_size=vocab, d_model=g.d_model, d_ff=g.d_ff, d_kv=g.d_model // g.num_heads,
                   num_layers=g.num_layers, num_decoder_layers=g.num_layers, num_heads=g.num_heads,
                   feed_forward_proj="relu", decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(0)
    return T5ForConditionalGeneration(cfg).to(device).eval()


def synthetic_trie(n_items: int = 1682, codes: int = 64, seed: int = 0):
    """Token ids laid out as the tokenizer does: 5 specials, then each level's codes."""
    gen = np.random.default_rng(seed)
    base = gen.integers(0, codes, size=(n_items, 2)) // np.array([1, 1])
    base[:, 1] = (base[:, 0] * 7 + gen.integers(0, 12, size=n_items)) % codes  # uneven, clustered prefixes
    _, inv = np.unique(base, axis=0, return_inverse=True)
    dedup = np.zeros(n_items, dtype=np.int64)
    for g in np.unique(inv):
        idx = np.flatnonzero(inv == g)
        dedup[idx] = np.arange(len(idx))
    codes_arr = np.column_stack([base, dedup])
    offsets = np.array([5, 5 + codes, 5 + 2 * codes])
    return codes_arr + offsets, 5 + 2 * codes + int(dedup.max()) + 1


def prompts(n: int, vocab: int, seed: int = 1):
    gen = np.random.default_rng(seed)
    lengths = np.where(np.arange(n) % 2 == 0, gen.integers(6, 20, size=n), 33)  # search-like, rec-like
    ids = np.zeros((n, lengths.max()), dtype=np.int64)
    am = np.zeros_like(ids)
    for i, L in enumerate(lengths):
        ids[i, :L] = gen.integers(5, vocab, size=L)
        ids[i, L - 1] = 1
        am[i, :L] = 1
    return torch.from_numpy(ids), torch.from_numpy(am)


def train_throughput(model, ids, am, trie_ids, steps: int, batch: int, device: str) -> float:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    gen = np.random.default_rng(2)
    labels = torch.from_numpy(np.column_stack([trie_ids, np.ones(len(trie_ids), dtype=np.int64)]))
    times = []
    for step in range(steps + 2):
        pick = torch.from_numpy(gen.integers(0, len(ids), size=batch))
        lab = labels[torch.from_numpy(gen.integers(0, len(labels), size=batch))]
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=ids[pick].to(device), attention_mask=am[pick].to(device), labels=lab.to(device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= 2:
            times.append(time.perf_counter() - t)
    model.eval()
    return batch / float(np.median(times))


def main() -> None:
    from jointsid_utils.generator.decoding import IdTrie, constrained_beam_search, generate_with_trie

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="a trained generator dir (runs/<profile>/models/generator/...)")
    ap.add_argument("--cases", type=int, default=256)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--vocab", type=int, default=4155, help="model vocabulary (the default profile's tokenizer: 4,155)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime(args.threads)
    trie_ids, id_vocab = synthetic_trie()
    vocab = max(id_vocab, args.vocab)
    model = default_model(vocab, args.device)
    if args.model:
        from transformers import T5ForConditionalGeneration
        model = T5ForConditionalGeneration.from_pretrained(args.model).to(args.device).eval()
        vocab = model.config.vocab_size
    trie = IdTrie(trie_ids, eos_token_id=1)
    ids, am = prompts(args.cases, vocab)
    res = {"device": args.device, "threads": args.threads, "cases": args.cases, "machine": platform.processor() or platform.machine(),
           "cpu_count": __import__("os").cpu_count(), "torch": torch.__version__,
           "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None,
           "load_avg": __import__("os").getloadavg()[0], "params": sum(p.numel() for p in model.parameters())}
    constrained_beam_search(model, ids[:8], am[:8], trie)  # warm-up
    t = time.perf_counter()
    ours, s_ours = constrained_beam_search(model, ids, am, trie, beam_size=30, top_k=30, batch_size=64)
    res["ours_s"] = time.perf_counter() - t
    t = time.perf_counter()
    ref, s_ref = generate_with_trie(model, ids, am, trie, beam_size=30, top_k=30, batch_size=16)
    res["hf_s"] = time.perf_counter() - t
    res["same_lists"] = float((ours == ref).all(1).mean())
    res["same_sets"] = float(np.mean([set(a) == set(b) for a, b in zip(ours, ref)]))
    res["max_score_diff"] = float(np.nanmax(np.abs(s_ours - s_ref)))
    res["ours_cases_per_s"] = args.cases / res["ours_s"]
    res["hf_cases_per_s"] = args.cases / res["hf_s"]
    res["speedup"] = res["hf_s"] / res["ours_s"]
    t = time.perf_counter()
    excl = [np.random.default_rng(i).choice(len(trie_ids), 100, replace=False) for i in range(args.cases)]
    constrained_beam_search(model, ids, am, trie, beam_size=30, top_k=30, exclude=excl, batch_size=64)
    res["ours_exclude_history_s"] = time.perf_counter() - t
    t = time.perf_counter()
    constrained_beam_search(model, ids, am, trie, beam_size=60, top_k=30, num_beam_groups=30, diversity_penalty=0.25,
                            batch_size=64)
    res["ours_diverse_s"] = time.perf_counter() - t
    if args.train_steps:
        res["train_examples_per_s"] = train_throughput(model, ids, am, trie_ids, args.train_steps, args.batch, args.device)
    res = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in res.items()}
    line = json.dumps(res)
    print(line)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
