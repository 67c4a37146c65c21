"""A few real tests that check what slurmrun hands to pytest."""
import csv
import os
import shutil
import subprocess
import time

import pytest
import tensorrt_llm


def test_wheel_path_is_the_installed_package(trtllm_wheel):
    assert trtllm_wheel is not None, "--trtllm-wheel was not passed"
    assert os.path.samefile(trtllm_wheel, os.path.dirname(tensorrt_llm.__file__))


def test_wheel_libs_lead_the_library_path():
    first = os.environ["LD_LIBRARY_PATH"].split(":")[0]
    assert os.path.samefile(first, tensorrt_llm.LIBS)


def test_coverage_config_names_the_wheel(coverage_config, trtllm_wheel):
    with open(coverage_config) as f:
        text = f.read()
    assert "---wheel_path---" not in text
    assert trtllm_wheel in text


def test_single_node_job_sees_no_mpi_or_slurm_variables():
    leaked = [n for n in os.environ if n.startswith(("PMI", "MPI", "OMPI", "SLURM")) and n != "SLURM_PROCID"]
    assert leaked == []


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_trusts_every_directory():
    out = subprocess.run(["git", "config", "--get-all", "safe.directory"], capture_output=True, text=True)
    assert "*" in out.stdout.split()


def test_perf_results(stage, rank):
    """Measures a small workload and records it as TensorRT-LLM's perf tests do."""
    start = time.perf_counter()
    total = sum(i * i for i in range(200_000))
    elapsed_ms = (time.perf_counter() - start) * 1000
    assert total > 0
    if rank != 0:
        return
    os.makedirs(stage, exist_ok=True)
    with open(os.path.join(stage, "perf_script_test_results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["perf_case_name", "network_name", "metric_type", "perf_metric", "threshold", "absolute_threshold"])
        w.writerow(["demo-sum-of-squares", "demo", "INFERENCE_TIME", f"{elapsed_ms:.3f}", "10", "1000"])
