"""What the preference labs (reward model, PPO, DPO) share: pair data and its hold-out split, reward
scores, KL to the reference, and the parameter memory a run holds.

The same functions run on the tiny offline models and on the real `gpt2` (`gpu` presets).
"""

import torch
import torch.nn.functional as F
from datasets import Dataset, load_dataset

from .cli import LabError
from .data import pair_text

PAIR_COLUMNS = ("prompt", "chosen", "rejected")


def pair_dataset(rows: list[dict]) -> Dataset:
    """A TRL preference dataset (prompt / chosen / rejected) from rows; extra columns are dropped."""
    keys = [k for k in PAIR_COLUMNS if k in rows[0]]
    return Dataset.from_dict({k: [r[k] for r in rows] for k in keys})


def split_heldout(rows: list[dict], source: str) -> tuple[list[dict], list[dict]]:
    """(train, held-out) of a reader's pairs: one pair in five held out, at least one on each side."""
    if len(rows) < 2:
        raise LabError(f"{source}: need at least 2 pairs (one to train on, one held out), got {len(rows)}")
    cut = max(1, len(rows) // 5)
    return rows[cut:], rows[:cut]


def hub_pairs(name: str, split: str, n: int) -> list[dict]:
    """The first `n` rows of a TRL preference dataset on the Hub, e.g. `trl-lib/ultrafeedback_binarized`."""
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
        enc = tokenizer(texts[i : i + batch_size], return_tensors="pt", padding=True, padding_side="right",
                        add_special_tokens=False)
        out.append(reward_model(**enc.to(reward_model.device)).logits[:, 0].float().cpu())
    return torch.cat(out)


def pair_scores(reward_model, tokenizer, rows: list[dict]) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of chosen and rejected for each pair (prompt + reply, as the reward model was trained on it)."""
    chosen = reward_scores(reward_model, tokenizer, [pair_text(tokenizer, r, "chosen") for r in rows])
    rejected = reward_scores(reward_model, tokenizer, [pair_text(tokenizer, r, "rejected") for r in rows])
    return chosen, rejected


def preference_accuracy(chosen: torch.Tensor, rejected: torch.Tensor) -> float:
    """Share of pairs scored chosen > rejected, a tie counting one half: the expected accuracy of a ranker
    that breaks ties by a coin flip. One rule for the reward model's scores and DPO's implicit rewards."""
    return ((chosen > rejected).float() + 0.5 * (chosen == rejected).float()).mean().item()


# --8<-- [start:kl]
@torch.no_grad()
def kl_to_reference(policy, ref, tokenizer, prompts: list[str], max_new_tokens: int, seed: int = 0,
                    batch_size: int = 32) -> float:
    """KL(π‖π_ref) per reply, in nats: the policy samples a reply to each held-out prompt (temperature 1),
    and at every reply token we add the exact KL between the two next-token distributions."""
    policy.eval(), ref.eval()
    torch.manual_seed(seed)
    total, n = 0.0, 0
    for i in range(0, len(prompts), batch_size):  # left padding: every reply starts at the same position
        enc = tokenizer(prompts[i : i + batch_size], return_tensors="pt", padding=True, padding_side="left",
                        add_special_tokens=False)
        enc = enc.to(policy.device)
        seq = policy.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                              max_new_tokens=max_new_tokens, eos_token_id=tokenizer.eos_token_id,
                              pad_token_id=tokenizer.pad_token_id)
        mask = seq != tokenizer.pad_token_id
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        P = enc["input_ids"].shape[1]  # replies start here
        logp = F.log_softmax(policy(seq, attention_mask=mask, position_ids=pos).logits[:, P - 1 : -1].float(), -1)
        logr = F.log_softmax(ref(seq, attention_mask=mask, position_ids=pos).logits[:, P - 1 : -1].float(), -1)
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
