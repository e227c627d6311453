"""Every lab's `--preset gpu`, run on a CPU against the tiny stand-in Hub: the other half of labs.

The other half is in test_gpu_presets_1.py, so that make test's two workers share the labs (see
presets.py). Each run passes only step and size overrides (code/gpu/check.py), and is cached per
code fingerprint. Cost: about 55 CPU seconds when nothing is cached (mechanics, parallelism,
reward, chat_template, forgetting).
"""

import pytest

from gpu.presets import assert_gpu_preset_runs, half


@pytest.mark.parametrize("lab", half(1))
def test_gpu_preset_runs(lab, gpu_check, lab_metrics):
    assert_gpu_preset_runs(gpu_check, lab, lab_metrics)
