"""Matplotlib helpers, so every lab's plot looks alike and renders without a display."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams.update(
    {"figure.dpi": 110, "axes.grid": True, "grid.alpha": 0.3, "svg.hashsalt": "lifecycle"}
)


def save(fig, path) -> None:
    """Save with fixed metadata, so the same numbers give the same file."""
    fig.tight_layout()
    fig.savefig(
        path, metadata={"Software": None} if str(path).endswith(".png") else {"Date": None}
    )
    plt.close(fig)


def loss_curve(history: list[dict], path, title: str) -> None:
    """Training loss and learning rate against step, from a Trainer's `log_history`."""
    rows = [h for h in history if "loss" in h]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot([h["step"] for h in rows], [h["loss"] for h in rows], label="train loss", color="C0")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/token)")
    ax.set_title(title)
    lr = ax.twinx()
    lr.plot(
        [h["step"] for h in rows],
        [h["learning_rate"] for h in rows],
        color="C1",
        ls="--",
        label="learning rate",
    )
    lr.set_ylabel("learning rate")
    lr.grid(False)
    fig.legend(loc="upper right", bbox_to_anchor=(0.88, 0.88))
    save(fig, path)


def shares(
    names: list[str],
    parts: list[tuple[str, list[float]]],
    totals: list[float],
    path,
    title: str,
    xlabel: str,
    unit: str = "GB",
) -> None:
    """Horizontal stacked bars: each row's parts in percent of its total, written at the end."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    left = [0.0] * len(names)
    for label, values in parts:
        pct = [100 * v / t for v, t in zip(values, totals)]
        ax.barh(names, pct, left=left, label=label)
        left = [a + b for a, b in zip(left, pct)]
    for i, t in enumerate(totals):
        ax.text(
            101, i, f"{t:.0f} {unit}" if t >= 10 else f"{t:.1f} {unit}", va="center", fontsize=8
        )
    ax.set(xlim=(0, 115), xlabel=xlabel, title=title)
    ax.invert_yaxis()
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.45, -0.2), ncol=2)
    save(fig, path)


def overoptimization(rows: list[dict], path) -> None:
    """Gold score and proxy reward against √KL to the reference, one line per KL coefficient, from
    rows {kl_coef, sqrt_kl, proxy_reward, gold_score} (Gao, Schulman & Hilton 2022, Figure 1)."""
    fig, (gold, proxy) = plt.subplots(1, 2, figsize=(8.0, 3.4), sharex=True)
    for i, beta in enumerate(dict.fromkeys(r["kl_coef"] for r in rows)):
        run = [r for r in rows if r["kl_coef"] == beta]
        x = [r["sqrt_kl"] for r in run]
        gold.plot(
            x, [r["gold_score"] for r in run], "o-", color=f"C{i}", ms=3, label=f"β={beta:g}"
        )
        proxy.plot(
            x, [r["proxy_reward"] for r in run], "o--", color=f"C{i}", ms=3, label=f"β={beta:g}"
        )
    gold.set(title="gold score (what we want)", ylabel="share of replies", ylim=(-0.03, 1.03))
    proxy.set(title="proxy reward (what PPO maximizes)", ylabel="logits")
    for ax in (gold, proxy):
        ax.set_xlabel("√KL(π ‖ π_ref), √nats per reply")
        ax.legend(fontsize=8)
    save(fig, path)


def beta_sweep(sweep: list[dict], gold_before: float, path, chosen: dict | None = None) -> None:
    """DPO's β sweep: KL to the reference (left) and the gold score of the policy's replies
    (right), from rows {beta, kl_to_reference, gold_score}; the dotted line is the SFT model's gold
    score, the star (`chosen`, a row of the same keys) the recipe picked."""
    fig, (kl, gold) = plt.subplots(1, 2, figsize=(8.0, 3.4), sharex=True)
    b = [r["beta"] for r in sweep]
    kl.plot(b, [r["kl_to_reference"] for r in sweep], "o-")
    kl.set(
        xscale="log",
        xlabel="β (log scale)",
        ylabel="nats per reply",
        title="KL(π ‖ π_ref): larger β, closer",
    )
    gold.plot(b, [r["gold_score"] for r in sweep], "s-", color="C2", label="DPO alone")
    gold.axhline(gold_before, color="k", ls=":", lw=1, label="SFT model (before)")
    if chosen:
        kl.plot(chosen["beta"], chosen["kl_to_reference"], "*", ms=12, color="C3")
        gold.plot(chosen["beta"], chosen["gold_score"], "*", ms=12, color="C3", label="DPO + NLL")
    gold.set(
        xlabel="β (log scale)",
        ylabel="share of held-out questions",
        title="gold score of greedy replies",
        ylim=(0, 1),  # a few questions' difference must not look like a canyon
    )
    gold.legend(fontsize=8)
    save(fig, path)


def group_rewards(
    mean: list[dict], std: list[dict], zero_variance: dict[str, list[dict]], path, title: str
) -> None:
    """GRPO's groups: the mean reward of a group and its spread within the group (left), and per
    run the share of groups whose G rewards were all equal (right). Curves are [{step, value}]."""
    fig, (a, b) = plt.subplots(1, 2, figsize=(8.0, 3.4))
    steps, m, s = [p["step"] for p in mean], [p["value"] for p in mean], [p["value"] for p in std]
    a.plot(steps, m, label="mean reward of a group")
    a.fill_between(
        steps,
        [x - d for x, d in zip(m, s)],
        [x + d for x, d in zip(m, s)],
        alpha=0.25,
        label="± std within a group",
    )
    a.set_title(title, fontsize=9)
    for name, curve in zero_variance.items():
        b.plot([p["step"] for p in curve], [p["value"] for p in curve], label=name)
    b.set(ylim=(-0.05, 1.05), ylabel="share of groups")
    b.set_title("groups whose G replies all scored the same", fontsize=9)
    for ax in (a, b):
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    save(fig, path)
