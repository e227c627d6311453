"""Where a run is measured: the device the labs use, its precision, and the label results carry.

A lab trains and evaluates on the GPU when there is one (the `gpu` preset's setting), on the CPU
otherwise; Trainers use bf16 autocast on a bf16-capable GPU and fp32 elsewhere. Every results table
says which, so a number measured on a laptop CPU is never read as a GPU number, or the other way
round.
"""

import os

import torch


def device() -> torch.device:
    """The CUDA device when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def bf16() -> bool:
    """Whether Trainers run in bf16 mixed precision here: only on a bf16-capable GPU."""
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def device_name(cpu: bool = False) -> str:
    """'1× NVIDIA H200' or '2-core CPU'; `cpu=True` names the CPU even when a GPU is present."""
    if torch.cuda.is_available() and not cpu:
        return f"{torch.cuda.device_count()}× {torch.cuda.get_device_name(0)}"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores}-core CPU"


# --8<-- [start:measured_on]
def measured_on(precision: str | None = None, cpu: bool = False) -> str:
    """The label for results: device and precision ('2-core CPU, fp32', '1× H200, bf16 autocast').

    `precision` defaults to what a Trainer uses here (bf16 autocast on a bf16-capable GPU, else
    fp32)."""
    if precision is None:
        precision = "bf16 autocast" if bf16() and not cpu else "fp32"
    return f"{device_name(cpu)}, {precision}"


# --8<-- [end:measured_on]


def caption(precision: str | None = None, cpu: bool = False) -> str:
    """A line to put under a results table: 'Measured on <device>, <precision>.'"""
    return f"\nMeasured on {measured_on(precision, cpu)}.\n"
