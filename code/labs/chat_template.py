"""Chat templates: one SFT model, prompted with the right template, no template, and wrong ones.

    # lesson preset, about a minute; smoke: seconds; gpu: the SFT'd gpt2
    python code/labs/chat_template.py --output_dir runs/chat_template
    python code/labs/chat_template.py --output_dir runs/chat_template --preset smoke
    python code/labs/chat_template.py --output_dir runs/chat_template --preset gpu

The model is the SFT stage's output (`code/labs/sft.py`, run on demand and cached). Nothing is
trained here: only the text around the question changes, and the world's format and gold checkers
score the replies. Writes `metrics.json`, `results.md`, `prompts.md` and `templates.png`.
"""

import time
from dataclasses import dataclass, field

from transformers import set_seed

from lifecycle import plots, report
from lifecycle.cli import LabArgs, parse, run, write_metrics
from lifecycle.device import caption
from lifecycle.evaluation import complete, score
from lifecycle.models import load
from lifecycle.stages import stage_model
from lifecycle.world import examples


# --8<-- [start:args]
@dataclass
class Args(LabArgs):
    positive = ("max_new_tokens",)
    model: str | None = field(
        default=None, metadata={"help": "An SFT model folder; default: the sft stage's model."}
    )
    max_new_tokens: int | None = field(
        default=None, metadata={"help": "Reply length limit when scoring."}
    )


PRESETS = {
    "smoke": dict(max_new_tokens=24),
    "lesson": dict(max_new_tokens=32),
    "gpu": dict(max_new_tokens=48),
}
# --8<-- [end:args]

# --8<-- [start:templates]
CHATML = (  # another model family's markers: plain text to our tokenizer, never seen in training
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
TEMPLATES = {  # name: (template, open the assistant turn?); only "right" is what SFT trained on
    "right": (None, True),  # (1)!
    "no template": ("{{ messages[0]['content'] }}", True),  # (2)!
    "wrong markers": (CHATML, True),  # (3)!
    "no generation prompt": (None, False),  # (4)!
}


def render(tokenizer, question: str, name: str) -> str:
    template, open_turn = TEMPLATES[name]
    messages = [{"role": "user", "content": question}]
    return tokenizer.apply_chat_template(
        messages, chat_template=template, add_generation_prompt=open_turn, tokenize=False
    )


# --8<-- [end:templates]


def write_report(args, results: dict, samples: dict) -> None:
    """`results.md`, `prompts.md` (what the model sees, and its reply) and `templates.png`."""
    (args.output_dir / "results.md").write_text(
        report.records(
            [{"template": name, **r} for name, r in results.items()],
            [
                ("template", "prompt wrapping", ""),
                ("format_rate", "format rate", ".0%"),
                ("task_accuracy", "task accuracy", ".0%"),
            ],
        ).replace("| ---: |", "| --- |", 1)
        + caption("fp32")
    )
    lines = ["| prompt wrapping | what the model sees | its reply |", "| --- | --- | --- |"]
    lines += [
        f"| {name} | {report.cell(p, 60)} | {report.cell(r, 60)} |"
        for name, (p, r) in samples.items()
    ]
    (args.output_dir / "prompts.md").write_text("\n".join(lines) + "\n")

    fig, ax = plots.plt.subplots(figsize=(6.4, 3.8))
    names = list(results)[::-1]
    y = range(len(names))
    # format alone can look fine while the answers are wrong: show both
    for shift, key, label, color in (
        (0.2, "format_rate", "format rate", "C0"),
        (-0.2, "task_accuracy", "task accuracy", "C1"),
    ):
        ax.barh(
            [i + shift for i in y], [results[n][key] for n in names], 0.4, label=label, color=color
        )
    ax.set_yticks(list(y), names)
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of held-out questions")
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.28), ncols=2)
    ax.set_title("Same SFT model, same questions")
    plots.save(fig, args.output_dir / "templates.png")


def main(argv=None):
    args = parse(Args, PRESETS, argv)
    set_seed(args.seed)
    start = time.perf_counter()
    # the SFT stage's model
    model, tokenizer = load(args.model or stage_model("sft", args.preset, args.seed))
    test = examples("test", seed=args.seed)

    # --8<-- [start:measure]
    results, samples = {}, {}
    for name in TEMPLATES:
        prompts = [render(tokenizer, e.prompt, name) for e in test]
        # greedy: same model, same questions
        replies = complete(model, tokenizer, prompts, args.max_new_tokens)
        results[name] = score(replies, test)
        samples[name] = (prompts[0], replies[0])
        print(
            f"{name}: format rate {results[name]['format_rate']:.0%} on {len(test)} questions",
            flush=True,
        )
    # --8<-- [end:measure]

    key = {
        "right": "right_template",
        "no template": "no_template",
        "wrong markers": "wrong_template",
        "no generation prompt": "no_generation_prompt",
    }
    metrics = {
        f"{m}_{key[name]}": r[m]
        for name, r in results.items()
        for m in ("format_rate", "task_accuracy")
    }
    metrics |= {"test_questions": len(test), "wall_seconds": time.perf_counter() - start}
    write_metrics(args.output_dir, metrics)
    write_report(args, results, samples)
    return metrics


if __name__ == "__main__":
    run(main)
