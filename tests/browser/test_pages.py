"""Every page of the built site, in a real browser: no errors, nothing fetched from outside, math
typeset, diagrams drawn, no serious accessibility violation, images described and plots captioned.

Each test reads the same session crawl (`visits`), so every page is loaded once.
"""

MAX_PAGE_BYTES = (
    8_000_000  # measured ~1 MB for a page without diagrams, ~4.5 MB with mermaid; margin for noise
)


def failures(visits, check) -> list[str]:
    return [f"{page}: {problem}" for page, seen in visits.items() for problem in check(seen)]


def test_every_page_was_visited(visits):
    assert "index.html" in visits and "labs/pretrain.html" in visits
    assert len(visits) >= 10


def test_no_console_errors(visits):
    problems = failures(visits, lambda seen: seen["errors"])
    assert not problems, "\n".join(problems)


def test_no_request_leaves_the_site(visits):
    problems = failures(visits, lambda seen: [f"fetched {url}" for url in seen["outside"]])
    assert not problems, "\n".join(problems)


def test_math_is_typeset(visits):
    def check(seen):
        if seen["math_typeset"] < seen["math"]:
            yield f"{seen['math'] - seen['math_typeset']} of {seen['math']} formulas not typeset"
        for message in seen["math_errors"]:
            yield f"KaTeX error: {message}"

    problems = failures(visits, check)
    assert not problems, "\n".join(problems)
    assert sum(seen["math_typeset"] for seen in visits.values()) > 0, (
        "no page has math: is KaTeX wired up?"
    )


def test_diagrams_are_drawn_as_svg(visits):
    def check(seen):
        if seen["diagrams_drawn"] != seen["expected_diagrams"]:
            yield (
                f"{seen['diagrams_drawn']} of {seen['expected_diagrams']} mermaid diagrams "
                "drawn as SVG"
            )
        if seen["diagram_errors"]:
            yield f"{seen['diagram_errors']} diagrams show a mermaid syntax error"

    problems = failures(visits, check)
    assert not problems, "\n".join(problems)
    assert visits["index.html"]["diagrams_drawn"] >= 1, (
        "the home page's lifecycle diagram is not drawn"
    )


def test_no_serious_accessibility_violations(visits):
    def check(seen):
        for v in seen["violations"]:
            where = ", ".join(v["where"])
            yield f"axe {v['impact']} {v['id']} ({v['help']}) x{v['count']}: {where}"

    problems = failures(visits, check)
    assert not problems, "\n".join(problems)


def test_images_have_alt_text_and_plots_captions(visits):
    def check(seen):
        for src in seen["images_without_alt"]:
            yield f"image without alt text: {src}"
        for src in seen["plots_without_caption"]:
            yield (
                "plot without a caption (an *italic* paragraph or figcaption right after it): "
                f"{src}"
            )

    problems = failures(visits, check)
    assert not problems, "\n".join(problems)


def test_page_weight_budget(visits):
    sizes = {page: seen["bytes"] for page, seen in visits.items()}
    heaviest = max(sizes, key=sizes.get)
    print(f"largest page transfer: {heaviest} {sizes[heaviest] / 1e6:.2f} MB")
    assert sizes[heaviest] <= MAX_PAGE_BYTES, (
        f"{heaviest} transfers {sizes[heaviest] / 1e6:.1f} MB"
    )
    assert all(size > 0 for size in sizes.values()), (
        "a page transferred nothing: is the size measured?"
    )
