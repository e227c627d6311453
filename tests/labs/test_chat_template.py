"""Chat templates: the same SFT model answers right most often with the template it learned."""

import json

from conftest import ROOT, load_lab, run_lab


def test_right_template_beats_wrong_ones(lab_metrics):
    m = lab_metrics("chat_template")
    assert m["format_rate_right_template"] >= 0.7
    assert m["format_rate_right_template"] - m["format_rate_wrong_template"] >= 0.3
    # wrong markers: hardly an answer right; no template at all: some survive
    right = m["task_accuracy_right_template"]
    assert m["task_accuracy_wrong_template"] <= 0.05
    assert right - m["task_accuracy_wrong_template"] >= 0.4
    assert right - m["task_accuracy_no_template"] >= 0.15


def test_templates_render_differently():
    from lifecycle.tokenizer import load_tokenizer

    lab = load_lab("chat_template")
    tok = load_tokenizer()
    shown = {name: lab.render(tok, "What is 2 plus 3?", name) for name in lab.TEMPLATES}
    assert shown["right"] == "<|user|>What is 2 plus 3?<|end|><|assistant|>"
    assert shown["no generation prompt"] == "<|user|>What is 2 plus 3?<|end|>"
    assert shown["no template"] == "What is 2 plus 3?"
    assert (
        "<|im_start|>assistant" in shown["wrong markers"]
        and "<|user|>" not in shown["wrong markers"]
    )
    # The wrong markers are not special tokens to our tokenizer: they split into ordinary pieces.
    assert len(tok("<|im_start|>", add_special_tokens=False)["input_ids"]) > 1


def test_committed_lesson_results_meet_the_targets():
    """What the pages say of the published lesson numbers, claim by claim."""
    m = json.loads((ROOT / "snippets" / "results" / "chat_template.json").read_text())
    right = m["task_accuracy_right_template"]
    assert m["format_rate_right_template"] >= 0.9
    # wrong markers: most replies still look well formed, almost none answers its question
    assert m["format_rate_wrong_template"] >= 0.5
    assert (
        m["task_accuracy_wrong_template"] <= 0.05
        and right - m["task_accuracy_wrong_template"] >= 0.4
    )
    # no template: the format survives here, the answers do not all survive
    assert m["format_rate_no_template"] >= 0.8
    assert right - m["task_accuracy_no_template"] >= 0.15
    # no generation prompt: almost as often and as well as the right template; costs the least
    assert m["format_rate_no_generation_prompt"] >= m["format_rate_right_template"] - 0.05
    assert m["task_accuracy_no_generation_prompt"] >= right - 0.05
    assert m["task_accuracy_no_generation_prompt"] - m["task_accuracy_no_template"] >= 0.1


def test_gpu_preset_offline_is_exit_2(tmp_path):
    proc = run_lab(
        "chat_template", "--output_dir", str(tmp_path / "out"), "--preset", "gpu", check=False
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith("chat_template: error: the sft stage failed")
    ), proc.stderr[-2000:]
