"""Source tree copy of the miniature tensorrt_llm package (coverage maps it to the wheel)."""
__version__ = "0.0.0"
