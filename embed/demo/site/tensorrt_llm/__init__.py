"""Miniature installed tensorrt_llm package for the slurmrun demo."""
import os

__version__ = "0.0.0"
LIBS = os.path.join(os.path.dirname(__file__), "libs")
