"""Run one lab script in this process, as `python <script> <args>` would, and record what the GPU
check's table needs when the process ends: peak GPU memory, and the tokens the Trainers trained on
per second.

    python code/gpu/probe.py STATS.json code/labs/pretrain.py --output_dir runs/p --preset gpu \
        --max_steps 20

- Peak GPU memory: `torch.cuda.max_memory_allocated()` at exit (null without CUDA).
- `Dataset.map` calls, by description, so a test can see how often a lab tokenized its data.
- Tokens: every `Trainer.training_step` (SFT, reward, DPO, pretraining and their subclasses) counts
  the non-padding tokens of its batch (GRPO's: prompts and sampled replies, as its
  `_prepare_inputs` builds them); seconds are the wall time spent inside `Trainer.train`. Labs
  that train without a `Trainer` (PPO's own loop, mechanics, memory, parallelism) report no
  tokens/s rather than a wrong one.
"""

import atexit
import json
import runpy
import sys
import time
from pathlib import Path

counts = {"train_tokens": 0, "train_seconds": 0.0, "dataset_maps": {}}


# --8<-- [start:tokens]
def batch_tokens(inputs: dict) -> int:
    """Non-padding tokens of a training batch: `*input_ids` under their attention masks, or
    GRPO-style `prompt_ids`/`completion_ids` under `prompt_mask`/`completion_mask`."""
    total = 0
    for key, ids in inputs.items():
        if hasattr(ids, "numel") and (
            key.endswith("input_ids") or key in ("prompt_ids", "completion_ids")
        ):
            mask_key = (
                key.replace("input_ids", "attention_mask")
                if key.endswith("input_ids")
                else key[:-4] + "_mask"
            )
            mask = inputs.get(mask_key)
            total += int(mask.sum()) if mask is not None else ids.numel()
    return total


def patch_trainer() -> None:
    from transformers import Trainer

    step, train = Trainer.training_step, Trainer.train

    def training_step(self, model, inputs, *args, **kwargs):
        if isinstance(inputs, dict):
            counts["train_tokens"] += batch_tokens(inputs)
            return step(self, model, inputs, *args, **kwargs)
        # GRPO gets raw prompt rows: its `_prepare_inputs` samples the replies and builds the batch
        prepare = self._prepare_inputs

        def counted(batch):
            out = prepare(batch)
            counts["train_tokens"] += batch_tokens(out)
            return out

        self._prepare_inputs = counted
        try:
            return step(self, model, inputs, *args, **kwargs)
        finally:
            del self._prepare_inputs  # the class's method again

    def timed_train(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return train(self, *args, **kwargs)
        finally:
            counts["train_seconds"] += time.perf_counter() - start

    Trainer.training_step, Trainer.train = training_step, timed_train


# --8<-- [end:tokens]


def patch_map() -> None:
    """Count `Dataset.map` calls by their description ("Tokenizing train dataset", ...): the tests
    check that a sweep tokenizes its data once."""
    from datasets import Dataset

    original = Dataset.map

    def counted_map(self, *args, **kwargs):
        desc = kwargs.get("desc") or "map"
        counts["dataset_maps"][desc] = counts["dataset_maps"].get(desc, 0) + 1
        return original(self, *args, **kwargs)

    Dataset.map = counted_map


def write(path: str) -> None:
    torch = sys.modules.get("torch")
    cuda = torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()
    stats = dict(counts, peak_gpu_bytes=torch.cuda.max_memory_allocated() if cuda else None)
    Path(path).write_text(json.dumps(stats))


def main() -> None:
    stats, script, *args = sys.argv[1:]
    atexit.register(write, stats)
    patch_trainer()
    patch_map()
    sys.argv = [script, *args]
    sys.path[0] = str(Path(script).resolve().parent)  # what `python <script>` puts first
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
