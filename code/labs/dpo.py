"""DPO: preferences without a judge. No reward model, no sampling, no value model; a β sweep.

    python code/labs/dpo.py --output_dir runs/dpo                  # lesson preset, CPU minutes
    python code/labs/dpo.py --output_dir runs/dpo --preset smoke   # half a minute
    python code/labs/dpo.py --output_dir runs/dpo --preset gpu     # gpt2 on UltraFeedback
    python code/labs/dpo.py --output_dir runs/dpo --data my_pairs.jsonl   # your own pairs

TRL's DPOTrainer trains the SFT model on the world's correct pairs (chosen = correct, concise,
polite; rejected = a near miss, or wrong and rude or rambling): DPO's loss alone once per β, then
the pick, the main β with the chosen replies' NLL term added (RPO, `--rpo_alpha`). Each run reports
the implicit-reward accuracy on held-out pairs, the KL to the reference on held-out prompts, and
what DPO is for: the gold score and format rate of the policy's own (greedy) replies to held-out
questions. A from-scratch DPO loss (the `loss` section) is checked against TRL's in the tests. The
pairs are tokenized once and reused for every run. The "what machinery disappears" table compares
this lab's measured memory with the PPO and GRPO labs', when their runs with the same preset and
seed are already in the cache (this lab never runs them). Writes `metrics.json`, `beta.png`,
`results.md`, `alone.md` (questions the pick and DPO alone answer differently), `machinery.md`
and `memory.json` (peak RSS, which differs between runs).

Longer than the 250 lines a lab aims for: besides the trainer, it holds the ten-line DPO loss
that a test checks against TRL's, a β sweep judged three ways (implicit-reward accuracy, KL,
greedy replies), the pick with its NLL term and the machinery table's inputs.
"""

import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from transformers import set_seed
from trl import DPOConfig

from lifecycle import plots, report
from lifecycle.cli import LabArgs, LabError, comma_list, parse, run, write_metrics, write_peak_rss
from lifecycle.data import fit_splits, read_pairs
from lifecycle.device import caption
from lifecycle.evaluation import chat_prompts, complete
from lifecycle.models import load
from lifecycle.rlhf import (
    TokenizedDPOTrainer,
    hub_pairs,
    kl_to_reference,
    machinery_table,
    model_memory,
    pair_dataset,
    preference_accuracy,
    split_heldout,
)
from lifecycle.stages import cached_results, check_model, stage_model
from lifecycle.tokenizer import ready_tokenizer
from lifecycle.training import trainer_defaults
from lifecycle.world import TASKS, check_format, examples, pairs
from lifecycle.world.tasks import is_gold_reply


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = (
        "beta",
        "max_steps",
        "batch_size",
        "learning_rate",
        "max_length",
        "response_length",
    )
    model: str | None = field(
        default=None, metadata={"help": "The SFT model: a folder (default: the SFT stage)."}
    )
    data: str | None = field(
        default=None,
        metadata={"help": "Your pairs: a JSONL or JSON file (see Bring your own data)."},
    )
    hub_data: str | None = field(
        default=None, metadata={"help": "A TRL preference dataset on the Hub (gpu preset)."}
    )
    tasks: str | None = field(
        default=None, metadata={"help": "Comma-separated world tasks to draw pairs from."}
    )
    beta: float | None = field(
        default=None, metadata={"help": "The main run's β (must be one of --betas)."}
    )
    betas: str | None = field(
        default=None, metadata={"help": "Comma-separated β values, one run each."}
    )
    max_steps: int | None = field(default=None, metadata={"help": "Optimizer steps per run."})
    batch_size: int | None = field(default=None, metadata={"help": "Pairs per step."})
    learning_rate: float | None = field(default=None, metadata={"help": "Peak learning rate."})
    max_length: int | None = field(default=None, metadata={"help": "Prompt + reply tokens kept."})
    response_length: int | None = field(
        default=None, metadata={"help": "Reply tokens sampled to measure KL."}
    )
    eval_pairs: int | None = field(
        default=None, metadata={"help": "Held-out pairs to score (0: all)."}
    )
    rpo_alpha: float | None = field(
        default=None, metadata={"help": "Weight α of an NLL term on the chosen reply (0: none)."}
    )


PRESETS = {
    "smoke": dict(
        tasks="capital,export,job,summary",
        beta=0.1,
        betas="0.1,1.0",
        max_steps=60,
        batch_size=16,
        learning_rate=2e-4,
        max_length=128,
        response_length=20,
        eval_pairs=48,
        rpo_alpha=1.0,
    ),
    "lesson": dict(
        beta=0.1,  # TRL's default
        betas="0.01,0.1,1.0",
        max_steps=60,
        batch_size=16,
        learning_rate=1e-4,  # 2e-4 collapsed the small-beta run, scrambling the KL order
        max_length=192,
        response_length=24,
        eval_pairs=0,
        rpo_alpha=1.0,  # DPO alone pushed down words of the chosen replies: see the page
    ),
    "gpu": dict(  # starts from the SFT stage's gpt2 (stage_model), as the page says
        hub_data="trl-lib/ultrafeedback_binarized",
        beta=0.1,
        betas="0.01,0.1,1.0",
        max_steps=300,
        batch_size=8,
        learning_rate=5e-7,
        max_length=512,
        response_length=64,
        eval_pairs=256,
        rpo_alpha=1.0,
    ),
}
# --8<-- [end:args]


# --8<-- [start:loss]
def sequence_logps(model, input_ids, attention_mask, completion_mask):
    """log π(y | x): the sum of the reply tokens' log-probabilities (prompt and padding masked)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1].float()
    token_logps = torch.log_softmax(logits, -1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return (token_logps * completion_mask[:, 1:]).sum(-1)


def dpo_loss(pi_chosen, pi_rejected, ref_chosen, ref_rejected, beta: float):
    """−log σ(r_w − r_l), implicit reward r = β · log π(y|x)/π_ref(y|x); mean over pairs."""
    r_chosen = beta * (pi_chosen - ref_chosen)
    r_rejected = beta * (pi_rejected - ref_rejected)
    return -F.logsigmoid(r_chosen - r_rejected).mean(), r_chosen, r_rejected


# --8<-- [end:loss]


@torch.no_grad()
def implicit_rewards(trainer, policy, ref, beta: float):
    """Implicit rewards of chosen and rejected on held-out pairs, through TRL's tokenization."""
    policy.eval(), ref.eval()
    chosen, rejected = [], []
    for batch in trainer.get_eval_dataloader():
        args = (batch["input_ids"], batch["attention_mask"], batch["completion_mask"])
        pi_w, pi_l = sequence_logps(policy, *args).chunk(2)  # TRL stacks [chosen; rejected]
        ref_w, ref_l = sequence_logps(ref, *args).chunk(2)
        _, r_w, r_l = dpo_loss(pi_w, pi_l, ref_w, ref_l, beta)
        chosen.append(r_w), rejected.append(r_l)
    return torch.cat(chosen), torch.cat(rejected)


# --8<-- [start:replies]
def reply_scores(policy, tokenizer, exs, max_new_tokens: int) -> tuple[dict, list[str]]:
    """What DPO is for, judged on the policy's own greedy replies to held-out questions: the gold
    score (the reference reply and nothing else) and the format rate; and the replies."""
    replies = complete(policy, tokenizer, chat_prompts(tokenizer, exs), max_new_tokens)
    return {
        "gold_score": sum(map(is_gold_reply, replies, exs)) / len(exs),
        "format_rate": sum(map(check_format, replies)) / len(exs),
    }, replies


# --8<-- [end:replies]


# --8<-- [start:trainer]
def dpo_trainer(args, beta: float, train, heldout, max_steps: int, rpo_alpha: float):
    policy, tokenizer = load(args.model)
    ref, _ = load(args.model)  # (1)!
    ready_tokenizer(tokenizer, policy, ref)  # a no-op for our tokenizer
    name = f"beta{beta:g}" + (f"-rpo{rpo_alpha:g}" if rpo_alpha else "")
    config = DPOConfig(
        # fp32 on a CPU, ...
        **trainer_defaults(args.output_dir / "trainer" / name, args.seed),
        beta=beta,  # (2)!
        # the DPO paper's loss, plus α × the chosen replies' NLL (RPO)
        loss_type=["sigmoid", "sft"] if rpo_alpha else ["sigmoid"],  # (3)!
        loss_weights=[1.0, rpo_alpha] if rpo_alpha else None,
        max_steps=max_steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=32,
        learning_rate=args.learning_rate,  # (4)!
        lr_scheduler_type="cosine",
        warmup_steps=max(1, max_steps // 10),
        max_length=args.max_length,
        logging_steps=max(1, max_steps // 20),
    )
    trainer = TokenizedDPOTrainer(
        model=policy,
        ref_model=ref,
        args=config,
        train_dataset=train,  # (5)!
        eval_dataset=heldout,
        processing_class=tokenizer,
    )
    return trainer, policy, ref, tokenizer


# --8<-- [end:trainer]


def data(args, tasks):
    if args.data:
        return split_heldout(read_pairs(args.data), args.data)  # one pair in five held out
    if args.hub_data:
        return hub_pairs(args.hub_data, "train", 4000), hub_pairs(
            args.hub_data, "test", args.eval_pairs or 500
        )
    held = pairs("test", tasks, args.seed)
    return pairs("train", tasks, args.seed), held[: args.eval_pairs] if args.eval_pairs else held


def run_name(beta: float, rpo_alpha: float) -> str:
    return f"DPO + NLL (α = {rpo_alpha:g}), β = {beta:g}" if rpo_alpha else f"DPO, β = {beta:g}"


def betas_of(args) -> list[float]:
    values = comma_list("betas", args.betas, float)
    if any(b <= 0 for b in values):
        raise LabError(f"--betas must be positive, got {args.betas!r}")
    if args.beta not in values:
        raise LabError(f"--beta {args.beta} is not one of --betas {args.betas}")
    return sorted(values)


def write_report(args, metrics: dict, sweep: list[dict]) -> None:
    """`results.md`, `beta.png`, and `machinery.md` (with the other labs' cached runs, if any)."""
    chosen = {  # the pick, a star on the plot
        "beta": metrics["beta"],
        "kl_to_reference": metrics["kl_to_reference_after"],
        "gold_score": metrics["gold_score_after"],
    }
    plots.beta_sweep(
        metrics["beta_sweep"],
        metrics["gold_score_before"],
        args.output_dir / "beta.png",
        chosen if metrics["rpo_alpha"] else None,
    )
    (args.output_dir / "results.md").write_text(
        report.table(
            [
                ("training pairs", metrics["train_pairs"], ","),
                ("held-out pairs (unseen questions)", metrics["heldout_pairs"], ","),
                (
                    "implicit-reward accuracy, before (policy = reference)",
                    metrics["preference_accuracy_before"],
                    ".1%",
                ),
                (
                    f"implicit-reward accuracy, after (β = {args.beta:g})",
                    metrics["preference_accuracy_after"],
                    ".1%",
                ),
                ("mean implicit-reward margin, after", metrics["reward_margin_after"], ".2f"),
                (
                    "gold score of greedy replies, SFT model (before DPO)",
                    metrics["gold_score_before"],
                    ".1%",
                ),
            ]
            + [
                (
                    f"held-out questions right with the NLL term, not without (β = {args.beta:g})",
                    metrics["questions_only_pick_right"],
                    "",
                ),
                ("… right without it, wrong with it", metrics["questions_only_alone_right"], ""),
            ]
            * (metrics["rpo_alpha"] > 0)
        )
        + "\n"
        + report.records(
            sweep,
            [
                ("beta", "β", "g"),
                ("rpo_alpha", "NLL weight α", "g"),
                ("kl_to_reference", "KL to reference (nats/reply)", ".3f"),
                ("preference_accuracy", "implicit-reward accuracy", ".1%"),
                ("reward_margin", "margin r_w − r_l", ".2f"),
                ("gold_score", "gold score", ".1%"),
                ("format_rate", "format rate", ".1%"),
            ],
        )
        + caption()
    )
    runs = {
        # None unless a PPO run is cached: never run here
        "PPO": cached_results("ppo", args.preset, args.seed),
        "GRPO": cached_results("grpo", args.preset, args.seed),
        "DPO": metrics,
    }
    (args.output_dir / "machinery.md").write_text(machinery_table(runs, args.preset, args.seed))


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    betas = betas_of(args)
    if args.rpo_alpha < 0:
        raise LabError(f"--rpo_alpha must not be negative, got {args.rpo_alpha}")
    set_seed(args.seed)
    tasks = tuple(comma_list("tasks", args.tasks, choices=TASKS)) if args.tasks else TASKS
    train, heldout = data(args, tasks)  # first, so a bad file fails before any model is built
    in_file = len(train) + len(heldout)
    if args.data:  # the whole file, before the SFT stage runs
        checked_on = args.model or check_model(args.preset, args.seed)
        train, heldout = fit_splits(checked_on, train, heldout, args.max_length, "dpo", args.data)
    args.model = args.model or stage_model("sft", args.preset, args.seed)
    start = time.perf_counter()  # DPO's own time, not the SFT stage's
    # held-out: the pairs' questions are the training split
    questions = examples("test", tasks, args.seed)

    # --8<-- [start:sweep]
    sweep, replies = [], {}
    tokenized = pair_dataset(train), pair_dataset(heldout)
    # DPO alone at every β, then the pick: the main β with the NLL term (if α > 0)
    plan = [(beta, 0.0) for beta in betas] + [(args.beta, args.rpo_alpha)] * (args.rpo_alpha > 0)
    for beta, alpha in plan:
        set_seed(args.seed)
        trainer, policy, ref, tokenizer = dpo_trainer(
            args, beta, *tokenized, args.max_steps, alpha
        )
        # tokenized now: every later run reuses them
        tokenized = (trainer.train_dataset, trainer.eval_dataset)
        if not sweep:
            # before training the policy IS the reference: every implicit reward is 0
            before = preference_accuracy(*implicit_rewards(trainer, policy, ref, beta))
            # the SFT model's own replies
            sft, replies["SFT model"] = reply_scores(
                ref, tokenizer, questions, args.response_length
            )
        trainer.train()
        r_w, r_l = implicit_rewards(trainer, policy, ref, beta)
        prompts = chat_prompts(tokenizer, questions)
        kl = kl_to_reference(policy, ref, tokenizer, prompts, args.response_length, seed=args.seed)
        scores, said = reply_scores(policy, tokenizer, questions, args.response_length)
        sweep.append(
            {
                "beta": beta,
                "rpo_alpha": alpha,
                "kl_to_reference": kl,
                "preference_accuracy": preference_accuracy(r_w, r_l),
                "reward_margin": (r_w - r_l).mean().item(),
                **scores,
            }
        )
        if beta == args.beta:  # DPO alone, then (last) the pick
            replies[run_name(beta, alpha)] = said
            main_run = {
                "after": sweep[-1],
                "memory": model_memory({"policy": policy}, {"reference": ref}, trainer.optimizer),
                "pairs": (len(trainer.train_dataset), len(trainer.eval_dataset)),
            }
    sweep, chosen = sweep[: len(betas)], main_run["after"]  # the β sweep is DPO alone
    # --8<-- [end:sweep]

    split = []  # per question: (the pick right, DPO alone at the same β right)
    if args.rpo_alpha:
        pick, alone = replies[run_name(args.beta, args.rpo_alpha)], replies[run_name(args.beta, 0)]
        split = [
            (is_gold_reply(a, e), is_gold_reply(b, e)) for a, b, e in zip(pick, alone, questions)
        ]
    metrics = {
        "preference_accuracy_before": before,
        "preference_accuracy_after": chosen["preference_accuracy"],
        "reward_margin_after": chosen["reward_margin"],
        "beta": args.beta,
        "rpo_alpha": args.rpo_alpha,
        "beta_sweep": [{k: v for k, v in r.items() if k != "reward_margin"} for r in sweep],
        # the pick: the main β, with the NLL term when α > 0
        "kl_to_reference_after": chosen["kl_to_reference"],
        "gold_score_after": chosen["gold_score"],
        "format_rate_after": chosen["format_rate"],
        # held-out questions the pick gets right and DPO alone (same β) wrong, and the reverse
        "questions_only_pick_right": split.count((True, False)),
        "questions_only_alone_right": split.count((False, True)),
        "gold_score_before": sft["gold_score"],
        "format_rate_before": sft["format_rate"],
        "heldout_questions": len(questions),
        "heldout_pairs": main_run["pairs"][1],
        "train_pairs": main_run["pairs"][0],
        # one row per model: parameters, gradients, optimizer state (bytes)
        "memory": main_run["memory"],
        "train_memory_bytes": sum(r["total_bytes"] for r in main_run["memory"]),
        "models_held": len(main_run["memory"]),  # policy, reference
        "param_bytes_held": sum(r["parameter_bytes"] for r in main_run["memory"]),
        "replies_sampled_per_run": 0,
        "wall_seconds": time.perf_counter() - start,
    } | ({"pairs_in_file": in_file} if args.data else {})
    write_metrics(args.output_dir, metrics)
    write_peak_rss(args.output_dir)  # memory.json: it varies by run
    write_report(args, metrics, sweep + [chosen] * (args.rpo_alpha > 0))
    if args.rpo_alpha:  # questions the pick gets right and DPO alone at the same β gets wrong
        lost = [i for i in range(len(questions)) if split[i] == (True, False)]
        (args.output_dir / "alone.md").write_text(
            report.samples_table(
                [questions[i] for i in lost],
                {k: [v[i] for i in lost] for k, v in replies.items()},
                is_gold_reply,
            )
        )
    return metrics


if __name__ == "__main__":
    run(main)
