"""What the benchmarks ran on."""

import os
import platform

import torch

# Instruction-set flags that decide which CPU kernels (and whether bf16 or AMX) torch can use.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_model_and_flags() -> tuple:
    """(model name, the CPU_FLAGS it has) from /proc/cpuinfo; the platform's processor string elsewhere."""
    cpu, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for ln in fh:
                key, _, value = ln.partition(":")
                if key.strip() == "model name":
                    cpu = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    return cpu, [f for f in CPU_FLAGS if f in flags]


def machine_info() -> dict:
    cpu, flags = cpu_model_and_flags()
    return {
        "cpu": cpu, "cpu_flags": flags, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(), "torch": str(torch.__version__), "platform": platform.platform(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
