"""Refill the comments and docstring paragraphs that run past the line length.

`ruff format` wraps code but never text, and `ruff check` (E501) then reports every comment and
docstring line that is too long for a code block on the page. This refills them as a person would:

- a run of full-line comments at one indentation is refilled as a paragraph (a comment line that
  starts a list item, or is indented further, starts a new paragraph);
- a trailing comment that makes its line too long moves above that line, refilled;
- a comment that `ruff format` left after a closing bracket moves above the statement (see
  `lift_bracket_comments`);
- a docstring paragraph (lines at the docstring's indentation, blank lines between paragraphs) is
  refilled; a list item (`- `, `* `, `1. `) is refilled with a hanging indent. A one-line docstring
  is left to a person: a summary stays one line (PEP 257), so it needs fewer words, not a wrap.

It touches only paragraphs that hold a line that is too long, and never a code annotation
(`# (1)!`), a snippet marker (`# --8<--`), a pragma (`# noqa`, `# type:`, `# fmt:`), an inline code
span, a table, or an indented docstring line (a command or an example); a `# --- ruler ---` comment
is shortened. What it leaves (a long string, a long command line) ruff check still reports.

    python tools/wrap_text.py FILE...   # make format runs it on every file ruff checks

The line length is read from pyproject.toml ([tool.ruff] line-length).
"""

import ast
import io
import re
import sys
import textwrap
import tokenize
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIDTH = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["ruff"]["line-length"]
KEEP = re.compile(r"#\s*(\(\d+\)!|--8<--|noqa|type:|fmt:|pragma|!)")
ITEM = re.compile(r"^([-*] |\d+\. )")
CODE_SPAN = re.compile(r"`[^`]+`")
NBSP = "\x00"
RULER = re.compile(r"^(\s*#.*?)([-=]{3,})$")  # `# --- a section ----`: shortened, never refilled


def fill(text: str, first: str, rest: str, width: int = WIDTH, last_suffix: str = "") -> list[str]:
    """`text` refilled to `width`, the first line after `first`, the others after `rest`; the last
    line leaves room for `last_suffix` (a docstring's closing quotes). A code span never breaks."""
    text = CODE_SPAN.sub(lambda m: m.group().replace(" ", NBSP), text)
    return [line.replace(NBSP, " ") for line in _fill(text, first, rest, width, last_suffix)]


def _fill(text: str, first: str, rest: str, width: int, last_suffix: str) -> list[str]:
    lines = textwrap.wrap(
        text,
        width=width,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )
    if last_suffix and len(lines[-1]) + len(last_suffix) > width:
        head = textwrap.wrap(
            lines[-1][len(rest) :] if len(lines) > 1 else text,
            width=width - len(last_suffix),
            initial_indent=rest if len(lines) > 1 else first,
            subsequent_indent=rest,
            break_long_words=False,
            break_on_hyphens=False,
        )
        lines = lines[:-1] + head
    if last_suffix:
        lines[-1] += last_suffix
    return lines


def comment_tokens(source: str) -> dict[int, int]:
    """Line number -> column of the comment on that line (tokenize knows a `#` inside a string)."""
    found = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            found[tok.start[0]] = tok.start[1]
    return found


def docstring_spans(source: str) -> list[tuple[int, int, int]]:
    """(first line, last line, indentation) of every module, class and function docstring
    (1-based)."""
    spans = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    spans.append((body[0].lineno, body[0].end_lineno, body[0].col_offset))
    return spans


def wrap_comments(lines: list[str], comments: dict[int, int]) -> list[str]:
    out, i = [], 0
    while i < len(lines):
        line, col = lines[i], comments.get(i + 1)
        if col is None or KEEP.match(line[col:]):
            out.append(line)
            i += 1
            continue
        indent = line[:col]
        ruler = RULER.match(line)
        if ruler and not line[:col].strip():
            keep = max(3, WIDTH - len(ruler.group(1)))
            out.append(ruler.group(1) + ruler.group(2)[:keep] if len(line) > WIDTH else line)
            i += 1
            continue
        if line[:col].strip():  # a trailing comment
            if len(line) > WIDTH and len(line[:col].rstrip()) <= WIDTH:
                code_indent = re.match(r"\s*", line).group()
                text = line[col:].lstrip("#").strip()
                out += fill(text, code_indent + "# ", code_indent + "# ")
                out.append(line[:col].rstrip())
            else:
                out.append(line)
            i += 1
            continue
        # A paragraph of full-line comments at this indentation.
        j, para = i, []
        while j < len(lines) and comments.get(j + 1) == col and not lines[j][:col].strip():
            body = lines[j][col:]
            if (
                KEEP.match(body)
                or RULER.match(body)
                or (
                    para
                    and (body in ("#", "# ") or ITEM.match(body[2:]) or body.startswith("#  "))
                )
            ):
                break
            para.append(body)
            j += 1
        if not para:
            out.append(line)
            i += 1
            continue
        if any(len(indent + p) > WIDTH for p in para) and not para[0].startswith("#  "):
            first = para[0][2:]
            item = ITEM.match(first)
            hang = " " * len(item.group()) if item else ""
            text = " ".join(p[2:].strip() if k else p[2:] for k, p in enumerate(para))
            out += fill(text, indent + "# ", indent + "# " + hang)
        else:
            out += [indent + p for p in para]
        i = j
    return out


def wrap_docstrings(lines: list[str], spans) -> list[str]:
    replace = {}  # (first index, last index) -> new lines
    for first, last, col in spans:
        base = " " * col
        idx = first - 1
        while idx <= last - 1:
            # A paragraph: consecutive non-blank lines.
            if not lines[idx].strip():
                idx += 1
                continue
            start = idx
            while idx <= last - 1 and lines[idx].strip():
                idx += 1
            block = lines[start:idx]
            if not any(len(line) > WIDTH for line in block):
                continue
            # A summary line (a one-line docstring, or the first line of a longer one) stays one
            # line (PEP 257): it needs fewer words, not a wrap, so it is left for ruff to report.
            if first == last or (start == first - 1 and idx - start == 1 and idx - 1 < last - 1):
                continue
            new = wrap_paragraph(block, base, opens=start == first - 1, closes=idx - 1 == last - 1)
            if new is not None:
                replace[start, idx - 1] = new
    out, i = [], 0
    for (a, b), new in sorted(replace.items()):
        out += lines[i:a] + new
        i = b + 1
    return out + lines[i:]


def wrap_paragraph(block: list[str], base: str, opens: bool, closes: bool) -> list[str] | None:
    """Refill one docstring paragraph; None when it is not plain text (it is then left as it
    is)."""
    prefix = ""
    if opens:
        m = re.match(r'(\s*[rRbBuU]?""")', block[0])
        if not m:
            return None
        prefix = m.group(1)[len(base) :]
        block = [base + block[0][len(m.group(1)) :], *block[1:]]
    suffix = ""
    if closes:
        if not block[-1].rstrip().endswith('"""'):
            return None
        suffix = '"""'
        block = [*block[:-1], block[-1].rstrip()[:-3]]
        if not block[-1].strip():
            block, suffix = block[:-1], ""  # the closing quotes stand on their own line: keep that
    if any(
        not line.startswith(base) or line[len(base) : len(base) + 1].isspace()
        for line in block
        if line
    ):
        # Lines indented further are a command, an example or an item's continuation: refill only a
        # plain list of items with their hanging indents.
        return wrap_items(block, base, prefix, suffix, closes)
    texts = [line[len(base) :] for line in block]
    if any(t.startswith(("|", "#", "```", ">>>")) for t in texts):  # a table, a heading, code
        return None
    if any(ITEM.match(t) for t in texts):
        return wrap_items(block, base, prefix, suffix, closes)
    new = fill(" ".join(t.strip() for t in texts), base + prefix, base, last_suffix=suffix)
    if closes and not suffix:
        new.append(base + '"""')
    return new


def wrap_items(block, base, prefix, suffix, closes) -> list[str] | None:
    """A paragraph that is a list of items (`- x` with continuation lines indented to the text)."""
    items, head = [], None
    for line in block:
        text = line[len(base) :] if line.startswith(base) else None
        if text is None:
            return None
        m = ITEM.match(text)
        if m:
            items.append([m.group(), text[len(m.group()) :].strip()])
        elif items and text.startswith(" " * len(items[-1][0])):
            items[-1][1] += " " + text.strip()
        elif not items and head is None:
            head = text.strip()
        else:
            return None
    if not items:
        return None
    new = fill(head, base + prefix, base) if head else []
    for k, (marker, text) in enumerate(items):
        last = k == len(items) - 1
        start = base + (prefix if not new and k == 0 else "") + marker
        new += fill(text, start, base + " " * len(marker), last_suffix=suffix if last else "")
    if closes and not suffix:
        new.append(base + '"""')
    return new


def lift_bracket_comments(source: str, drop_commas: bool = True) -> str:
    """A comment after a closing bracket (`)  # why`): ruff format split a statement that was too
    long with its trailing comment, and the comment ended up after the bracket. It moves to its own
    line above the line that opens the bracket, and the last element's trailing comma goes (unless
    that changes the code: a one-element tuple), so that `ruff format` joins the statement again
    when it fits."""
    lines = source.splitlines()
    opened, moves, closer = [], [], None  # closer: (row, row of its opening bracket)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.OP and tok.string in "([{":
            opened.append(tok.start[0])
        elif tok.type == tokenize.OP and tok.string in ")]}":
            closer = (tok.start[0], opened.pop())
        elif tok.type == tokenize.COMMENT and closer and closer[0] == tok.start[0]:
            row, col = tok.start
            if re.fullmatch(r"\s*[)\]}]+[,:]?\s*", lines[row - 1][:col]) and not KEEP.match(
                tok.string
            ):
                moves.append((row, closer[1], col))
    for row, start, col in reversed(moves):
        comment = lines[row - 1][col:]
        lines[row - 1] = lines[row - 1][:col].rstrip()
        if drop_commas and lines[row - 2].endswith(","):
            lines[row - 2] = lines[row - 2][:-1]
        lines.insert(start - 1, re.match(r"\s*", lines[start - 1]).group() + comment)
    result = "\n".join(lines) + "\n"
    if drop_commas and ast.dump(ast.parse(result)) != ast.dump(ast.parse(source)):
        return lift_bracket_comments(source, drop_commas=False)
    return result


def wrap_file(path: Path) -> bool:
    source = path.read_text()
    lines = lift_bracket_comments(source).splitlines()
    source_lifted = "\n".join(lines) + "\n"
    lines = wrap_docstrings(lines, docstring_spans(source_lifted))
    interim = "\n".join(lines) + "\n"
    lines = wrap_comments(lines, comment_tokens(interim))
    result = "\n".join(lines) + "\n"
    ast.parse(result)  # never write a file that no longer parses
    if result != source:
        path.write_text(result)
        return True
    return False


if __name__ == "__main__":
    changed = [p for p in map(Path, sys.argv[1:]) if p.suffix == ".py" and wrap_file(p)]
    print(f"wrap_text: refilled text in {len(changed)} of {len(sys.argv) - 1} files")
