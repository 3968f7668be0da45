"""Throughput of the `paper` profile's three GPU-bound models, for docs/SCALING.md's cost estimate.

Measures, on whatever device is present (one JSON line per part, then a summary line):
  * generator training: a T5 with flan-t5-base's shape (d_model 768, 12+12 layers, gated-GELU, the T5
    vocabulary of 32,128 plus 2 x 256 ID tokens and a dedup level), random weights, AdamW, batch 128,
    bf16 autocast on CUDA; prompts half search-length (8-24 tokens), half rec-length (2 + 10 items x 3
    ID tokens); targets 3 ID tokens + EOS;
  * decoding: ``decoding.constrained_beam_search`` with that model over a trie of 62,000 items
    (2 x 256 codes + dedup), beam 30 (ours) and the paper's diverse beam search (beam 60, 30 groups);
  * encoder fine-tuning: an MPNet with all-mpnet-base-v2's shape (MPNetConfig defaults), mean pooling,
    in-batch-negatives cross-entropy (MultipleNegativesRankingLoss's objective, scale 20), sequences of
    48 tokens, batch 128 and 512 (the paper profile's), bf16 autocast on CUDA.
Random weights cost the same FLOPs as trained ones, so the throughputs carry over; no download needed.

    python bench/bench_paper_scale.py                 # on a GPU machine (PYTHONPATH=. without install)
    python bench/bench_paper_scale.py --tiny          # CPU check of the script itself (tiny shapes)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def trie_codes(n_items: int, codes: int, offset: int, seed: int = 0) -> np.ndarray:
    """Token ids of a 2-level + dedup ID per item, prefixes clustered unevenly like real RQ codes."""
    gen = np.random.default_rng(seed)
    first = np.minimum(gen.zipf(1.3, n_items) - 1, codes - 1)
    second = (first * 7 + gen.integers(0, codes, n_items)) % codes
    pairs = first * codes + second
    order = np.argsort(pairs, kind="stable")
    dedup = np.empty(n_items, np.int64)
    dedup[order] = np.arange(n_items) - np.searchsorted(pairs[order], pairs[order])
    return np.column_stack([first + offset, second + offset + codes, dedup + offset + 2 * codes])


def t5_model(args, vocab: int, device: str):
    from transformers import T5Config, T5ForConditionalGeneration

    shape = dict(d_model=64, d_ff=128, d_kv=16, num_layers=1, num_heads=4) if args.tiny else dict(
        d_model=768, d_ff=2048, d_kv=64, num_layers=12, num_heads=12)  # google/flan-t5-base
    cfg = T5Config(vocab_size=vocab, num_decoder_layers=shape["num_layers"], feed_forward_proj="gated-gelu",
                   decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, tie_word_embeddings=False, **shape)
    torch.manual_seed(0)
    return T5ForConditionalGeneration(cfg).to(device)


def prompts(n: int, vocab: int, id_tokens: np.ndarray, seed: int = 1):
    gen = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        if i % 2 == 0:
            rows.append(list(gen.integers(5, 32000, gen.integers(8, 25))) + [1])
        else:
            rows.append([5, 6] + list(id_tokens[gen.integers(0, len(id_tokens), 10)].ravel()) + [1])
    ids = np.zeros((n, max(map(len, rows))), np.int64)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = r
    ids = torch.from_numpy(ids)
    return ids, (ids != 0).long()


def bench_generator(args, device: str, out: dict) -> None:
    from jointsid_utils.generator.decoding import IdTrie, constrained_beam_search

    n_items, codes = (2000, 32) if args.tiny else (62000, 256)
    id_tokens = trie_codes(n_items, codes, offset=32128)
    vocab = int(id_tokens.max()) + 1
    model = t5_model(args, vocab, device)
    out["generator_params"] = sum(p.numel() for p in model.parameters())
    ids, am = prompts(4096, vocab, id_tokens)
    labels = torch.from_numpy(np.column_stack([id_tokens, np.ones(n_items, np.int64)]))
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    gen = np.random.default_rng(2)
    times = []
    model.train()
    for step in range(args.train_steps + 3):
        pick = torch.from_numpy(gen.integers(0, len(ids), args.batch))
        lab = labels[torch.from_numpy(gen.integers(0, n_items, args.batch))]
        sync(device)
        t = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            a = am[pick]
            width = int(a.sum(1).max())
            loss = model(input_ids=ids[pick][:, :width].to(device), attention_mask=a[:, :width].to(device),
                         labels=lab.to(device)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        sync(device)
        if step >= 3:
            times.append(time.perf_counter() - t)
    out["generator_train_examples_per_s"] = round(args.batch / float(np.median(times)), 1)
    del opt
    model.eval()
    trie = IdTrie(id_tokens, eos_token_id=1)
    n = args.cases
    q_ids, q_am = prompts(n, vocab, id_tokens, seed=3)
    with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
        constrained_beam_search(model, q_ids[:16], q_am[:16], trie, batch_size=16)  # warm-up
        for name, kw in (("beam30", dict(beam_size=30)),
                         ("diverse60x30", dict(beam_size=60, num_beam_groups=30, diversity_penalty=0.25))):
            sync(device)
            t = time.perf_counter()
            lists, _ = constrained_beam_search(model, q_ids, q_am, trie, top_k=30,
                                               batch_size=args.decode_batch, **kw)
            sync(device)
            out[f"decode_{name}_cases_per_s"] = round(n / (time.perf_counter() - t), 1)
            out[f"decode_{name}_mean_items"] = round(float((lists >= 0).sum(1).mean()), 2)
    del model
    if device == "cuda":
        out["generator_peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def bench_encoder(args, device: str, out: dict) -> None:
    from transformers import MPNetConfig, MPNetModel

    cfg = MPNetConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4, intermediate_size=128) \
        if args.tiny else MPNetConfig()  # MPNetConfig() is mpnet-base: 12 layers, 768 wide, 110M parameters
    torch.manual_seed(0)
    model = MPNetModel(cfg).to(device).train()
    out["encoder_params"] = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=2e-5)
    gen = torch.Generator().manual_seed(4)

    def embed(tokens):
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            h = model(input_ids=tokens).last_hidden_state
        return torch.nn.functional.normalize(h.float().mean(1), dim=-1)

    for batch in args.encoder_batches:
        times = []
        try:
            for step in range(args.encoder_steps + 2):
                q = torch.randint(5, cfg.vocab_size, (batch, 48), generator=gen).to(device)
                d = torch.randint(5, cfg.vocab_size, (batch, 48), generator=gen).to(device)
                sync(device)
                t = time.perf_counter()
                logits = 20.0 * embed(q) @ embed(d).T
                loss = torch.nn.functional.cross_entropy(logits, torch.arange(batch, device=device))
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                sync(device)
                if step >= 2:
                    times.append(time.perf_counter() - t)
            out[f"encoder_pairs_per_s_batch{batch}"] = round(batch / float(np.median(times)), 1)
        except torch.OutOfMemoryError:
            out[f"encoder_pairs_per_s_batch{batch}"] = "out of memory"
            torch.cuda.empty_cache()
    with torch.no_grad():
        model.eval()
        tokens = torch.randint(5, cfg.vocab_size, (512, 48), generator=gen).to(device)
        embed(tokens)
        sync(device)
        t = time.perf_counter()
        for _ in range(4):
            embed(tokens)
        sync(device)
        out["encoder_encode_texts_per_s"] = round(4 * 512 / (time.perf_counter() - t), 1)
    if device == "cuda":
        out["encoder_peak_gpu_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--cases", type=int, default=512)
    ap.add_argument("--decode-batch", type=int, default=64)
    ap.add_argument("--encoder-steps", type=int, default=10)
    ap.add_argument("--encoder-batches", type=int, nargs="+", default=[128, 512])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime()  # idle OpenMP threads sleep, the hub stays offline; workers inherit both
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.tiny:
        args.cases, args.train_steps, args.encoder_steps, args.encoder_batches = 32, 3, 2, [16]
    out = {"device": torch.cuda.get_device_name() if device == "cuda" else platform.processor() or "cpu",
           "torch": torch.__version__, "cpu_count": os.cpu_count()}
    try:
        import transformers
        out["transformers"] = transformers.__version__
    except ImportError:
        pass
    try:
        import faiss
        out["faiss_gpus"] = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    except ImportError:
        out["faiss_gpus"] = "faiss not installed"
    for part in (bench_generator, bench_encoder):
        t = time.perf_counter()
        part(args, device, out)
        out[f"{part.__name__}_wall_s"] = round(time.perf_counter() - t, 1)
        print(json.dumps(out), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
