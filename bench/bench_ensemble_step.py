"""Is a batched ensemble of training seeds cheaper per seed than separate models? One training step each way.

    OMP_NUM_THREADS=1 python bench/bench_ensemble_step.py [--members 5] [--steps 30] [--profile default]

The generator of the CPU profiles is a T5 of under a million parameters; at batch 128 a step is many small
matmuls, so much of its time is per-operation overhead. Stacking the parameters of ``members`` models
(``torch.func.stack_module_state``) and running the step under ``torch.func.vmap`` turns every matmul of the
members into one. This bench measures the forward + backward + Adam step of (a) one model, and (b) the
stacked members under vmap, on synthetic token batches of the profile's shapes (model sizes from
``GeneratorConfig``; source length ``--source-len``, target length ``--target-len``), on one thread. It
reports milliseconds per step and per member-step, and whether (b) matches (a) numerically for member 0 with
the same weights and batch. Writes ``bench/results/bench_ensemble_step.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=None, help="examples per member-step (the profile's batch_size)")
    ap.add_argument("--source-len", type=int, default=24)
    ap.add_argument("--target-len", type=int, default=4)
    ap.add_argument("--vocab", type=int, default=2000)
    ap.add_argument("--attention", default="eager", help="eager: sdpa's mask checks are data-dependent, which vmap refuses")
    ap.add_argument("--out", default="bench/results/bench_ensemble_step.json")
    args = ap.parse_args()

    import torch
    from torch.func import functional_call, grad_and_value, stack_module_state, vmap
    from transformers import T5Config, T5ForConditionalGeneration

    from jointsid_utils.config import load_config
    from jointsid_utils.runtime.environment import configure_runtime

    configure_runtime(1)
    g = load_config(args.profile).generator
    batch = args.batch or g.batch_size
    config = T5Config(vocab_size=args.vocab, d_model=g.d_model, d_ff=g.d_ff, d_kv=g.d_model // g.num_heads,
                      num_layers=g.num_layers, num_decoder_layers=g.num_layers, num_heads=g.num_heads,
                      dropout_rate=0.0, feed_forward_proj="relu", pad_token_id=0, eos_token_id=1,
                      decoder_start_token_id=0, attn_implementation=args.attention)
    models = []
    for k in range(args.members):
        torch.manual_seed(k)
        models.append(T5ForConditionalGeneration(config))
    n_params = sum(p.numel() for p in models[0].parameters())
    gen = torch.Generator().manual_seed(0)
    src = torch.randint(2, args.vocab, (args.members, batch, args.source_len), generator=gen)
    tgt = torch.randint(2, args.vocab, (args.members, batch, args.target_len), generator=gen)
    # a 4-d additive mask: transformers returns it as it is, where a 2-d one goes through data-dependent checks
    # that vmap refuses; the real batches are padded, so the benchmark pads the last quarter of each source
    keep = torch.ones_like(src, dtype=torch.float32)
    keep[..., -args.source_len // 4:] = torch.rand(keep[..., -args.source_len // 4:].shape, generator=gen).round()
    mask = ((1.0 - keep) * torch.finfo(torch.float32).min)[:, :, None, None, :]

    def timed(step, n):
        for _ in range(3):
            step()
        started = time.perf_counter()
        for _ in range(n):
            step()
        return (time.perf_counter() - started) / n * 1000

    # (a) one model, its own Adam
    single = copy.deepcopy(models[0])
    opt = torch.optim.Adam(single.parameters(), lr=1e-3)

    def single_step():
        loss = single(input_ids=src[0], attention_mask=mask[0], labels=tgt[0]).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    ms_single = timed(single_step, args.steps)

    # (b) the members stacked under vmap, one Adam over the stacked tensors
    base = copy.deepcopy(models[0])  # the module whose forward runs with each member's tensors
    params, buffers = stack_module_state(models)
    params = {k: v.detach().requires_grad_(True) for k, v in params.items()}

    def loss_of(p, b, s, m, t):
        return functional_call(base, (p, b), kwargs={"input_ids": s, "attention_mask": m, "labels": t}).loss

    step_fn = vmap(grad_and_value(loss_of), in_dims=(0, 0, 0, 0, 0))
    grads, losses = step_fn(params, buffers, src, mask, tgt)
    reference = models[0](input_ids=src[0], attention_mask=mask[0], labels=tgt[0]).loss.item()
    match = abs(losses[0].item() - reference)
    stacked_opt = torch.optim.Adam(params.values(), lr=1e-3)

    def ensemble_step():
        grads, _ = step_fn(params, buffers, src, mask, tgt)
        for name, p in params.items():
            p.grad = grads[name]
        stacked_opt.step()

    ms_ensemble = timed(ensemble_step, args.steps)
    result = {
        "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(), "threads": 1,
        "torch": torch.__version__, "profile": args.profile, "parameters": n_params, "members": args.members,
        "batch": batch, "source_len": args.source_len, "target_len": args.target_len, "steps": args.steps,
        "single_ms_per_step": round(ms_single, 2), "ensemble_ms_per_step": round(ms_ensemble, 2),
        "ensemble_ms_per_member_step": round(ms_ensemble / args.members, 2),
        "speedup_per_member": round(ms_single * args.members / ms_ensemble, 3),
        "member0_loss_abs_difference": match, "date": time.strftime("%Y-%m-%d"),
    }
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out + ".tmp", "w") as fh:
        json.dump(result, fh, indent=1)
    os.replace(args.out + ".tmp", args.out)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
