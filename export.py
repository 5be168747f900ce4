"""The seed's entry point: ``python export.py --ckpt_file CKPT --file_name NAME --file_format ONNX``."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from mobilenet_v1.cli import main  # noqa: E402

if __name__ == "__main__":
    # main() reads the command line itself, as for `mobilenet-v1 export`: an argv handed to it is a Python caller's,
    # whose BrokenPipeError, Ctrl-C and closed stdout are the caller's to meet (`python export.py ... | head`
    # ended in "error: [Errno 32] Broken pipe", status 1).
    sys.argv.insert(1, "export")
    sys.exit(main())
