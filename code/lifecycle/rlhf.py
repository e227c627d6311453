"""What the preference labs (reward model, PPO, DPO) share: pair data and its hold-out split,
reward scores and the one tie rule for preference accuracy, KL to the reference, the parameter
memory a run holds, a DPOTrainer that tokenizes its pairs once, and the table of the machinery each
method needs.

The same functions run on the tiny offline models and on the real `gpt2` (`gpu` presets).
"""

import torch
import torch.nn.functional as F
from datasets import Dataset, load_dataset
from transformers import TrainerCallback
from trl import DPOTrainer

from .cli import LabError
from .data import pair_text
from .device import measured_on
from .evaluation import left_padded

PAIR_COLUMNS = ("prompt", "chosen", "rejected")


def pair_dataset(rows: list[dict]) -> Dataset:
    """A TRL preference dataset (prompt / chosen / rejected) from rows; other columns dropped."""
    keys = [k for k in PAIR_COLUMNS if k in rows[0]]
    return Dataset.from_dict({k: [r[k] for r in rows] for k in keys})


def split_heldout(rows: list[dict], source: str) -> tuple[list[dict], list[dict]]:
    """(train, held-out) of a reader's pairs: one in five held out, at least one on each side."""
    if len(rows) < 2:
        raise LabError(
            f"{source}: need at least 2 pairs (one to train on, one held out), got {len(rows)}"
        )
    cut = max(1, len(rows) // 5)
    return rows[cut:], rows[:cut]


def hub_pairs(name: str, split: str, n: int) -> list[dict]:
    """The first `n` rows of a Hub preference dataset, e.g. `trl-lib/ultrafeedback_binarized`."""
    try:
        ds = load_dataset(name, split=f"{split}[:{n}]")
    except Exception as e:  # datasets raises several types when offline
        raise LabError(f"cannot load {name} from the Hub (offline?): {type(e).__name__}") from None
    return [{k: r[k] for k in PAIR_COLUMNS if k in r} for r in ds]


@torch.no_grad()
def reward_scores(reward_model, tokenizer, texts: list[str], batch_size: int = 32) -> torch.Tensor:
    """The reward model's scalar score of each full text (prompt and reply)."""
    reward_model.eval()
    out = []
    for i in range(0, len(texts), batch_size):  # right padding, as TRL's RewardTrainer pads
        enc = tokenizer(
            texts[i : i + batch_size],
            return_tensors="pt",
            padding=True,
            padding_side="right",
            add_special_tokens=False,
        )
        out.append(reward_model(**enc.to(reward_model.device)).logits[:, 0].float().cpu())
    return torch.cat(out)


def pair_scores(reward_model, tokenizer, rows: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of chosen and rejected for each pair (prompt + reply, as the reward model saw)."""
    chosen = reward_scores(
        reward_model, tokenizer, [pair_text(tokenizer, r, "chosen") for r in rows]
    )
    rejected = reward_scores(
        reward_model, tokenizer, [pair_text(tokenizer, r, "rejected") for r in rows]
    )
    return chosen, rejected


def preference_accuracy(chosen: torch.Tensor, rejected: torch.Tensor) -> float:
    """Share of pairs scored chosen > rejected, a tie counting one half: the expected accuracy of a
    ranker that breaks ties by a coin flip. One rule for the reward model's scores and DPO's
    implicit rewards."""
    return ((chosen > rejected).float() + 0.5 * (chosen == rejected).float()).mean().item()


# --8<-- [start:kl]
@torch.no_grad()
def kl_to_reference(
    policy,
    ref,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    seed: int = 0,
    batch_size: int = 32,
) -> float:
    """KL(π‖π_ref) per reply, in nats: the policy samples a reply to each held-out prompt
    (temperature 1), and at every reply token we add the exact KL between the two next-token
    distributions. The sampling has its own seed and leaves the global random state as it was, so a
    check in the middle of training does not change what training samples next."""
    policy.eval(), ref.eval()
    total, n = 0.0, 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(0, len(prompts), batch_size):
            enc = left_padded(tokenizer, prompts[i : i + batch_size], policy.device)
            seq = policy.generate(
                **enc,
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=max_new_tokens,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
            mask = seq != tokenizer.pad_token_id
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            P = enc["input_ids"].shape[1]  # replies start here
            logp = F.log_softmax(
                policy(seq, attention_mask=mask, position_ids=pos).logits[:, P - 1 : -1].float(),
                -1,
            )
            logr = F.log_softmax(
                ref(seq, attention_mask=mask, position_ids=pos).logits[:, P - 1 : -1].float(), -1
            )
            per_token = (logp.exp() * (logp - logr)).sum(-1)  # KL of the next-token distributions
            total += (per_token * mask[:, P:]).sum().item()  # reply tokens only, EOS included
            n += seq.shape[0]
    return total / n


# --8<-- [end:kl]


def param_bytes(*models) -> int:
    """Bytes of the parameters of the distinct models held (a shared module counts once)."""
    seen = {}
    for m in models:
        for p in m.parameters():
            seen[p.data_ptr()] = p.numel() * p.element_size()
    return sum(seen.values())


# --8<-- [start:memory]
def _tensor_bytes(t: torch.Tensor) -> int:
    return t.numel() * t.element_size()


def model_memory(trainable: dict, frozen: dict, optimizer=None) -> list[dict]:
    """What each model of a run holds, in bytes, counted from the tensors themselves.

    `trainable` and `frozen` map a role ("policy", "value", "reference", "reward") to a module.
    Every model holds its parameters. A trainable one also holds one gradient per parameter that
    requires grad (autograd allocates it with the parameter's shape and dtype) and the optimizer's
    state for those parameters, read from `optimizer.state` (AdamW: `exp_avg`, `exp_avg_sq` and a
    `step` counter). A tensor shared by two roles (tied embeddings, one module in two roles) counts
    once, under the first. Activations are not counted: they depend on batch and length (the memory
    lab measures them). Returns one row per role: {model, trainable, parameter_bytes,
    gradient_bytes, optimizer_bytes, total_bytes}.
    """
    # accelerate wraps it in .optimizer
    state = getattr(getattr(optimizer, "optimizer", optimizer), "state", {})
    roles = [
        *((r, m, True) for r, m in trainable.items()),
        *((r, m, False) for r, m in frozen.items()),
    ]
    seen, rows = set(), []
    for role, module, trains in roles:
        row = {
            "model": role,
            "trainable": trains,
            "parameter_bytes": 0,
            "gradient_bytes": 0,
            "optimizer_bytes": 0,
        }
        for p in module.parameters():
            if p.data_ptr() in seen:
                continue
            seen.add(p.data_ptr())
            row["parameter_bytes"] += _tensor_bytes(p)
            if trains and p.requires_grad:
                row["gradient_bytes"] += _tensor_bytes(p)
                row["optimizer_bytes"] += sum(
                    _tensor_bytes(v) for v in state.get(p, {}).values() if torch.is_tensor(v)
                )
        row["total_bytes"] = (
            row["parameter_bytes"] + row["gradient_bytes"] + row["optimizer_bytes"]
        )
        rows.append(row)
    return rows


# --8<-- [end:memory]


class TokenizedDPOTrainer(DPOTrainer):
    """TRL 1.12's DPOTrainer tokenizes every dataset it is given (`_prepare_dataset` has no
    already-tokenized path, unlike SFTTrainer's). This one keeps a dataset that a DPOTrainer
    already tokenized (it has `prompt_ids`, `chosen_ids`, `rejected_ids`), so a β sweep tokenizes
    its pairs once, not once per β."""

    def _prepare_dataset(self, dataset, *args, **kwargs):
        if "prompt_ids" in dataset.column_names:
            return dataset
        return super()._prepare_dataset(dataset, *args, **kwargs)


METHODS = {  # by construction: what each method holds and runs while it trains
    "PPO": dict(
        lab="ppo",
        models="4: policy, reference, reward, value",
        reward="trained first (reward lab), queried on every reply",
        value="trained alongside the policy",
    ),
    "GRPO": dict(
        lab="grpo",
        models="1: policy (2 when β > 0: + reference)",
        reward="none: a program (checker) scores every sampled reply",
        value="none: the mean reward of the prompt's group is the baseline",
    ),
    "DPO": dict(
        lab="dpo",
        models="2: policy, reference",
        reward="none: the reward is implicit",
        value="none",
    ),
}


def machinery_table(runs: dict[str, dict | None], preset: str, seed: int) -> str:
    """What machinery each method needs, one column per method (in the order of `runs`). Measured
    cells come from `runs`: a lab's metrics, or None when no run with this preset and seed exists;
    then its cells say so, and a note says how to fill them. The memory rows count what the models
    hold (`model_memory`: parameters, and gradients and AdamW state for the trained ones), not the
    process. Nothing here runs a lab."""

    def mib(b):
        return f"{b / 2**20:.2f} MiB"

    measured = [
        ("parameters of those models", lambda r: mib(r["param_bytes_held"])),
        (
            "+ gradients and AdamW state of the trained ones",
            lambda r: mib(r["train_memory_bytes"] - r["param_bytes_held"]),
        ),
        ("model memory in training (from the tensors)", lambda r: mib(r["train_memory_bytes"])),
        (
            "… by model",
            lambda r: " + ".join(f"{x['model']} {mib(x['total_bytes'])}" for x in r["memory"]),
        ),
        (
            "replies sampled during training (per run)",
            lambda r: f"{r['replies_sampled_per_run']:,}",
        ),
        ("wall time of the lab", lambda r: f"{r['wall_seconds']:.0f} s"),
    ]
    rows = [("models in memory", [METHODS[m]["models"] for m in runs])]
    rows += [
        (name, [cell(r) if r else "no run yet" for r in runs.values()])
        for name, cell in measured[:5]
    ]
    rows += [
        ("reward model", [METHODS[m]["reward"] for m in runs]),
        ("value model (critic)", [METHODS[m]["value"] for m in runs]),
    ]
    rows += [
        (name, [cell(r) if r else "no run yet" for r in runs.values()])
        for name, cell in measured[5:]
    ]
    head = [f"{m} ({METHODS[m]['lab']} lab)" for m in runs]
    lines = ["| | " + " | ".join(head) + " |", "| --- |" + " --- |" * len(runs)]
    lines += [f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows]
    notes = [f"Measured on {measured_on()}."] + [
        f"No {m} run with `--preset {preset} --seed {seed}` is in the cache: run `python "
        f"code/labs/{METHODS[m]['lab']}.py --preset {preset}` first to fill its column "
        "(no lab runs another to fill this table)."
        for m, r in runs.items()
        if r is None
    ]
    return "\n".join(lines) + "\n\n" + " ".join(notes) + "\n"


class Checkpoints(TrainerCallback):
    """Calls `evaluate()` after the training steps listed in `steps` (PPO: one step = one rollout
    and its updates) and keeps each result, with the step and episode, in `.rows`. The model is put
    back in training mode afterwards; `evaluate` should leave the global random state alone (see
    `sample`)."""

    def __init__(self, steps, evaluate):
        self.steps, self.evaluate, self.rows = set(steps), evaluate, []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step in self.steps:
            training = [m for m in (model,) if m is not None and m.training]
            self.rows.append(
                {"step": state.global_step, "episode": state.episode, **self.evaluate()}
            )
            for m in training:
                m.train()
        return control
