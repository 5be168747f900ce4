"""Run by tests/test_distributed.py under torchrun (not collected by pytest): ``mobilenet-v1 eval`` of a
run folder while a newer checkpoint lands in it, between rank 0's look at the folder and rank 1's.

Rank 0 notes (the file ``MARK``) when it has listed the folder to choose (a listing after it joined the
process group: eval's configuration looks at the file earlier, for its data set); rank 1, once in the group, waits
for that, copies ``NEWER`` into ``FOLDER`` as ``NEWER_NAME`` and only then goes on with its evaluation.
argv: the options of ``mobilenet-v1 eval``.
"""
import os
import shutil
import sys
import time

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, distributed

if __name__ == "__main__":
    mark = os.environ["MARK"]
    if os.environ["RANK"] == "0":
        listed, joined = ckpt_io.list_checkpoints, distributed.setup
        grouped = []

        def join(*args, **kwargs):
            ctx = joined(*args, **kwargs)
            grouped.append(True)
            return ctx

        def list_and_mark(folder):
            found = listed(folder)
            if found and grouped:
                with open(mark, "w", encoding="utf-8") as f:
                    f.write(found[-1][1])
            return found

        ckpt_io.list_checkpoints, distributed.setup = list_and_mark, join
    else:
        joined = distributed.setup

        def join_then_add_a_checkpoint(*args, **kwargs):
            ctx = joined(*args, **kwargs)
            deadline = time.monotonic() + 60
            while not os.path.exists(mark) and time.monotonic() < deadline:
                time.sleep(0.01)
            shutil.copyfile(os.environ["NEWER"], os.path.join(os.environ["FOLDER"], os.environ["NEWER_NAME"]))
            return ctx

        distributed.setup = join_then_add_a_checkpoint
    sys.exit(cli.main(["eval", *sys.argv[1:]]))
