"""The helpers every lab shares: trainer defaults that really override TRL's, flag lists, the
hold-out split, table cells, a process's own peak RSS, and readying a Hub tokenizer. Cost: about 6
s (importing TRL's configs)."""

import os

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from lifecycle.cli import LabError, comma_list
from lifecycle.report import cell
from lifecycle.rlhf import split_heldout
from lifecycle.tokenizer import CHAT_TEMPLATE, END, PAD, ROLES, ready_tokenizer
from lifecycle.training import trainer_defaults


def test_trainer_defaults_override_trl_on_a_cpu(tmp_path):
    """TRL's configs default to bf16 and gradient checkpointing; on this CPU both must be off."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from transformers import TrainingArguments
    from trl import DPOConfig, RewardConfig, SFTConfig
    from trl.experimental.ppo import PPOConfig

    for cls in (TrainingArguments, SFTConfig, RewardConfig, DPOConfig, PPOConfig):
        config = cls(**trainer_defaults(tmp_path, seed=7), learning_rate=1e-4)
        assert config.bf16 is False and config.use_cpu is True, cls.__name__
        assert (
            config.activation_checkpointing is False and config.gradient_checkpointing is False
        ), cls.__name__
        assert (
            config.save_strategy == "no"
            and config.seed == 7
            and config.dataloader_num_workers == 0
        )
        assert config.report_to in ("none", [], ["none"]), config.report_to
    # overrides win
    assert trainer_defaults(tmp_path, 0, dataloader_num_workers=2)["dataloader_num_workers"] == 2


def test_comma_list_parses_and_names_the_flag():
    assert comma_list("kl_coefs", "0, 0.05,0.2", float) == [0.0, 0.05, 0.2]
    assert comma_list("tasks", "capital,job", choices=("capital", "job", "export")) == [
        "capital",
        "job",
    ]
    with pytest.raises(
        LabError, match=r"--kl_coefs must be comma-separated numbers, got '0,lots'"
    ):
        comma_list("kl_coefs", "0,lots", float)
    with pytest.raises(LabError, match=r"--microbatches must be comma-separated integers"):
        comma_list("microbatches", "2,x", int)
    with pytest.raises(LabError, match=r"--tasks: unknown poetry; choose from capital, job"):
        comma_list("tasks", "capital,poetry", choices=("capital", "job"))


def test_split_heldout_keeps_one_in_five():
    rows = [{"i": i} for i in range(10)]
    train, held = split_heldout(rows, "pairs.jsonl")
    assert held == rows[:2] and train == rows[2:]
    assert split_heldout(rows[:2], "p") == (rows[1:2], rows[:1])  # at least one on each side
    with pytest.raises(LabError, match=r"^pairs.jsonl: need at least 2 pairs"):
        split_heldout(rows[:1], "pairs.jsonl")


def test_peak_rss_is_the_process_own_not_its_parents():
    """A lab started by a large process (a test worker) reports its own peak: Linux keeps
    getrusage's ru_maxrss across fork and exec (measured here: the child of a process holding 600
    MiB read 613 MiB from ru_maxrss, 13 MiB from VmHWM). Cost: about 1 s (a child process that
    imports lifecycle.cli)."""
    import subprocess
    import sys

    held = bytearray(512 * 2**20)
    held[::4096] = b"\1" * len(held[::4096])  # touch every page: resident, not just reserved
    code = "from lifecycle.cli import peak_rss_mib; print(peak_rss_mib())"
    child = float(
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
    )
    # the child's own imports, far below the 512 MiB its parent holds
    assert 10 < child < 400, child
    del held


def test_cell_shows_special_tokens_and_cuts():
    assert cell("a|b<|end|>\nc") == "a&#124;b&lt;&#124;end&#124;&gt;⏎c"
    assert cell("x" * 80, width=10) == "x" * 9 + "…"


def test_ready_tokenizer_gives_a_hub_tokenizer_our_tokens():
    """A gpt2-like tokenizer (BPE, one special token, no pad, no template) gets our pad, EOS, role
    markers and chat template, the model's embeddings and config follow, and a second call changes
    nothing."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer, bpe.decoder = (
        pre_tokenizers.ByteLevel(add_prefix_space=False),
        decoders.ByteLevel(),
    )
    bpe.train_from_iterator(
        ["the capital of a country"] * 20,
        trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<|endoftext|>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
    model = GPT2LMHeadModel(
        GPT2Config(vocab_size=len(tok), n_layer=1, n_head=2, n_embd=16, n_positions=32)
    )
    ready_tokenizer(tok, model)
    assert tok.eos_token == END and tok.pad_token == PAD and tok.pad_token_id != tok.eos_token_id
    assert all(t in tok.get_vocab() for t in ROLES.values()) and tok.chat_template == CHAT_TEMPLATE
    assert model.get_input_embeddings().num_embeddings == len(tok)
    assert (model.config.eos_token_id, model.config.pad_token_id) == (
        tok.eos_token_id,
        tok.pad_token_id,
    )
    before = len(tok)
    ready_tokenizer(tok, model)
    assert len(tok) == before
