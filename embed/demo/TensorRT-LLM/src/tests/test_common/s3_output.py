"""Drains the tests' S3 output spool, like TensorRT-LLM's s3_output.py --drain-spool.

Usage: s3_output.py --drain-spool <jobWorkspace>
The miniature tree has no S3 endpoint: it names what is spooled under
<jobWorkspace>/s3_spool, uploads nothing and leaves the files in place.
"""
import argparse
import os


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--drain-spool", required=True, metavar="WORKSPACE")
    args = parser.parse_args()
    spool = os.path.join(args.drain_spool, "s3_spool")
    names = sorted(os.listdir(spool)) if os.path.isdir(spool) else []
    for name in names:
        print(f"s3_output: spooled {name} (no S3 endpoint in the demo)")


if __name__ == "__main__":
    main()
