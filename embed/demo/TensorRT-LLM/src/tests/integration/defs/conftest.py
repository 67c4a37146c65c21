"""Options the miniature integration suite shares with TensorRT-LLM's defs/conftest.py."""
import os

import pytest


def pytest_addoption(parser):
    parser.addoption("--trtllm-wheel", default=None, help="tensorrt_llm package directory of the installed wheel")
    parser.addoption("--test-prefix", default="", help="stage name; perf results go to <prefix>/")
    parser.addoption("--coverage-config", default=None, help="coverage config rewritten by rank 0")


@pytest.fixture
def trtllm_wheel(request):
    return request.config.getoption("--trtllm-wheel")


@pytest.fixture
def stage(request):
    return request.config.getoption("--test-prefix")


@pytest.fixture
def coverage_config(request):
    return request.config.getoption("--coverage-config")


@pytest.fixture
def rank():
    return int(os.environ.get("SLURM_PROCID", "0"))
