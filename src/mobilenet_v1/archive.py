"""Image folders packed in tar archives, read in place: a split's class folders as one ``.tar`` file
(``train.tar`` holding ``<class>/.../<image>``), or ImageNet's own training archive, a tar of one tar a
class (``ILSVRC2012_img_train.tar``: ``n01440764.tar`` holding ``n01440764_10026.JPEG``, ...).

Nothing is extracted. The archive's headers are walked once per process (:func:`archive_index`; the
walk seeks over the files' bytes), and each image is read at its offset, so a data set of a million
files is one file on the disk. Each image is named as its path would be once extracted beside the
archive (``data/train.tar/n01440764/n01440764_10026.JPEG``): the labels, the order of the samples, the
images ``val_split`` holds out and the names in error messages are those of the extracted folder.
"""
import functools
import os
import tarfile
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

ARCHIVE_SUFFIX = ".tar"
# A compressed archive's first bytes: its members cannot be read at an offset without decompressing all before.
COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


class ArchiveError(ValueError):
    """An archive that cannot be read as a split of class folders; the message names it."""


class ArchiveMember(str):
    """An image inside an archive: the string is the path it would have extracted beside the archive
    (what messages and ``val_split`` use); ``archive``, ``offset`` and ``size`` say where its bytes are."""

    def __new__(cls, name: str, archive: str, offset: int, size: int) -> "ArchiveMember":
        member = super().__new__(cls, name)
        member.archive, member.offset, member.size = archive, offset, size
        return member

    def __reduce__(self):
        return ArchiveMember, (str(self), self.archive, self.offset, self.size)


class ClassFiles(NamedTuple):
    """One class's images in an archive, sorted as :func:`data.image_files_under` sorts a folder's: their
    names (extracted paths under the archive), and where their bytes are."""
    names: List[str]
    offsets: np.ndarray
    sizes: np.ndarray


class ArchiveImages(Sequence):
    """``(ArchiveMember, label)`` samples of one archive, held as arrays rather than a million objects
    (an ``ArchiveMember`` is made when an item is asked for); loader workers get them as they are."""

    def __init__(self, archive: str, names: Sequence[str], offsets: Sequence[int], sizes: Sequence[int],
                 labels: Sequence[int]):
        self.archive = archive
        self.names = list(names)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return (ArchiveMember(self.names[i], self.archive, int(self.offsets[i]), int(self.sizes[i])),
                int(self.labels[i]))


def is_archive(path: str) -> bool:
    """Whether ``path`` is a file named ``*.tar`` (or a link to one): a split of class folders, packed."""
    return os.fspath(path).lower().endswith(ARCHIVE_SUFFIX) and os.path.isfile(path)


def _is_image(name: str, extensions: Tuple[str, ...]) -> bool:
    parts = name.split("/")
    return not any(p.startswith(".") for p in parts) and parts[-1].lower().endswith(extensions)


def _open(path: str) -> tarfile.TarFile:
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as e:
        raise ArchiveError(f"archive {path}: cannot be read: {e.strerror or e}") from None
    for magic, kind in COMPRESSED:
        if head.startswith(magic):
            raise ArchiveError(f"archive {path} is compressed ({kind}): its images are read in place, at their "
                               f"offsets, which needs an uncompressed tar; decompress it to a .tar "
                               f"(or extract it to a folder)")
    try:
        return tarfile.open(path, mode="r:")
    except tarfile.TarError as e:
        raise ArchiveError(f"archive {path}: not a tar archive ({e})") from None


def _clean(name: str) -> str:
    while name.startswith("./"):  # tar cf x.tar . writes ./<class>/...
        name = name[2:]
    return name


def _members(tf: tarfile.TarFile, path: str):
    """The archive's members one by one, none kept: a TarFile keeps every header it has read, which for
    ImageNet's 1.28 million files would be gigabytes."""
    while True:
        try:
            member = tf.next()
        except tarfile.TarError as e:
            raise ArchiveError(f"archive {path}: its headers cannot be read ({e}); cut short? copy it again, "
                               f"or make it anew") from None
        tf.members = []
        if member is None:
            # tarfile ends its listing quietly at a header cut short or damaged; an archive ends with zeros.
            tf.fileobj.seek(tf.offset)
            if tf.fileobj.read(tarfile.BLOCKSIZE) != bytes(tarfile.BLOCKSIZE):
                raise ArchiveError(f"archive {path}: no tar header nor end-of-archive block at byte {tf.offset}; "
                                   f"cut short? copy it again, or make it anew")
            return
        yield member


def _walk(path: str, extensions: Tuple[str, ...]) -> List[Tuple[str, int, int]]:
    """(name inside the archive, offset, size) of each image file, with a class tar's files named
    ``<class>/<file>`` (the class tar's name without ``.tar``)."""
    found = []
    with _open(path) as tf:
        for member in _members(tf, path):
            name = _clean(member.name)
            if not member.isfile():
                continue
            if "/" not in name and name.lower().endswith(ARCHIVE_SUFFIX) and not name.startswith("."):
                found += _walk_class_tar(tf, path, name[:-len(ARCHIVE_SUFFIX)], member, extensions)
            elif _is_image(name, extensions):
                found.append((name, member.offset_data, member.size))
    return found


def _walk_class_tar(outer: tarfile.TarFile, path: str, cls: str, member: tarfile.TarInfo,
                    extensions: Tuple[str, ...]) -> List[Tuple[str, int, int]]:
    end = member.offset_data + member.size
    outer.fileobj.seek(member.offset_data)
    try:
        inner = tarfile.open(fileobj=outer.fileobj, mode="r:")  # its offsets are the outer file's
    except tarfile.TarError as e:
        raise ArchiveError(f"archive {path}: its class archive {member.name} is not a tar archive ({e})") from None
    found = []
    for m in _members(inner, f"{path}/{member.name}"):
        if m.offset >= end:  # a class archive without its end blocks: the next header is the outer one's
            break
        if m.offset_data + m.size > end:
            raise ArchiveError(f"archive {path}: its class archive {member.name} runs past its own end")
        name = _clean(m.name)
        if m.isfile() and _is_image(name, extensions):
            found.append((f"{cls}/{name}", m.offset_data, m.size))
    return found  # the outer TarFile seeks back to its own next header


def _wrapper(names: Sequence[str], path: str, splits: Sequence[str]) -> str:
    """The one folder all images are in, where it wraps the class folders rather than being a class:
    the archive's own name (``train.tar`` made by ``tar cf train.tar train``) or a split's name."""
    tops = {n.split("/", 1)[0] for n in names}
    if len(tops) != 1 or not any(n.count("/") >= 2 for n in names):  # a class's files alone: not wrapped
        return ""
    top = tops.pop()
    stem = os.path.basename(path)[:-len(ARCHIVE_SUFFIX)]
    return top if top in (stem,) + tuple(splits) else ""


@functools.lru_cache(maxsize=16)
def _index(path: str, identity: Tuple[int, int, int, int], extensions: Tuple[str, ...],
           splits: Tuple[str, ...]) -> Dict[str, ClassFiles]:
    found = _walk(path, extensions)
    wrapper = _wrapper([n for n, _, _ in found], path, splits)
    if wrapper:
        found = [(n[len(wrapper) + 1:], o, s) for n, o, s in found]
    by_class: Dict[str, List[Tuple[str, int, int]]] = {}
    for name, offset, size in found:
        if "/" in name:  # files beside the class folders are not a class's, as in a folder
            by_class.setdefault(name.split("/", 1)[0], []).append((name, offset, size))
    in_splits = sorted(c for c in by_class if c in splits)
    if len(in_splits) > 1:
        raise ArchiveError(f"archive {path} holds the splits {', '.join(s + '/' for s in in_splits)}: an archive "
                           f"is read as one split of class folders; pack each split as an archive of its own "
                           f"({', '.join(s + ARCHIVE_SUFFIX for s in in_splits)}) beside each other")
    index = {}
    for cls in sorted(by_class):
        # Sorted as a folder walk sorts: by folder, then by name.
        files = sorted(by_class[cls], key=lambda f: (os.path.dirname(f[0]), os.path.basename(f[0])))
        index[cls] = ClassFiles([f"{path}/{n}" for n, _, _ in files], np.array([o for _, o, _ in files], np.int64),
                                np.array([s for _, _, s in files], np.int64))
    return index


def archive_index(path: str, extensions: Tuple[str, ...], splits: Tuple[str, ...] = ()) -> Dict[str, ClassFiles]:
    """The image files (by ``extensions``; hidden ones, ``.``-named, left out) of the archive at
    ``path``, by class in sorted order. A class is a top folder (``<class>/...``) or a class archive
    (``<class>.tar`` at the top); one folder wrapping them all, named as the archive or one of
    ``splits``, is passed through. An archive holding several of ``splits`` is refused. Walked once a
    process while the file stays as it is."""
    try:
        st = os.stat(path)
    except OSError as e:
        raise ArchiveError(f"archive {path}: cannot be read: {e.strerror or e}") from None
    return _index(path, (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns), tuple(extensions), tuple(splits))


def forget_indexes() -> None:
    """Drop the archives' listings kept in this process (the next :func:`archive_index` walks anew): for
    timing the walk."""
    _index.cache_clear()


def archive_images(path: str, extensions: Tuple[str, ...]) -> List[ArchiveMember]:
    """Every image file in the archive at ``path`` (class archives' included, as ``<class>/<file>``), in
    or out of class folders, sorted by folder then name, as a folder's files are listed."""
    found = _walk(path, tuple(extensions))
    found.sort(key=lambda f: (os.path.dirname(f[0]), os.path.basename(f[0])))
    return [ArchiveMember(f"{path}/{name}", path, offset, size) for name, offset, size in found]


def read_member(member: ArchiveMember) -> bytes:
    """The bytes of an image in an archive (the archive opened for this read, as a folder's file would
    be); an archive cut short before its end raises an OSError naming the image."""
    with open(member.archive, "rb") as f:
        f.seek(member.offset)
        data = f.read(member.size)
    if len(data) < member.size:
        raise OSError(0, f"the archive ends {member.size - len(data)} bytes before this file's end (cut short?)",
                      str(member))
    return data


def member_size(path: str) -> Optional[int]:
    """The size of an image file or archive member; None where it cannot be told."""
    if isinstance(path, ArchiveMember):
        return path.size
    try:
        return os.path.getsize(path)
    except OSError:
        return None
