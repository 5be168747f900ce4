"""Image folders packed in tar archives, read in place: a split's class folders as one ``.tar`` file
(``train.tar`` holding ``<class>/.../<image>``), or ImageNet's own training archive, a tar of one tar a
class (``ILSVRC2012_img_train.tar``: ``n01440764.tar`` holding ``n01440764_10026.JPEG``, ...).

Nothing is extracted. The archive's headers are walked once per process (:func:`archive_index`; the
walk seeks over the files' bytes), and each image is read at its offset, so a data set of a million
files is one file on the disk. Each image is named as its path would be once extracted beside the
archive (``data/train.tar/n01440764/n01440764_10026.JPEG``): the labels, the order of the samples, the
images ``val_split`` holds out and the names in error messages are those of the extracted folder.
"""
import bisect
import contextlib
import functools
import glob
import hashlib
import operator
import os
import posixpath
import re
import secrets
import sys
import tarfile
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Set, Tuple, Union

import numpy as np

ARCHIVE_SUFFIX = ".tar"
# Compressed archives, by name and by their first bytes: their members cannot be read at an offset without
# decompressing everything before.
COMPRESSED_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar.zst", ".tzst")
COMPRESSED = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))


class ArchiveError(ValueError):
    """An archive that cannot be read as a split of class folders; the message names it."""


class ArchiveMember(str):
    """An image inside an archive: the string is the path it would have extracted beside the archive
    (what messages and ``val_split`` use); ``archive``, ``offset`` and ``size`` say where its bytes are."""

    def __new__(cls, name: str, archive: str, offset: int, size: int,
                version: Optional[Tuple[int, ...]] = None) -> "ArchiveMember":
        member = super().__new__(cls, name)
        member.archive, member.offset, member.size = archive, offset, size
        member.version = version  # the archive's (inode, size, mtime) as listed: its offsets are that file's
        return member

    def __reduce__(self):
        return ArchiveMember, (str(self), self.archive, self.offset, self.size, self.version)


class ClassFiles(NamedTuple):
    """One class's images in an archive, sorted as :func:`data.image_files_under` sorts a folder's: their
    names (extracted paths under the archive), and where their bytes are: the archive, at offsets."""
    names: List[str]
    offsets: np.ndarray
    sizes: np.ndarray
    archive: str
    version: Optional[Tuple[int, ...]] = None  # the archive's as listed (ArchiveMember.version)


def _positions(n: int, i: Any) -> Union[int, range]:
    """Index ``i`` (a number, negative from the end; or a slice) of a sequence of ``n`` as a place in it."""
    if isinstance(i, slice):
        return range(n)[i]
    i = operator.index(i)
    if not -n <= i < n:
        raise IndexError(f"index {i} out of range for {n} items")
    return i + n if i < 0 else i


_CODEC = ("utf-8", "surrogatepass")  # PathTable's bytes of a str: any str, lone surrogates included, round-trips


def as_indices(keep: Iterable[int]) -> np.ndarray:
    """Places in a sequence (a list, a range, an array) as a flat int64 array."""
    return np.asarray(keep if isinstance(keep, np.ndarray) else list(keep), dtype=np.int64).reshape(-1)


class PathTable(Sequence):
    """Strings (file paths, archive members' names) held as one buffer of their bytes and the offsets where each
    ends, not as a list of a million str objects: a loader worker (forked) that reads an item of a list writes
    its reference count, which copies the memory page the item is on into the worker, so that over an epoch
    every worker came to hold a copy of all of them (pytorch/pytorch#13246: 273 MB a worker for ImageNet's
    1.28 million paths, benchmarks/worker_memory.py). Here a read makes a new str and writes nothing shared.
    Each string is kept as its UTF-8 bytes with surrogates passed through (:data:`_CODEC`), so every str comes
    back as it went in: a name that is not UTF-8 (its bytes as surrogates, as os.listdir gives them), and an
    archive member's name that the file system's encoding cannot write (a PAX header's UTF-8 under an ASCII or
    Latin-1 locale, which ``os.fsencode`` refused: the archive, read by offsets, never needs the name's bytes)."""

    def __init__(self, strings: Iterable[str] = ()):
        encoded = [s.encode(*_CODEC) for s in strings]
        self.blob = b"".join(encoded)
        self.ends = np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, i: Any) -> Any:
        at = _positions(len(self.ends), i)
        if isinstance(at, range):
            return self.take(at)
        return self.blob[int(self.ends[at - 1]) if at else 0:int(self.ends[at])].decode(*_CODEC)

    def __iter__(self) -> Iterator[str]:
        start, blob = 0, self.blob
        for end in self.ends.tolist():
            yield blob[start:end].decode(*_CODEC)
            start = end

    def take(self, keep: Iterable[int]) -> "PathTable":
        """The strings at ``keep``, in that order."""
        keep = as_indices(keep)
        n = len(self.ends)
        if keep.size and not (-n <= int(keep.min()) and int(keep.max()) < n):  # -n - 1 wrapped to -1: the whole blob
            raise IndexError(f"index out of range for {n} strings")
        keep = np.where(keep < 0, keep + n, keep)
        ends = self.ends[keep]
        starts = np.where(keep > 0, self.ends[np.maximum(keep - 1, 0)], 0)
        table = PathTable()
        blob = self.blob
        table.blob = b"".join([blob[s:e] for s, e in zip(starts.tolist(), ends.tolist())])
        table.ends = np.cumsum(ends - starts, dtype=np.int64)
        return table

    def __eq__(self, other: Any) -> bool:
        if isinstance(other, PathTable):
            return self.blob == other.blob and np.array_equal(self.ends, other.ends)
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  (compared as a list is, by its strings: unhashable as a list)

    def __repr__(self) -> str:
        return f"PathTable({len(self)} strings, {len(self.blob)} bytes)"


class ArchiveImages(Sequence):
    """``(ArchiveMember, label)`` samples in archives (one split's, or a WebDataset split's shards: sample
    ``i`` is in ``archives[which[i]]``), held as arrays rather than a million objects (an
    ``ArchiveMember`` is made when an item is asked for; the names are a :class:`PathTable`); loader workers
    get them as they are, and reading them writes nothing the workers share."""

    def __init__(self, archives: Sequence[str], which: Sequence[int], names: Sequence[str],
                 offsets: Sequence[int], sizes: Sequence[int], labels: Sequence[int],
                 versions: Optional[Sequence[Optional[Tuple[int, ...]]]] = None):
        self.archives = list(archives)
        self.versions = list(versions) if versions is not None else [None] * len(self.archives)
        self.which = np.asarray(which, dtype=np.int32)
        self.names = names if isinstance(names, PathTable) else PathTable(names)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: Any) -> Any:
        at = _positions(len(self), i)
        if isinstance(at, range):
            return self.subset(at)
        return (ArchiveMember(self.names[at], self.archives[self.which[at]], int(self.offsets[at]),
                              int(self.sizes[at]), self.versions[self.which[at]]), int(self.labels[at]))

    def subset(self, keep: Sequence[int]) -> "ArchiveImages":
        """The samples at ``keep``, in that order."""
        keep = as_indices(keep)
        return ArchiveImages(self.archives, self.which[keep], self.names.take(keep),
                             self.offsets[keep], self.sizes[keep], self.labels[keep], self.versions)


def is_archive(path: str) -> bool:
    """Whether ``path`` is a file named ``*.tar`` (or a link to one): a split of class folders, packed."""
    return os.fspath(path).lower().endswith(ARCHIVE_SUFFIX) and os.path.isfile(path)


def _folder_order(entry: Tuple[str, ...]) -> Tuple[str, str]:
    """A sort key of ``(name, ...)`` entries: by folder, then by name, as a folder walk lists files."""
    return os.path.dirname(entry[0]), os.path.basename(entry[0])


# Folders that archivers, file systems and NAS boxes put beside data, never a class nor a class's images: macOS's
# zip metadata (its ._ files' copies), Synology's thumbnails (cat/@eaDir/1.jpg/SYNOFILE_THUMB_M.jpg: the held-out
# image's thumbnails trained on), ext4's lost+found, Windows' recycle bin and volume records (a disk's root given).
SYSTEM_FOLDERS = frozenset({"__MACOSX", "@eaDir", "lost+found", "$RECYCLE.BIN", "System Volume Information"})


def is_hidden_name(name: str) -> bool:
    """A file or folder name that is no data: hidden (``.git``, ``.ipynb_checkpoints``, macOS ``._*`` files) or
    one of :data:`SYSTEM_FOLDERS`."""
    return name.startswith(".") or name in SYSTEM_FOLDERS


def _is_image(name: str, extensions: Tuple[str, ...]) -> bool:
    parts = name.split("/")
    return not any(map(is_hidden_name, parts)) and parts[-1].lower().endswith(extensions)


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
    """The path a member's name extracts to: ``./`` and ``.`` parts dropped (``tar cf x.tar .`` writes
    ``./<class>/...``), as are empty ones (``cat//a.jpg``) and a leading ``/`` (``tar -P`` keeps it; tar
    strips it when extracting), so that one file has one name; ``..`` parts are kept (and such a member
    left out as hidden, as tar refuses to extract it). A trailing ``/`` (a folder's) is kept."""
    parts = name.split("/")
    kept = "/".join(p for p in parts if p not in ("", "."))
    return kept + "/" if kept and name.endswith("/") else kept


def _members(tf: tarfile.TarFile, path: str, inner: Optional[tarfile.TarInfo] = None):
    """The archive's members one by one, none kept: a TarFile keeps every header it has read, which for
    ImageNet's 1.28 million files would be gigabytes. ``inner``: the member of ``path`` that ``tf`` reads (a
    class archive inside it, whose offsets are the outer file's), which messages name and count bytes in."""
    what = f"archive {path}" + (f": its class archive {inner.name}" if inner is not None else "")
    start = inner.offset_data if inner is not None else 0
    while True:
        try:
            member = tf.next()
        except tarfile.TarError as e:
            size = inner.size if inner is not None else os.path.getsize(path)
            at = tf.offset - start
            where = (f"its next header is due at byte {at}, past its end ({size} bytes)" if at >= size
                     else f"at byte {at} of its {size} bytes")
            raise ArchiveError(f"{what}: its headers cannot be read ({e}): {where}; cut short? copy it again, "
                               f"or make it anew") from None
        tf.members = []
        if member is None:
            # tarfile ends its listing quietly at a header cut short or damaged; an archive ends with zeros.
            tf.fileobj.seek(tf.offset)
            if tf.fileobj.read(tarfile.BLOCKSIZE) != bytes(tarfile.BLOCKSIZE):
                raise ArchiveError(f"{what}: no tar header nor end-of-archive block at byte {tf.offset - start}; "
                                   f"cut short? copy it again, or make it anew")
            if inner is None:
                _check_tail(tf.fileobj, tf.offset, path)
            return
        yield member


def _check_tail(f, mark: int, path: str) -> None:
    """Refuse an archive that holds data after its end-of-archive block at ``mark``: tar pads an archive with
    zeros to its record size, so anything else there is images the walk would leave out without a word (a
    download preallocated and not yet finished, a piece of it zeros; a copy damaged; archives concatenated with
    cat, which tar too reads only the first of)."""
    size = os.fstat(f.fileno()).st_size
    f.seek(mark)
    at = mark
    while at < size:
        chunk = f.read(1 << 20)
        if not chunk:
            return
        if chunk.count(0) != len(chunk):
            data = at + next(i for i, b in enumerate(chunk) if b)
            raise ArchiveError(f"archive {path}: an end-of-archive block at byte {mark}, then data at byte {data} "
                               f"of its {size}: its images after it would be left out; a download not finished, "
                               f"a damaged copy or archives concatenated? copy it again, or make it anew")
        at += len(chunk)


class _Listing(NamedTuple):
    """What an archive holds: its files' (offset, size) by name (a link's: its target's; a link to nothing
    in the archive: offset -1), its folders' names (a class archive's ``<class>`` among them), and its links
    to folders (name: the folder it names; their files are listed under the link's name too)."""
    files: Dict[str, Tuple[int, int]]
    folders: Set[str]
    folder_links: Dict[str, str]
    version: Tuple[int, ...] = ()  # the archive's (inode, size, mtime) it was read from (:func:`_listing`)


def _walk(path: str) -> _Listing:
    """The files and folders of the archive at ``path``, names cleaned of ``./``, hidden ones (a part
    named ``.*``) left out, a class tar's files named ``<class>/<file>`` (the class tar's name without
    ``.tar``). A name stored twice is the last one's, as extracting leaves it; links (hard or symbolic)
    are their targets' bytes, a symbolic link to a folder that folder's files, as a folder walk follows
    them."""
    files: Dict[str, Tuple[int, int]] = {}
    folders: Set[str] = set()
    links: Dict[str, str] = {}
    with _open(path) as tf:
        for member in _members(tf, path):
            name = _clean(member.name).rstrip("/")
            if not name or any(map(is_hidden_name, name.split("/"))):
                continue
            if "/" not in name and name.lower().endswith(ARCHIVE_SUFFIX) and member.isfile():
                cls = name[:-len(ARCHIVE_SUFFIX)]
                folders.add(cls)
                _walk_class_tar(tf, path, cls, member, files, folders, links)
            else:
                _add(member, name, "", path, files, folders, links)
    return _Listing(files, folders, _resolve_links(links, files))


def _add(member: tarfile.TarInfo, name: str, prefix: str, path: str, files: Dict[str, Tuple[int, int]],
         folders: Set[str], links: Dict[str, str], stripped: str = "") -> None:
    """``stripped``: the folder taken off the front of the names of the archive ``member`` is in (a class archive's
    own, :func:`_walk_class_tar`), which a hard link's target names too."""
    if member.issparse():  # its bytes at offset_data are a map of the holes, not the file
        raise ArchiveError(f"archive {path}: {prefix}{name} is stored sparse (tar -S), which cannot be read in "
                           f"place; pack the archive without -S")
    if member.isdir():
        folders.add(prefix + name)
        return
    # A name stored again replaces what it was, a link not yet resolved included (the last copy is the one
    # extracting leaves).
    links.pop(prefix + name, None)
    if member.isfile():
        files[prefix + name] = (member.offset_data, member.size)
    elif member.islnk():  # a hard link: the name of an earlier member of the same archive
        target = _clean(member.linkname).rstrip("/")
        target = prefix + (target[len(stripped):] if stripped and target.startswith(stripped) else target)
        if target in files:  # that member's bytes as they are here: a copy stored later does not change them
            files[prefix + name] = files[target]
        else:
            links[prefix + name] = target
    elif member.issym() and member.linkname.startswith("/"):  # outside the archive: a file it cannot read
        files[prefix + name] = (-1, 0)
    elif member.issym():
        links[prefix + name] = posixpath.normpath(posixpath.join(posixpath.dirname(prefix + name),
                                                                 member.linkname))


def _followed(target: str, links: Dict[str, str]) -> str:
    """``target`` with the links to folders in its path (``links``, name to target) followed, as far as they go,
    as ``os.path.realpath`` gives an extracted folder; a cycle of links ends after as many steps as there are
    links (a link to nothing, then)."""
    for _ in range(len(links) + 1):
        parts = target.split("/")
        head = next(("/".join(parts[:k]) for k in range(len(parts), 0, -1) if "/".join(parts[:k]) in links), None)
        if head is None:
            break
        target = posixpath.normpath(links[head] + target[len(head):])
    return target


def _links_to_files_resolved(links: Dict[str, str], files: Dict[str, Tuple[int, int]]) -> List[Tuple[str, str]]:
    """:func:`_resolve_links`' first part: each link to a file given its bytes in ``files``, over passes until one
    resolves nothing more (a link to a link stored before it), then again with the targets followed through
    links to folders (``dog/x.png -> ../lynx/a.png``, ``lynx -> cat``), as extracting follows them. Returns the
    links left, to folders or to nothing, with their targets followed (``fox -> lynx -> cat``: ``cat``)."""
    pending = list(links.items())
    while pending:
        left = [(name, target) for name, target in pending if target not in files]
        for name, target in pending:
            if target in files:
                files[name] = files[target]
        if len(left) == len(pending):
            break
        pending = left
    by_name = dict(pending)
    pending = [(name, _followed(target, by_name)) for name, target in pending]
    for name, target in pending:
        if target in files:
            files[name] = files[target]
    return [(name, target) for name, target in pending if name not in files]


def _resolve_links(links: Dict[str, str], files: Dict[str, Tuple[int, int]]) -> Dict[str, str]:
    """Each link's name given its target's bytes (``files``), whatever the order the archive stores them in, as
    extracting it leaves them: links to files first, over passes until one resolves nothing more (a link to a
    link stored before it), then links to folders, each given the files under its target (a target reached
    through another link to a folder named by the folder it is, as extracting follows both; those under
    another folder link's name left out, so that a link back to a folder above it is read once); a link to
    a folder it lies in adds nothing (a folder walk has read that folder already, and reads it once); a
    link to nothing in the archive is a file that cannot be read (offset -1). Returns the links that gave
    files, by name: the folder each names."""
    pending = _links_to_files_resolved(links, files)
    folder_links = {name for name, _ in pending}

    def through_link(n: str) -> bool:
        parts = n.split("/")
        return any("/".join(parts[:k]) in folder_links for k in range(1, len(parts)))

    # The names a link can take files from (none under a folder link's name, so none that a link adds), sorted
    # once: each link's are then a range found by bisection, where a pass over every file for each link took
    # hours for a thousand class links among ImageNet's 1.28 million files. Taken in the files' own order.
    place = {n: i for i, n in enumerate(files)}
    readable = sorted(n for n in files if not through_link(n))
    to_folders = {}
    for name, target in pending:
        if name.startswith(target + "/"):  # a loop (cat/again -> .): a folder walk reads that folder once
            continue
        under = target + "/"
        # "0" follows "/": the names from target/ up to target0 are those starting with target/.
        found = readable[bisect.bisect_left(readable, under):bisect.bisect_left(readable, target + "0")]
        inside = [(n, files[n]) for n in sorted(found, key=place.__getitem__)]
        if inside:  # a link to a folder: its files, under the link's name
            files.update((name + "/" + n[len(under):], where) for n, where in inside)
            to_folders[name] = target
        else:
            if name not in place and not through_link(name):  # a link to nothing: a file a later link can hold
                bisect.insort(readable, name)
            place.setdefault(name, len(place))
            files[name] = (-1, 0)
    return to_folders


def _read_again(names: Sequence[str], folder_links: Dict[str, str], root: str) -> Set[str]:
    """Of ``names`` (files under the folder ``root``: a class folder, or "" for the whole archive), those that a
    walk of ``root`` does not read (:func:`data.image_files_under`): the files of a folder it reaches a second time
    through links to folders (``cat/best`` a link to ``cat/2023``), or above ``root`` through one. The walk goes
    in name order, a folder before what it holds, and reads each folder under the first name it reaches it by
    (``cat/2023``, not ``cat/best``)."""
    def real(folder: str) -> str:
        return _followed(folder, folder_links)

    def parent(name: str) -> str:
        return name.rsplit("/", 1)[0] if "/" in name else ""

    top = real(root).split("/") if root else []
    seen = {"/".join(top[:k]) for k in range(len(top))}  # the folders above root, the archive's top among them
    folders = {root}
    depth = len(root.split("/")) if root else 1
    for name in names:
        parts = name.split("/")
        folders.update("/".join(parts[:k]) for k in range(depth, len(parts)))
    skipped: Set[str] = set()
    for folder in sorted(folders, key=lambda f: f.split("/") if f else []):  # os.walk's order, names sorted
        if folder != root and parent(folder) in skipped or real(folder) in seen:
            skipped.add(folder)
        else:
            seen.add(real(folder))
    return {n for n in names if parent(n) in skipped}


def _walk_class_tar(outer: tarfile.TarFile, path: str, cls: str, member: tarfile.TarInfo,
                    files: Dict[str, Tuple[int, int]], folders: Set[str], links: Dict[str, str]) -> None:
    end = member.offset_data + member.size
    size = os.path.getsize(path)
    if end > size:
        raise ArchiveError(f"archive {path}: its class archive {member.name} runs past the archive's end ({size} "
                           f"bytes): cut short? copy it again, or make it anew")
    outer.fileobj.seek(member.offset_data)
    head = outer.fileobj.read(6)
    for magic, kind in COMPRESSED:
        if head.startswith(magic):
            raise ArchiveError(f"archive {path}: its class archive {member.name} is compressed ({kind}), which "
                               f"cannot be read in place; decompress it to a .tar inside the archive")
    cut = (f"archive {path}: its class archive {member.name} ends without a tar's end-of-archive block: cut short? "
           f"make it anew")
    if member.size % tarfile.BLOCKSIZE:  # a tar is whole blocks
        raise ArchiveError(cut)
    outer.fileobj.seek(member.offset_data)
    try:
        inner = tarfile.open(fileobj=outer.fileobj, mode="r:")  # its offsets are the outer file's
    except tarfile.TarError as e:
        raise ArchiveError(f"archive {path}: its class archive {member.name} is not a tar archive ({e})") from None
    found = []
    for m in _members(inner, path, member):
        if m.offset >= end:  # past its end, the outer archive's next header: it was cut short before it was packed,
            raise ArchiveError(cut)  # its last images lost without a word
        if m.offset_data + m.size > end:
            raise ArchiveError(f"archive {path}: its class archive {member.name} runs past its own end")
        name = _clean(m.name).rstrip("/")
        if name and not any(map(is_hidden_name, name.split("/"))):
            found.append((m, name))
    # Packed with its folder (tar cf n01.tar n01): its images are <cls>/... as extracted beside the others, not
    # <cls>/<cls>/..., which val_split's choice hashes (the held-out images were others than the folder's).
    stripped = ""
    if found and all(name == cls or name.startswith(cls + "/") for _, name in found):
        stripped = cls + "/"
        found = [(m, name[len(stripped):]) for m, name in found if name != cls]
    for m, name in found:
        _add(m, name, cls + "/", path, files, folders, links, stripped)
    if inner.offset >= end:  # its end-of-archive block the outer archive's (the last member)
        raise ArchiveError(cut)
    # the outer TarFile seeks back to its own next header


def _wrappers(names: Set[str], folders: Set[str], path: str, splits: Sequence[str]) -> str:
    """The folders, one in another, that wrap all of ``names`` rather than being classes: each named as
    the archive (``train.tar`` made by ``tar cf train.tar train``) and holding folders (``cat.tar`` holding
    ``cat/*.jpg`` is the class cat), or named as a split (a split's images not in class folders too, as
    ``tar cf val.tar val`` packs ImageNet's flat validation folder); "" for none, else their path with a
    trailing ``/``."""
    stem = os.path.basename(os.fspath(path))[:-len(ARCHIVE_SUFFIX)]
    prefix = ""
    while True:
        rest = [n[len(prefix):] for n in names if n.startswith(prefix) and len(n) > len(prefix)]
        tops = {n.split("/", 1)[0] for n in rest}
        if len(tops) != 1:
            return prefix
        top = tops.pop()
        inside = [n[len(top) + 1:] for n in rest if n.startswith(top + "/")]
        holds_folders = any("/" in n or prefix + top + "/" + n in folders for n in inside)
        # A split's folder of images alone is a flat split (read with eval_labels), as once extracted: read as
        # the one class "val", it was labelled 0 throughout, or named a class the model did not know.
        if not (top in splits or top == stem and holds_folders):
            return prefix
        prefix += top + "/"


# Where listings are kept between processes (:func:`cache_folder`); the version changes with their layout or
# with what a listing holds (2: links resolved in any stored order, absolute links listed as unreadable; 3: names
# cleaned of a leading /, . and empty parts, links to a folder they lie in adding nothing; 4: links to folders kept;
# 5: system folders left out, is_hidden_name; 6: a class archive inside packed with its folder named as extracted;
# 7: its hard links' targets too; 8: made only of an archive with nothing after its end, _check_tail; 9: links
# through links to folders followed, as extracting follows them).
CACHE_ENV = "MOBILENET_V1_CACHE"
_CACHE_VERSION = 9
# A kept listing unread this long is removed when a process writes its first (an archive replaced or gone leaves
# its old versions' behind: for ImageNet's, 58 MB each).
CACHE_UNUSED_DAYS = 30


def cache_folder() -> str:
    """The folder where archives' listings are kept between processes: ``$MOBILENET_V1_CACHE`` (empty: none
    kept), else ``$XDG_CACHE_HOME`` or ``~/.cache``, then ``mobilenet_v1/archives``; "" (none kept) where
    there is no home to find (no HOME, a user id without an account: ``~`` stays ``~``, and the listings went
    to a folder named ``~`` under the current one)."""
    if CACHE_ENV in os.environ:
        # ~ as written in a Dockerfile's ENV, a unit file or quoted: no shell expanded it, and the listings went
        # to a folder named ~ under the current one; where no home is found, none is kept.
        folder = os.path.expanduser(os.environ[CACHE_ENV])
        return "" if folder.startswith("~") else folder
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(xdg):  # a relative one is to be ignored (the XDG base directory specification)
        return os.path.join(xdg, "mobilenet_v1", "archives")
    home = os.path.expanduser("~")
    if not os.path.isabs(home) or home == os.path.abspath(os.sep):
        return ""  # HOME="" is read as the root: its .cache is no one's
    return os.path.join(home, ".cache", "mobilenet_v1", "archives")


def _version(st: os.stat_result) -> Tuple[int, int, int, int]:
    """What tells one version of a file from another: its inode, size and times. The change time is the
    one no copy can set (``cp -p`` and ``rsync -a`` keep the modification time; tar pads archives to
    10,240 bytes, so a rewrite can keep the size too). The key of the listings kept on disk and of those
    kept in this process (which left the change time out: a second call in one process read the old
    listing of an archive rewritten in place with its modification time put back)."""
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def _cache_file(path: str, st: os.stat_result) -> str:
    """The listing's file for the archive at ``path`` as it is now (its real path and :func:`_version`:
    another copy, or the archive rewritten, has another), or "" where none is kept."""
    folder = cache_folder()
    if not folder:
        return ""
    key = "\0".join(map(str, (os.path.realpath(path),) + _version(st) + (_CACHE_VERSION,)))
    return os.path.join(folder, hashlib.blake2b(os.fsencode(key), digest_size=16).hexdigest() + ".npz")


def _join(names: Sequence[str]) -> np.ndarray:
    return np.frombuffer("\n".join(names).encode("utf-8", "surrogateescape"), dtype=np.uint8)


def _split(blob: np.ndarray, count: int) -> List[str]:
    names = blob.tobytes().decode("utf-8", "surrogateescape").split("\n") if count else []
    if len(names) != count:
        raise ValueError("names do not match their count")
    return names


def _read_cache(cached: str) -> Optional[_Listing]:
    """The listing kept in ``cached``, or None where there is none or it cannot be read whole, whatever the
    fault: a listing kept is only time saved, and a damaged one (zipfile's NotImplementedError for a flag bit
    flipped, an empty array) ended every run with a traceback until the file was found and deleted."""
    try:
        listing = _parse_cache(cached)
    except Exception:  # none, cut short, not a listing (a .npy holds no arrays by name), damaged in any way
        return None
    if listing is not None:
        with contextlib.suppress(OSError):
            os.utime(cached)  # read: kept another CACHE_UNUSED_DAYS
    return listing


def _parse_cache(cached: str) -> Optional[_Listing]:
    """:func:`_read_cache`'s reading, which raises where the file is not a listing; None for another version's."""
    with open(cached, "rb") as f, np.load(f, allow_pickle=False) as kept:  # arrays only: nothing in it runs
        arrays = {k: kept[k] for k in ("version", "offsets", "sizes", "names", "folders", "folder_count",
                                       "link_names", "link_targets", "link_count")}
    if any(a.ndim != 1 for a in arrays.values()) or arrays["offsets"].dtype != np.int64 \
            or arrays["sizes"].dtype != np.int64 or arrays["names"].dtype != np.uint8 \
            or arrays["folders"].dtype != np.uint8 or arrays["link_names"].dtype != np.uint8 \
            or arrays["link_targets"].dtype != np.uint8 or int(arrays["version"][0]) != _CACHE_VERSION:
        return None
    offsets, sizes = arrays["offsets"].tolist(), arrays["sizes"].tolist()
    names = _split(arrays["names"], len(offsets))
    folders = _split(arrays["folders"], int(arrays["folder_count"][0]))
    link_count = int(arrays["link_count"][0])
    links = dict(zip(_split(arrays["link_names"], link_count), _split(arrays["link_targets"], link_count)))
    if len(sizes) != len(names):
        return None
    return _Listing(dict(zip(names, zip(offsets, sizes))), set(folders), links)


def _write_cache(cached: str, listing: _Listing) -> None:
    """Keep ``listing`` in ``cached`` (written whole, then renamed); nothing where that cannot be done: a
    listing kept is only time saved. Names holding a line break are not kept."""
    names, folders = list(listing.files), sorted(listing.folders)
    links = list(listing.folder_links)
    if any("\n" in n for n in names + folders + list(listing.folder_links.values())):
        return
    # A name no other writer has (two processes of one PID number share a folder: containers, one NFS home), made
    # afresh (O_EXCL: a link put there beforehand in a shared folder is not followed, and another's file not
    # written into); the mode as open() gives it, so a folder shared by a group stays readable to it.
    tmp = f"{cached}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_BINARY", 0), 0o666)
    except OSError:  # none made: nothing of ours to remove (a file already of that name is not ours)
        return
    try:
        with open(fd, "wb") as f:
            np.savez(f, version=np.array([_CACHE_VERSION]), names=_join(names),
                     offsets=np.array([listing.files[n][0] for n in names], np.int64),
                     sizes=np.array([listing.files[n][1] for n in names], np.int64),
                     folders=_join(folders), folder_count=np.array([len(folders)]), link_names=_join(links),
                     link_targets=_join([listing.folder_links[n] for n in links]), link_count=np.array([len(links)]))
        os.replace(tmp, cached)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        return
    folder = os.path.dirname(cached)
    if folder not in _PRUNED:  # once a process: ImageNet's 1,000 class archives written at once each listed them all
        _PRUNED.add(folder)
        _prune(folder)


_PRUNED: Set[str] = set()  # the cache folders :func:`_prune` has looked through in this process


def _prune(folder: str) -> None:
    """Remove the listings in ``folder`` unread for :data:`CACHE_UNUSED_DAYS` days (each read touches its
    file), and temporary and lock files a killed process left a day ago or more; only files named as ours."""
    now = time.time()
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name  # <32 hex digits>.npz, or <that>.<pid>.tmp, or <that>.lock
                ours = name[32:36] == ".npz" and all(c in "0123456789abcdef" for c in name[:32])
                kept, left = ours and len(name) == 36, ours and name.endswith((".tmp", ".lock"))
                if not (kept or left) or not entry.is_file(follow_symlinks=False):
                    continue
                age = now - entry.stat(follow_symlinks=False).st_mtime
                if age > (CACHE_UNUSED_DAYS if kept else 1) * 86400:
                    with contextlib.suppress(OSError):
                        os.unlink(entry.path)
    except OSError:
        pass  # a listing not removed is only disk space


def _listing(path: str) -> _Listing:
    """The archive's files and folders (:func:`_walk`), from the listing kept for it when there is one. The
    archive must be readable either way; a listing is kept only where the file was the same version
    before and after its walk (one replaced meanwhile would be kept under the other's key)."""
    try:
        with open(path, "rb") as f:
            before = os.fstat(f.fileno())
    except OSError as e:
        raise ArchiveError(f"archive {path}: cannot be read: {e.strerror or e}") from None
    cached = _cache_file(path, before)
    listing = _read_cache(cached) if cached else None
    lock = None
    if listing is None and cached:
        lock, listing = _walk_lock(path, cached)
    if listing is None:
        try:
            listing = _walk(path)
            with contextlib.suppress(OSError):
                if cached and _version(os.stat(path)) == _version(before):
                    _write_cache(cached, listing)
        finally:
            if lock is not None:
                _release_walk_lock(lock, cached, os.path.exists(cached))
    # The version it was read from: an image is read at the offsets it gives only from that file (read_member)
    return listing._replace(version=_version(before)[:3])


# A process that waits for another's walk of the same archive says so after this many seconds, naming it.
WALK_WAIT_NOTE_SECONDS = 10.0


def _walk_lock(path: str, cached: str) -> Tuple[Optional[int], Optional[_Listing]]:
    """One walk of an archive at a time, by the processes that keep its listing in ``cached``: torchrun's ranks
    on one machine (each used to walk ImageNet's tar at once), or eval started beside train. Returns the
    descriptor of the lock this process now holds to walk it (:func:`_release_walk_lock` once its listing is
    kept), or the listing another process kept meanwhile, or (None, None) where no lock can be had (no flock on
    this system or file system, a cache folder that cannot be written): then each walks, as before.

    While another process holds the lock, this one waits for the listing to be kept, reading it as soon as it
    is (a loader worker forked during the walk may hold a copy of the lock longer); a walker killed leaves the
    lock to the next, which walks, and one that could keep no listing (a name with a line break, a full disk)
    marks the lock file so (:data:`_UNKEPT`): the others that waited then walk at once, side by side. After
    :data:`WALK_WAIT_NOTE_SECONDS` it says whose walk it waits for (a process stopped with Ctrl-Z waits it too)."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system
        return None, None
    name = cached + ".lock"
    try:
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        # Not through a link placed in a shared folder; the mode as open() gives it, as the listings'.
        fd = os.open(name, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0),
                     0o666)
    except OSError:
        return None, None
    start, said = time.monotonic(), False
    try:  # a Ctrl-C while waiting closes the file
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass
            except OSError:  # ENOLCK: no locks on this file system
                os.close(fd)
                return None, None
            else:
                listing = _read_cache(cached)  # kept by the walk this one waited for
                if listing is None and _UNKEPT == os.pread(fd, len(_UNKEPT), 0):
                    # The walk it waited for ended without a listing to keep (a name with a line break, a full
                    # disk, the archive replaced meanwhile): the others that wait walk now too, not one by one.
                    os.close(fd)
                    return None, None
                if listing is None:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, 0)
                        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                    return fd, None
                os.close(fd)
                return None, listing
            listing = _read_cache(cached)
            if listing is not None:
                os.close(fd)
                return None, listing
            if not said and time.monotonic() - start >= WALK_WAIT_NOTE_SECONDS:
                said = True
                holder = ""
                with contextlib.suppress(OSError, ValueError):
                    holder = f" (process {int(os.pread(fd, 32, 0).decode().strip())})"
                print(f"archive {path}: waiting for another process{holder} that is listing it; the listing is kept "
                      f"in {cached}", file=sys.stderr, flush=True)
            time.sleep(0.25)
    except BaseException:
        os.close(fd)
        raise


_UNKEPT = b"unkept\n"  # what a walk that could keep no listing leaves in its lock file for those waiting


def _release_walk_lock(fd: int, cached: str, kept: bool = True) -> None:
    """Let go of :func:`_walk_lock`'s lock, its file removed first: the listing is kept now (or could not be),
    and a process that opened the file before it went reads the listing once it takes the lock, or, where
    none was ``kept``, walks at once beside the others that waited."""
    if not kept:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, _UNKEPT, 0)
    with contextlib.suppress(OSError):
        os.unlink(cached + ".lock")
    os.close(fd)


@functools.lru_cache(maxsize=16)
def _index(path: str, identity: Tuple[int, ...], extensions: Tuple[str, ...],
           splits: Tuple[str, ...]) -> Tuple[Dict[str, ClassFiles], List[str], List[str], Dict[str, str]]:
    listing = _listing(path)
    version = listing.version
    names = set(listing.files) | listing.folders
    prefix = _wrappers(names, listing.folders, path, splits)
    strip = len(prefix)
    classes = {n[strip:].split("/", 1)[0] for n in names if n.startswith(prefix) and "/" in n[strip:]}
    classes |= {f[strip:] for f in listing.folders if f.startswith(prefix) and f[strip:] and "/" not in f[strip:]}
    in_splits = sorted(c for c in classes if c in splits)
    if len(in_splits) > 1:
        raise ArchiveError(f"archive {path} holds the splits {', '.join(s + '/' for s in in_splits)}: an archive "
                           f"is read as one split of class folders; pack each split as an archive of its own "
                           f"({', '.join(s + ARCHIVE_SUFFIX for s in in_splits)}) beside each other")
    # A folder a class reaches twice through links to folders is read once, as a folder walk reads it; only the
    # classes holding such a link are looked through.
    linking = {n[strip:].split("/", 1)[0] for n in listing.folder_links if n.startswith(prefix) and "/" in n[strip:]}
    in_class: Dict[str, List[str]] = {c: [] for c in linking}
    for name in listing.files if linking else ():
        if name.startswith(prefix) and name[strip:].split("/", 1)[0] in in_class and "/" in name[strip:]:
            in_class[name[strip:].split("/", 1)[0]].append(name)
    again = set().union(*(_read_again(names, listing.folder_links, prefix + cls) for cls, names in in_class.items()))
    by_class: Dict[str, List[Tuple[str, int, int]]] = {c: [] for c in classes}
    for name, (offset, size) in listing.files.items():
        rel = name[strip:]
        if name.startswith(prefix) and "/" in rel and _is_image(rel, extensions) and name not in again:
            by_class[rel.split("/", 1)[0]].append((rel, offset, size))
    index = {}
    for cls in sorted(by_class):
        # Sorted as a folder walk sorts: by folder, then by name.
        files = sorted(by_class[cls], key=_folder_order)
        index[cls] = ClassFiles([f"{path}/{n}" for n, _, _ in files], np.array([o for _, o, _ in files], np.int64),
                                np.array([s for _, _, s in files], np.int64), path, version)
    # Links beside the classes to what the archive does not hold: class folders that were links when packed
    # (tar stores a link, not its folder's files, without -h), which no class lists.
    outside = sorted(n[strip:] for n, (offset, _) in listing.files.items()
                     if offset < 0 and n.startswith(prefix) and n[strip:] and "/" not in n[strip:])
    # Where each class's folder is, its links followed (class_locations), where the archive holds links to folders.
    located = {c: _followed(prefix + c, listing.folder_links) for c in index} if listing.folder_links else {}
    return index, outside, _unlabelled(listing.files), located


def _stat_index(path: str, extensions: Tuple[str, ...],
                splits: Tuple[str, ...]) -> Tuple[Dict[str, ClassFiles], List[str], List[str], Dict[str, str]]:
    try:
        st = os.stat(path)
    except OSError as e:
        raise ArchiveError(f"archive {path}: cannot be read: {e.strerror or e}") from None
    return _index(path, (st.st_dev,) + _version(st), tuple(extensions), tuple(splits))


def archive_index(path: str, extensions: Tuple[str, ...], splits: Tuple[str, ...] = ()) -> Dict[str, ClassFiles]:
    """The image files (by ``extensions``; hidden ones, ``.``-named, left out) of the archive at
    ``path``, by class in sorted order. A class is a top folder (``<class>/...``) or a class archive
    (``<class>.tar`` at the top); one folder wrapping them all, named as the archive or one of
    ``splits``, is passed through (:func:`_wrappers`). An archive holding several of ``splits`` is refused.
    Walked once while the file stays as it is: the listing is kept in this process, and between processes in
    :func:`cache_folder`. WebDataset samples some of which lack their ``.cls`` are refused
    (:func:`unlabelled_refusal`): read as class folders, the labels would be left out."""
    index, _, unlabelled, _ = _stat_index(path, extensions, splits)
    if unlabelled:  # a shard whose first sample has no label (holds_labels took it for a tar of images)
        raise unlabelled_refusal(path, unlabelled)
    return index


def class_locations(path: str, extensions: Tuple[str, ...], splits: Tuple[str, ...] = ()) -> Dict[str, str]:
    """Each class of the archive at ``path`` (as :func:`archive_index` finds them) with the folder inside it that
    its class folder is once links to folders are followed (``fox`` a link to ``cat``: ``cat``); empty where the
    archive holds no link to a folder."""
    return _stat_index(path, extensions, splits)[3]


def links_out(path: str, extensions: Tuple[str, ...], splits: Tuple[str, ...] = ()) -> List[str]:
    """The names beside the classes of the archive at ``path`` (as :func:`archive_index` finds them) that are
    links to what it does not hold (a class folder linked to another disk, packed without ``tar -h``), sorted:
    no class lists them."""
    return _stat_index(path, extensions, splits)[1]


def _unlabelled(files: Sequence[str]) -> List[str]:
    """The sample keys (:func:`_sample_key`) of the files in ``files`` that have no ``.cls`` label beside
    them where others have: a WebDataset shard whose first sample lacks its label, which :func:`holds_labels`
    (reading that sample only) takes for a tar of images; empty where no file is a label."""
    if not any(n.lower().endswith("." + LABEL_SUFFIX) for n in files):
        return []
    labelled, keys = set(), set()
    for name in files:
        key, suffix = _sample_key(name)
        (labelled if suffix.lower() == LABEL_SUFFIX else keys).add(key)
    return sorted(keys - labelled) if labelled else []


def unlabelled_refusal(path: str, keys: Sequence[str]) -> ArchiveError:
    """The error for an archive read as images (a split's, or a class archive) that holds WebDataset labels,
    some samples without (:func:`_unlabelled`): read as class folders, the labels would be left out."""
    return ArchiveError(f"archive {path} holds WebDataset samples (<key>.{LABEL_SUFFIX} labels), and "
                        f"{len(keys)} of them have no .{LABEL_SUFFIX} ({', '.join(keys[:3])}"
                        f"{' ...' if len(keys) > 3 else ''}): a .tar is read as shards where its first sample "
                        f"has its label, else as images in class folders; give each sample its .{LABEL_SUFFIX}")


def lone_class_wrapping(path: str, splits: Tuple[str, ...] = ()) -> Tuple[str, List[str]]:
    """Where the archive at ``path`` holds one class folder (as :func:`archive_index` finds them) that holds
    nothing but one folder in another down to one of several folders (``tar cf train.tar data/imagenet/train``
    writes ``data/imagenet/train/<class>/...``, and ``data`` is neither the archive's name nor a split's): the
    path of that last folder in the archive and its sub-folders' names, sorted; else ``("", [])``. Such a
    folder is not passed through as a wrapper named so is: it may as well be one class's folders of images."""
    listing = _listing(path)
    names = set(listing.files) | listing.folders
    prefix = _wrappers(names, listing.folders, path, splits)
    folder = prefix
    while True:
        rest = [n[len(folder):] for n in names if n.startswith(folder) and len(n) > len(folder)]
        inside = {r.split("/", 1)[0] for r in rest}
        below = {r.split("/", 1)[0] for r in rest if "/" in r or folder + r in listing.folders}
        # The top's files are no class's (beside the classes); a class's are its images.
        if len(below) == 1 and (folder == prefix or inside == below):
            folder += below.pop() + "/"
            continue
        lone = folder != prefix and len(below) > 1 and inside == below
        return (folder.rstrip("/"), sorted(below)) if lone else ("", [])


def forget_indexes() -> None:
    """Drop the archives' listings kept in this process (the next :func:`archive_index` reads the one kept
    between processes, or walks anew): for timing the walk."""
    _index.cache_clear()
    _shard_index.cache_clear()
    _class_archives.cache_clear()


def archive_images(path: str, extensions: Tuple[str, ...],
                   listing: Optional[_Listing] = None) -> List[ArchiveMember]:
    """Every image file in the archive at ``path`` (class archives' included, as ``<class>/<file>``), in
    or out of class folders, sorted by folder then name, as a folder's files are listed (a folder reached twice
    through links read once: :func:`_read_again`)."""
    listing = _listing(path) if listing is None else listing
    version = listing.version
    again = _read_again(list(listing.files), listing.folder_links, "") if listing.folder_links else set()
    found = [(n, where) for n, where in listing.files.items() if _is_image(n, tuple(extensions)) and n not in again]
    found.sort(key=_folder_order)
    return [ArchiveMember(f"{path}/{name}", path, offset, size, version) for name, (offset, size) in found]


@functools.lru_cache(maxsize=8)
def _class_archives(archives: Tuple[Tuple[str, Tuple[int, int, int, int]], ...],
                    extensions: Tuple[str, ...]) -> Dict[str, ClassFiles]:
    found = {}
    for path, _ in archives:
        listing = _listing(path)
        unlabelled = _unlabelled(listing.files)
        if unlabelled:  # a shard whose first sample has no label, not a class archive
            raise unlabelled_refusal(path, unlabelled)
        members = archive_images(path, extensions, listing)
        found[os.path.basename(path)[:-len(ARCHIVE_SUFFIX)]] = ClassFiles(
            [str(m) for m in members], np.array([m.offset for m in members], np.int64),
            np.array([m.size for m in members], np.int64), path, listing.version)
    return found


def class_archives_index(paths: Sequence[str], extensions: Tuple[str, ...]) -> Dict[str, ClassFiles]:
    """The images of each of the class archives ``paths`` (``<class>.tar``, a split folder's: ImageNet's
    training archive extracted one level), by class. Listed once while the files stay as they are, as
    :func:`archive_index` lists a split's archive: the listing kept between processes is a read per class
    archive (17 ms for a class of 1,300 names on the 2-core development machine; some 17 s for ImageNet's
    1,000), which each loader of the split (training's and its ``val_split`` held-out one, eval at several
    sizes) paid again."""
    identities = []
    for path in paths:
        try:
            identities.append((path, _version(os.stat(path))))
        except OSError as e:
            raise ArchiveError(f"archive {path}: cannot be read: {e.strerror or e}") from None
    return dict(_class_archives(tuple(identities), tuple(extensions)))


# WebDataset shards (the format of timm's and webdataset's readers, and of the Hugging Face Hub's ``*-wds``
# data sets): a split is a set of tar files, each a run of samples, a sample being the files that share a
# key (the name up to the first dot of the file's name): ``n01440764_10026.jpg`` and ``n01440764_10026.cls``,
# the class number as text. Read in place like the archives above, in random order (no stream).
LABEL_SUFFIX = "cls"
_BRACES = re.compile(r"\{([^{}]*)\}")
# A shard file name with one of these is a glob (its braces then taken as they are).
_GLOB_CHARACTERS = "*?["


def is_shard_pattern(spec: str) -> bool:
    """Whether ``spec`` names a set of shards by a pattern: a brace range or list in the file's name
    (``imagenet-train-{000000..000146}.tar``, as webdataset writes them) or a glob (``train-*.tar``). A
    file of that name (``photos[2023].tar``) is a file, not a pattern."""
    name = os.path.basename(os.fspath(spec))
    return (name.lower().endswith(ARCHIVE_SUFFIX) and any(c in name for c in "{" + _GLOB_CHARACTERS)
            and not os.path.isfile(spec))


def expand_braces(pattern: str) -> List[str]:
    """The names a brace pattern stands for, in its order: ``{0..3}``, ``{000..146}`` (padded to the
    longer bound's width where a bound of two digits or more starts with 0, as bash does), ``{a,b}``;
    several in one name multiply out, left first."""
    m = _BRACES.search(pattern)
    if m is None:
        return [pattern]
    body, head, tail = m.group(1), pattern[:m.start()], pattern[m.end():]
    span = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if span:
        a, b = span.groups()
        padded = any(len(x) > 1 and x.startswith("0") for x in (a, b))
        width = max(len(a), len(b)) if padded else 0
        step = 1 if int(a) <= int(b) else -1
        items = [str(i).zfill(width) for i in range(int(a), int(b) + step, step)]
    elif "," in body:
        items = body.split(",")
    else:
        raise ArchiveError(f"shards {pattern}: {{{body}}} is neither a range {{A..B}} of numbers nor a list "
                           f"{{a,b,...}}")
    return [head + item + rest for item in items for rest in expand_braces(tail)]


def tar_files(folder: str) -> List[str]:
    """The ``.tar`` files in ``folder`` (not in its sub-folders), hidden ones left out, sorted by name."""
    with os.scandir(folder) as entries:
        return sorted(os.path.join(folder, e.name) for e in entries
                      if not is_hidden_name(e.name) and e.name.lower().endswith(ARCHIVE_SUFFIX) and e.is_file())


def shard_files(spec: str) -> List[str]:
    """The shard files of the WebDataset split ``spec``, in order: a folder's ``.tar`` files (sorted), a
    glob's (sorted; a name with ``*``, ``?`` or ``[`` is a glob, its braces taken as they are), or a brace
    pattern's (braces in the file's name only; each file must exist)."""
    folder, name = os.path.split(spec)
    if os.path.isdir(spec):
        found = tar_files(spec)
    elif os.path.isfile(spec):
        found = [spec]
    elif any(c in name for c in _GLOB_CHARACTERS):
        found = sorted(f for f in glob.glob(spec) if os.path.isfile(f))
    else:
        found = [os.path.join(folder, n) for n in expand_braces(name)]
        missing = [f for f in found if not os.path.isfile(f)]
        if missing:
            from .runtime import plural  # here only: runtime imports torch, which reading archives does not need

            raise ArchiveError(f"shards {spec}: {len(missing)} of its {plural(len(found), 'file')} "
                               f"{'is' if len(missing) == 1 else 'are'} not there "
                               f"({', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''})")
    if not found:
        raise ArchiveError(f"shards {spec}: no .tar files there")
    return found


def holds_labels(path: str) -> Optional[bool]:
    """Whether the tar file at ``path`` is a WebDataset shard: its first sample (the files up to the first
    that has another key) has a ``.cls`` label. Only those headers are read. None where it holds no file
    or cannot be read as a tar (a split's archive then names what is wrong)."""
    first = None
    try:
        with _open(path) as tf:
            for member in _members(tf, path):
                name = _clean(member.name)
                if not member.isfile() and not member.islnk() and not member.issym() \
                        or any(map(is_hidden_name, name.split("/"))):
                    continue
                key, suffix = _sample_key(name)
                if first is not None and key != first:
                    return False
                first = key
                # <key>.<more>.cls too: a shard whose keys hold a dot (n01_1.JPEG.cls) is one, refused as such
                # (:func:`_shard_samples`), not read as a class archive of its own class.
                if suffix.lower() == LABEL_SUFFIX or suffix.lower().endswith("." + LABEL_SUFFIX):
                    return True
    except ArchiveError:
        return None
    return None if first is None else False


@functools.lru_cache(maxsize=64)
def _folder_kind(folder: str, tars: Tuple[Tuple[Any, ...], ...]) -> Optional[bool]:
    kinds = {name: holds_labels(os.path.join(folder, name)) for name, *_ in tars}
    shards = sorted(n for n, k in kinds.items() if k)
    plain = sorted(n for n, k in kinds.items() if k is False)
    if shards and plain:
        raise ArchiveError(f"folder {folder} holds WebDataset shards ({', '.join(shards[:3])}"
                           f"{' ...' if len(shards) > 3 else ''}) and tar files whose first sample has no "
                           f".{LABEL_SUFFIX} label ({', '.join(plain[:3])}{' ...' if len(plain) > 3 else ''}): "
                           f"move those out, or give their samples labels")
    if not shards and not plain:
        for name, *_ in tars:  # none readable as a tar (compressed ones named .tar?): the first says why
            with _open(os.path.join(folder, name)):
                pass
    return bool(shards) if (shards or plain) else None


def folder_of_shards(folder: str) -> Optional[bool]:
    """For a folder holding ``.tar`` files and no sub-folders: True where they are WebDataset shards (one
    at least holds labels: :func:`holds_labels`), False where they are class archives (none does), and an
    ArchiveError where some are and some are not; None for any other folder (or all its tars empty)."""
    with os.scandir(folder) as entries:
        entries = [e for e in entries if not is_hidden_name(e.name)]
    if any(e.is_dir() for e in entries):
        return None
    tars = []
    for e in entries:
        if e.name.lower().endswith(ARCHIVE_SUFFIX) and e.is_file():
            st = e.stat()
            tars.append((e.name, st.st_dev) + _version(st))
    return _folder_kind(folder, tuple(sorted(tars))) if tars else None


def is_shard_split(spec: str) -> bool:
    """Whether ``spec`` is a WebDataset split: a shard pattern (:func:`is_shard_pattern`), a shard
    (:func:`holds_labels`), or a folder of shards (:func:`folder_of_shards`)."""
    if is_shard_pattern(spec):
        return True
    if is_archive(spec):
        return bool(holds_labels(spec))
    return os.path.isdir(spec) and bool(folder_of_shards(spec))


def _sample_key(name: str) -> Tuple[str, str]:
    """A shard member's sample key and suffix, as webdataset splits them: at the first dot of the file's
    name (``a/b.c/d.seg.png``: ``a/b.c/d`` and ``seg.png``); a name without a dot has no suffix."""
    folder, base = posixpath.split(name)
    dot = base.find(".")
    if dot <= 0:
        return name, ""
    return posixpath.join(folder, base[:dot]), base[dot + 1:]


def _read_label(f, shard: str, key: str, offset: int, size: int) -> int:
    if offset < 0 or size > 64:
        raise ArchiveError(f"shard {shard}: sample {key}: its .{LABEL_SUFFIX} is "
                           f"{'a link to nothing in the shard' if offset < 0 else f'{size} bytes'}, not a class "
                           f"number")
    f.seek(offset)
    text = f.read(size)
    number = re.fullmatch(rb"\s*(\d{1,9})\s*", text)  # not int()'s "+1", "1_0", "-1" or 10**20
    if number is None:
        raise ArchiveError(f"shard {shard}: sample {key}: its .{LABEL_SUFFIX} holds {text[:20]!r}, not a class "
                           f"number (0, 1, ... below 10**9)")
    return int(number.group(1))


def _shard_samples(shard: str, extensions: Tuple[str, ...],
                   listing: _Listing) -> List[Tuple[int, str, int, int]]:
    """(offset, name, size, label) of each sample of a shard, by its image's offset: a sample is one
    image (a suffix that is one of ``extensions``, dot left out) and one ``.cls``; other files (``.json``,
    ``.txt``, ...) are left alone. A sample without either, or with two images, is refused."""
    images: Dict[str, List[Tuple[str, int, int]]] = {}
    labels: Dict[str, Tuple[int, int]] = {}
    dotted: Dict[str, List[str]] = {}  # labels named <key>.<more>.cls, by the key the first dot leaves
    dotted_images: Set[str] = set()  # images named <key>.<more>.<extension>: <key>.<more> of each
    for name, (offset, size) in listing.files.items():
        key, suffix = _sample_key(name)
        suffix = suffix.lower()
        if suffix == LABEL_SUFFIX:
            labels[key] = (offset, size)
        elif suffix.endswith("." + LABEL_SUFFIX):
            dotted.setdefault(key, []).append(name)
        elif "." + suffix in extensions:
            images.setdefault(key, []).append((name, offset, size))
        elif "." in suffix and "." + suffix.rsplit(".", 1)[1] in extensions:
            dotted_images.add(name.rsplit(".", 1)[0].lower())
    # A key holding a dot (n01_1.JPEG.jpg beside n01_1.JPEG.cls, as a writer given file names as keys writes them)
    # leaves a sample of neither an image nor a label, which was left out without a word: a dotted label whose key
    # has no sample of its own, or one beside an image of its own name (k0.v2.jpg + k0.v2.cls beside a sample k0).
    # A dotted label alone beside a whole sample (k.coarse.cls) is a field of that sample, left alone.
    astray = sorted(n for k, names in dotted.items() for n in names
                    if (k not in images and k not in labels) or n[:-len(LABEL_SUFFIX) - 1].lower() in dotted_images)
    if astray:
        raise ArchiveError(f"shard {shard}: {len(astray)} sample(s) whose key holds a dot "
                           f"({', '.join(astray[:3])}{' ...' if len(astray) > 3 else ''}): a key ends at the first dot "
                           f"of a file's name, as webdataset reads them, so their files are neither an image nor a "
                           f".{LABEL_SUFFIX} label; write the shards with keys without dots")
    no_label = [k for k in images if k not in labels]
    no_image = [k for k in labels if k not in images]
    twice = [k for k, found in images.items() if len(found) > 1]
    for keys, what in ((no_label, f"an image but no .{LABEL_SUFFIX} label"),
                       (no_image, f"a .{LABEL_SUFFIX} label but no image ({', '.join(extensions)})"),
                       (twice, "two images (which one is the sample?)")):
        if keys:
            raise ArchiveError(f"shard {shard}: {len(keys)} sample(s) with {what}: {', '.join(sorted(keys)[:3])}"
                               f"{' ...' if len(keys) > 3 else ''}")
    found = []
    with open(shard, "rb") as f:
        for key, ((name, offset, size),) in images.items():
            found.append((offset, name, size, _read_label(f, shard, key, *labels[key])))
    return sorted(found)


@functools.lru_cache(maxsize=8)
def _shard_index(shards: Tuple[str, ...], identity: Tuple[Tuple[int, ...], ...],
                 extensions: Tuple[str, ...]) -> ArchiveImages:
    which, names, offsets, sizes, labels = [], [], [], [], []
    versions = []
    for i, shard in enumerate(shards):
        listing = _listing(shard)
        samples = _shard_samples(shard, extensions, listing)
        versions.append(listing.version)
        for offset, name, size, label in samples:
            which.append(i)
            names.append(f"{shard}/{name}")
            offsets.append(offset)
            sizes.append(size)
            labels.append(label)
    return ArchiveImages(shards, which, names, offsets, sizes, labels, versions)


def shard_index(spec: str, extensions: Tuple[str, ...]) -> ArchiveImages:
    """Every sample of the WebDataset split ``spec`` (:func:`shard_files`), shard by shard and in each in
    the order it was written, labelled by its ``.cls``, named by its image's path under the shard
    (``shards/train-000000.tar/n01440764_10026.jpg``). Each shard is walked once while it stays as it is
    (its listing kept as an archive's is)."""
    shards = tuple(shard_files(spec))
    try:
        identity = tuple((st.st_dev,) + _version(st) for st in map(os.stat, shards))
    except OSError as e:
        raise ArchiveError(f"shard {e.filename}: cannot be read: {e.strerror or e}") from None
    return _shard_index(shards, identity, tuple(extensions))


def read_member(member: ArchiveMember, check: Optional[Callable[[str, int, Any], None]] = None) -> bytes:
    """The bytes of an image in an archive (the archive opened for this read, as a folder's file would
    be); an archive cut short before its end raises an OSError naming the image. ``check``: called with the
    member's name, size and the archive positioned at its bytes before they are read (an OSError where they are
    not to be: a 1 GiB member of zeros named big.png, the archive sparse on disk, was read whole and copied)."""
    if member.offset < 0:
        raise OSError(0, "a link to a file the archive does not hold", str(member))
    with open(member.archive, "rb") as f:
        if member.version and _version(os.fstat(f.fileno()))[:3] != tuple(member.version):  # its listing's file?
            # Replaced (rsync, cp to a temporary name then mv) or rewritten since it was listed: its offsets are
            # another file's, and what they hold is pieces of other images, some of which decode.
            raise OSError(0, f"the archive {member.archive} was replaced or rewritten after this process listed it "
                             f"(its offsets are the old file's): restart the run to list it anew", str(member))
        f.seek(member.offset)
        if check is not None:
            check(str(member), member.size, f)
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
