"""Loader workers that die, crash or raise: one line that says so, and damaged files that are bad samples."""
import base64

import pytest
import torch

from mobilenet_v1 import transforms as T
from mobilenet_v1.runtime import error_line

# A 16x16 TIFF with a few bytes changed (found by mutating files): PIL's ImageFile.load raises TypeError on it
# ("'str' object cannot be interpreted as an integer"), which ended train, eval and predict with a traceback
# (predict then waited for its loader workers for ever) where any other unreadable file is a bad sample.
DAMAGED_TIFF = base64.b64decode(
    "SUkqAAgAAAAKAAABBAABAAAAEAAAAAEBBAABAAAAEAAAAAIBAwADAAAAhgAAAAMBAwABAAAAAQAAAAYBAwABAAAAAgAAABEBAgAB"
    "AAAAjAAAABUBAwABAAAAAwAAABYBBAABAAAAEAAAABcBBAABAAAAAAMAABwBAwABAAAAAQAAAAAAAAAIAAgACACiRAoEz+iauoru"
    "0ADaCLos3IpMawcfq6WcYf76rqWvYyK3hU974u5bkVKXVmPjOZ4V1Mg93w5VJnLLOg1nMheTTKsy8F0aoOxw839snv3xdcF+hshp"
    "u7XtHbns9gPc+vQl+OLRejvM60OJcO0KupwHtwTBguwQ1hFXbfaPQj3iOR9JlY3Ojklp0J/0XoyX2CVn6ArRadMCXRSmRbPwINwP"
    "YW18+MVORNzgglf9UC7gz6r07L7bPySqtipk6I+TMYaFFvqRAcX5llEvqzGTmfUSf70tYhC5FmTeeOjD6SASEd2hfimrUbV1gckX"
    "kzLOfPwu9cx6z5mn6BDUYVP9x3tr3xa0yctSyzlcaoocZwC92SOz0frXbPn4gMDpedyySsORF2MSeW1slR/urtLklAq1kdKHz/5Z"
    "K2PAcJYguUcw3I975RWxUyysXFTwMoIGKeHJjTiOA7W2pJsSPpJk/OsmlrEiT7blVzzRlXlBEgSTMPgbc2Q7vqS5FVmEbAox8CnZ"
    "0WN30q3VwbDo0S2+FmxlM+8YAVL8Q9MslfS2+pL61cbioVqGOcYrk4irwRyfaZywlbqEdkk6sbEx96uH1nx5QSe116xeko/uYirf"
    "5AwyosmaMB2BzzcTjDARxdFlSkZck4ZaoqyOYp+WVk2LnJthkPtt1hTf8EIDey73dfSZg9SmP+5wxX8uS5IkA27CnFK2if7F00Im"
    "Mm6CMcbdUIGXuCVHupDlcmdOO6VD20WrkKDkKyYfE4gqzQVfeDdaOEfsamKbqagVlLvKliEVUux45HXAe7RQ4kMBt6ynr5UdqgEu"
    "a2AebJ9gtDokvqptIqm/Ka9a6b9F7wYvPbqGdjjAHT/Nc9+ZyS9QYH540SzZ4hMCSmb3Esd5IV1hPktr9XXyBxAHqTiSylQ+uHkm"
    "Frvb44InOXPZpUXAb/pt1QO3ZX8y7TKPmNp204XztujwzB8fnUViLMLZIYNkyXa6kPlr+2kux0WQpDII+9Af2EE/xcHXIr53U7vX"
    "Uif86knPFug=")


@pytest.mark.parametrize("exif", [False, True])
def test_a_tiff_that_pil_fails_on_with_a_type_error_is_an_unreadable_image(exif):
    with pytest.raises(T.DecodeError, match="damaged.tif: not a readable image"):
        T.decode_rgb(torch.frombuffer(bytearray(DAMAGED_TIFF), dtype=torch.uint8), "damaged.tif", exif)


@pytest.mark.parametrize("text, said", [
    ("DataLoader worker (pid 6100) is killed by signal: Killed. ", "(pid 6100) was killed by signal: Killed (SIGKILL"),
    ("DataLoader worker (pid 6429) is killed by signal: Segmentation fault. ", "a crash while reading or decoding"),
    ("DataLoader worker (pid(s) 11705) exited unexpectedly", "(pid 11705) ended unexpectedly"),
    # PyTorch's own hint kept: a container's 64 MB /dev/shm, not a bad image (helper-375).
    ("DataLoader worker (pid 77) is killed by signal: Bus error. It is possible that dataloader's workers are out "
     "of shared memory.", "shared memory (/dev/shm) ran out"),
    ("DataLoader worker (pid 78) is killed by signal: Terminated. ", "sent by another process"),
    # (helper-376) torch's other wording of an exit; a closed terminal and a ulimit are no crash while decoding.
    ("DataLoader worker (pid 79) exited unexpectedly with exit code 1.", "(pid 79) ended unexpectedly"),
    ("DataLoader worker (pid 80) is killed by signal: Hangup. ", "the terminal or ssh session closed"),
    ("DataLoader worker (pid 81) is killed by signal: CPU time limit exceeded. ", "a resource limit"),
])
def test_a_loader_worker_that_died_is_one_line_with_what_to_do(text, said):
    line = error_line("train", RuntimeError(text))
    assert line is not None and said in line and "--num_workers" in line and "--resume auto" in line
    assert "--resume auto" not in error_line("eval", RuntimeError(text))


def test_a_workers_own_exception_is_still_a_traceback():
    assert error_line("train", RuntimeError("Caught RuntimeError in DataLoader worker process 0.")) is None


def test_an_error_of_our_own_conversion_is_not_a_damaged_file(monkeypatch):
    """Only what PIL raises on a file makes it unreadable: a failed allocation in our own conversion (torch's is a
    RuntimeError, not a MemoryError) went on as an unreadable image, skipped, using up max_bad_samples, where it
    is out of memory (helper-375)."""
    import io

    import numpy as np
    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png, format="PNG")
    data = torch.frombuffer(bytearray(png.getvalue()), dtype=torch.uint8)

    def no_memory(im, exif=False):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(T, "pil_rgb", no_memory)
    with pytest.raises(RuntimeError, match="can't allocate memory"):
        T._decode_with_pil(data, "photo.png")


def test_what_pil_raises_through_the_standard_library_is_a_damaged_file():
    """A TIFF whose XMP tag (700) is ASCII text, not bytes: PIL's getexif, called as it loads, passes it to re.search,
    whose TypeError's innermost frame is re's, not PIL's; it is an unreadable file, not a traceback (helper-376)."""
    import io

    import numpy as np
    from PIL import Image, TiffImagePlugin

    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[700] = "<x/>"
    info.tagtype[700] = 2  # ASCII
    tif = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tif, format="TIFF", tiffinfo=info)
    data = torch.frombuffer(bytearray(tif.getvalue()), dtype=torch.uint8)
    for exif in (False, True):
        with pytest.raises(T.DecodeError, match="photo.tif: not a readable image"):
            T.decode_rgb(data, "photo.tif", exif=exif)


@pytest.fixture
def quick_stall_notes(monkeypatch):
    """Stall notes after 0.4 s of waiting for a batch, looked at every 0.05 s (120 s and 1 s in a run)."""
    from mobilenet_v1 import stalls

    monkeypatch.setattr(stalls, "STALL_NOTE_SECONDS", 0.4)
    monkeypatch.setattr(stalls, "STALL_CHECK_SECONDS", 0.05)


def slow_for(monkeypatch, name: str, seconds: float) -> None:
    """The loaders' file reading made to take ``seconds`` for the file called ``name`` (a read that does not
    return at once: a network file system that stopped answering), in this process and in workers forked after."""
    import time

    from mobilenet_v1 import data

    read = data.file_bytes

    def slow(path):
        if path.endswith(name):
            time.sleep(seconds)
        return read(path)
    monkeypatch.setattr(data, "file_bytes", slow)


@pytest.mark.parametrize("pipeline, workers", [("cpu", 0), ("cpu", 1), ("gpu", 1)])
def test_a_pass_that_waits_long_for_a_batch_says_what_its_workers_do(tmp_path, capsys, monkeypatch, pipeline, workers,
                                                                       quick_stall_notes):
    """A worker whose read does not return held a pass for ever without a word (PyTorch waits with no time-out,
    helper-373): a wait past STALL_NOTE_SECONDS is said, with each worker's pid and process state (one sleeping in
    its read: S), again as it doubles, and the pass goes on when the batch comes; quick batches say nothing."""
    import re

    from conftest import class_folders_of_photos
    from mobilenet_v1 import data, stalls

    loader_class = data.ImageFolderLoader if pipeline == "cpu" else data.BatchedImageLoader  # on the CPU here
    root = class_folders_of_photos(tmp_path / "photos", classes=("a", "b"), per_class=2)
    read = data.file_bytes
    slow_for(monkeypatch, "b/1.jpg", 2.0)
    with loader_class(str(root), batch_size=2, train=False, image_size=16, device=torch.device("cpu"), seed=0,
                           num_workers=workers) as loader:
        batches = [y.tolist() for _, y in loader]
        pids = [p.pid for p in loader.loader._iterator._workers] if workers else []
    assert batches == [[0, 0], [1, 1]]  # the pass went on when the slow file came
    err = capsys.readouterr().err
    notes = [line for line in err.splitlines() if line.startswith("note: no batch from")]
    # At 0.4, 0.8 and 1.6 s of the 2 s wait (and of a slow start of the worker on a loaded machine); a note at
    # each look, not doubling, would be 40.
    assert 1 <= len(notes) <= 6, err
    assert all(line.startswith(f"note: no batch from the loader of {root} for ") for line in notes), notes
    assert all(0.4 <= float(re.search(r" for ([0-9.]+) s;", line)[1]) < 10 for line in notes), notes
    if workers:
        assert any(re.search(rf"its loader worker's state: pid {pids[0]} S \(sleeping(: \w+)?\)\. It waits on;",
                             line) for line in notes), notes
    else:
        assert all("it reads the files in this process (num_workers 0); a read that does not return or is slow" in line
                   for line in notes), notes
    monkeypatch.setattr(data, "file_bytes", read)
    monkeypatch.setattr(stalls, "STALL_NOTE_SECONDS", 5.0)  # a worker's start on a loaded machine is no stall
    with loader_class(str(root), batch_size=2, train=False, image_size=16, device=torch.device("cpu"), seed=0,
                           num_workers=workers) as loader:
        assert len(list(loader)) == 2
    assert "no batch from" not in capsys.readouterr().err


def test_a_stall_note_names_a_worker_in_a_read_that_has_not_returned_and_a_stopped_one():
    """The states a stalled pass is most often held in: D (a read of a network file system that stopped answering)
    and T (SIGSTOP), each with what it means; a process with no /proc entry is said as such."""
    from mobilenet_v1 import stalls

    class Worker:
        def __init__(self, pid):
            self.pid = pid

    class Workers:
        _workers = [Worker(11), Worker(12), Worker(13)]

    states = {11: "D (in a read or write that has not returned: rpc_wait_bit_killable)", 12: "T (stopped)",
              13: "state unknown"}
    original = stalls.process_state
    try:
        stalls.process_state = states.__getitem__
        note = stalls.stall_note(Workers(), "the loader of /nfs/train", 250.4)
    finally:
        stalls.process_state = original
    assert note == ("note: no batch from the loader of /nfs/train for 250 s; its 3 loader workers' states: pid 11 D "
                    "(in a read or write that has not returned: rpc_wait_bit_killable), pid 12 T (stopped), pid 13 "
                    "state unknown; a read that does not return (a network file system, a failing disk) or a worker "
                    "stopped (SIGSTOP: `kill -CONT PID` continues it) holds the pass. It waits on; Ctrl-C or SIGTERM "
                    "stops it (a training run of one process whose own loop waits here saves the steps it took; others "
                    "after the grace, saving nothing past their newest checkpoint)")
    assert stalls.process_state(2 ** 22 + 12345) == "state unknown"  # past Linux's largest pid


def test_predicts_loader_says_a_long_wait_too(tmp_path, capsys, monkeypatch, quick_stall_notes):
    from conftest import class_folders_of_photos
    from mobilenet_v1.predict import Predictor

    class Fixed(torch.nn.Module):
        def forward(self, x):
            return torch.tensor([[1.0, 3.0]]).expand(x.shape[0], -1)

    root = class_folders_of_photos(tmp_path / "photos", classes=("a",), per_class=2)
    slow_for(monkeypatch, "a/1.jpg", 1.0)
    predictor = Predictor(model=Fixed(), source="fixed", dataset="imagenet2012", image_size=16, names=["x", "y"])
    results = predictor.top_k([str(root / "a" / "0.jpg"), str(root / "a" / "1.jpg")], k=1, batch_size=1,
                              num_workers=0)
    assert [r["top_k"][0]["label"] for r in results] == ["y", "y"]
    assert "note: no batch from predict's loader for " in capsys.readouterr().err


STALL_IN_A_CYCLE = r'''
import faulthandler, gc
from mobilenet_v1 import stalls

faulthandler.dump_traceback_later(20, exit=True)

class Collecting(dict):
    """_waits, with a collection at each store: where the garbage collector may run, under stalls' lock."""
    def __setitem__(self, key, value):
        gc.collect()
        super().__setitem__(key, value)

def left_in_a_cycle():
    g = stalls.watched(iter(range(10)), "the first loader")
    next(g)                      # under way, suspended at its yield
    box = [g]; box.append(box)   # a cycle, as frame -> exception -> traceback -> frame

gc.disable()
left_in_a_cycle()
stalls._waits = Collecting()
assert list(stalls.watched(iter(range(3)), "the second loader")) == [0, 1, 2]
assert stalls._passes == 0 and stalls._watcher is None
print("done")
'''


def test_a_left_pass_finalised_by_the_garbage_collector_under_the_lock_does_not_deadlock():
    """A watched pass left suspended in a reference cycle (a traceback kept) is finalised at whatever allocation sets
    off a collection; one made under stalls' lock ran its finally's _end_pass, which took the same Lock: the process
    hung for good (helper-381)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", STALL_IN_A_CYCLE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "done" in done.stdout, done.stderr[-3000:]
