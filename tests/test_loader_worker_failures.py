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
