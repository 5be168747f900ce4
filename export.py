"""The seed's entry point: ``python export.py --ckpt_file CKPT --file_name NAME --file_format ONNX``."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from mobilenet_v1.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["export"] + sys.argv[1:]))
