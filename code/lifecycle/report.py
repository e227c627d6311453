"""Markdown tables from metrics, for `snippets/results/`: the only way a number reaches a page."""


def cell(text: str, width: int = 70) -> str:
    """Text for a table cell: special tokens shown (`<|end|>`), newlines as ⏎, cut at `width`."""
    text = text if len(text) <= width else text[: width - 1] + "…"
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "&#124;")
        .replace("\n", "⏎")
    )


def fmt(value, spec: str = "") -> str:
    if isinstance(value, float) and not spec:
        spec = ".3g" if abs(value) < 1000 else ",.0f"
    if isinstance(value, int) and not spec:
        spec = ","
    return format(value, spec)


def table(
    rows: list[tuple[str, object, str]], header: tuple[str, str] = ("measure", "value")
) -> str:
    """A two-column table from (label, value, format spec) rows."""
    lines = [f"| {header[0]} | {header[1]} |", "| --- | ---: |"]
    lines += [f"| {label} | {fmt(value, spec)} |" for label, value, spec in rows]
    return "\n".join(lines) + "\n"


def records(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A table with one row per dict; columns are (key, heading, format spec)."""
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + " ---: |" * len(columns)]
    lines += ["| " + " | ".join(fmt(r[k], s) for k, _, s in columns) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def samples_table(exs: list, samples: dict[str, list], check, n: int = 4) -> str:
    """`n` questions spread over `exs` (an example has `prompt` and `gold`), each with every
    model's reply from `samples` (model name → replies, in the order of `exs`), marked ✓ where
    `check(reply, example)` holds."""
    lines = ["| question | gold | model | reply |", "| --- | --- | --- | --- |"]
    for i in range(0, len(exs), max(1, len(exs) // n))[:n]:
        e = exs[i]
        lines += [
            f"| {cell(e.prompt, 40)} | {cell(e.gold, 20)} | {name} | "
            f"{'✓' if check(r[i], e) else '✗'} {cell(r[i])} |"
            for name, r in samples.items()
        ]
    return "\n".join(lines) + "\n"


def curve(history: list[dict], key: str) -> list[dict]:
    """One logged value over training, [{step, value}], from a Trainer's `log_history`."""
    return [{"step": h["step"], "value": h[key]} for h in history if key in h]
