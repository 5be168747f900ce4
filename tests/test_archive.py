"""Image folders packed as tar archives and read in place (mobilenet_v1.archive): the samples, labels,
held-out images, batches and runs of the folder they were packed from."""
import gzip
import io
import json
import os
import re
import shutil
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mobilenet_v1 import cli, train
from mobilenet_v1.archive import ArchiveMember, is_archive, read_member
from mobilenet_v1.checkpoint import load_file
from mobilenet_v1.config import load_config
from mobilenet_v1.data import (BadSample, DataError, DataOptions, DataWarning, Holdout, ImageFolderDataset,
                               build_loader, class_folders, find_images)

from conftest import epoch_batches, jpeg_bytes, smooth_image


def pack(folder, tar_path, arcname):
    """``tar cf tar_path -C parent arcname``: the folder under the name ``arcname`` ("." for its content)."""
    with tarfile.open(tar_path, "w") as tf:
        tf.add(str(folder), arcname=arcname)
    return str(tar_path)


def pack_per_class(folder, tar_path):
    """ImageNet's training archive: a tar of one tar a class (``n01.tar`` holding its files by name)."""
    with tarfile.open(tar_path, "w") as outer:
        for cls in sorted(os.listdir(folder)):
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as inner:
                for name in sorted(os.listdir(folder / cls)):
                    inner.add(str(folder / cls / name), arcname=name)
            info = tarfile.TarInfo(cls + ".tar")
            info.size = len(buf.getvalue())
            outer.addfile(info, io.BytesIO(buf.getvalue()))
    return str(tar_path)


def relative(samples, root):
    return [(os.path.relpath(path, root), label) for path, label in samples]


def test_an_archive_lists_the_samples_labels_and_held_out_images_of_its_folder(image_folder, tmp_path):
    """Packed three ways (under the split's name, as ``./``, and one tar a class), an archive gives the
    folder's classes, samples in the same order, labels (also from a model's class list) and the same
    images held out by val_split; hidden and non-image members and files beside the classes are not data."""
    folder = image_folder / "train"
    (folder / "n01" / "deeper").mkdir()
    (folder / "n01" / "deeper" / "a.JPEG").write_bytes(jpeg_bytes(smooth_image(30, 30, 5)))
    (folder / "n02" / "notes.txt").write_text("not an image")
    (folder / "n02" / ".hidden.JPEG").write_bytes(jpeg_bytes(smooth_image(30, 30, 6)))
    (folder / "README.jpg").write_bytes(jpeg_bytes(smooth_image(30, 30, 7)))  # beside the classes: not a class's
    (folder / "__MACOSX" / "n01").mkdir(parents=True)  # unzip's of a macOS zip, packed again: no class
    (folder / "__MACOSX" / "n01" / "a.JPEG").write_bytes(jpeg_bytes(smooth_image(30, 30, 8)))
    (folder / "n02" / "@eaDir").mkdir()  # a Synology share's thumbnails: no images of the class
    (folder / "n02" / "@eaDir" / "t.JPEG").write_bytes(jpeg_bytes(smooth_image(30, 30, 9)))
    archives = [pack(folder, tmp_path / "train.tar", "train"), pack(folder, tmp_path / "dot.tar", "."),
                pack_per_class(image_folder / "validation_preprocess", tmp_path / "per_class.tar")]
    for archive, source in zip(archives, (folder, folder, image_folder / "validation_preprocess")):
        want, want_classes = find_images(str(source))
        got, classes = find_images(archive)
        assert classes == want_classes == ["n01", "n02"] and class_folders(archive) == classes
        assert relative(got, archive) == relative(want, source) and len(got) > 0
        assert all(isinstance(p, ArchiveMember) for p, _ in got)
        assert relative(find_images(archive, ["x", "n02", "n01"])[0], archive) == \
            relative(find_images(str(source), ["x", "n02", "n01"])[0], source)
        for held in (True, False):
            assert relative(find_images(archive, holdout=Holdout(0.34, held))[0], archive) == \
                relative(find_images(str(source), holdout=Holdout(0.34, held))[0], source)
    assert len(find_images(archives[0])[0]) == 6 + 6 + 3 + 1  # the fixture's odd files and deeper/a.JPEG


@pytest.mark.parametrize("pipeline", ["cpu", "gpu"])
def test_both_pipelines_give_the_folders_batches_from_archives(image_folder, tmp_path, pipeline):
    """train.tar (one tar a class, as ImageNet ships) beside validation_preprocess.tar give the batches of
    the folders bit for bit, training (augmented) and evaluation, through loader workers; the grayscale,
    CMYK and PNG files take the GPU pipeline's CPU decode from an archive too."""
    packed = tmp_path / "packed"
    packed.mkdir()
    pack_per_class(image_folder / "train", packed / "train.tar")
    pack(image_folder / "validation_preprocess", packed / "validation_preprocess.tar", "validation_preprocess")
    for train_split in (True, False):
        batches = []
        for root in (image_folder, packed):
            found, loader = epoch_batches(root, train_split, pipeline)
            batches.append(found)
            assert loader.classes == ["n01", "n02"] and not loader.bad_samples.files
        assert len(batches[0]) == (3 if train_split else 2) and len(batches[0]) == len(batches[1])
        for (x, y), (x2, y2) in zip(*batches):
            assert torch.equal(x, x2) and torch.equal(y, y2)


def test_a_damaged_image_in_an_archive_is_a_bad_sample_named_by_its_path(image_folder, tmp_path):
    """Bytes overwritten inside the archive: that image is skipped and named as train.tar/<class>/<file>;
    an archive that changed after it was listed (cut short) names the image and says so."""
    archive = pack(image_folder / "train", tmp_path / "train.tar", "train")
    samples, _ = find_images(archive)
    victim = samples[1][0]
    with open(archive, "r+b") as f:
        f.seek(victim.offset)
        f.write(b"\0" * 64)
    ds = ImageFolderDataset(find_images(archive)[0], train=False, image_size=32)
    item = ds[(1, 0)][0]
    assert str(victim) == f"{archive}/n01/gray.JPEG"
    assert isinstance(item, BadSample) and item.path == str(victim) and item.reason.startswith(f"{victim}: ")
    assert not isinstance(ds[(0, 0)][0], BadSample)
    cut = ArchiveMember(str(victim), archive, victim.offset, os.path.getsize(archive))
    item = ImageFolderDataset([(cut, 0)], train=False, image_size=32)[(0, 0)][0]
    assert isinstance(item, BadSample) and item.reason.startswith(f"{victim}: the archive ends")


def test_archives_that_cannot_be_read_as_a_split_are_refused_naming_them(image_folder, tmp_path):
    folder = image_folder / "train"
    plain = pack(folder, tmp_path / "plain.tar", "train")
    gz = tmp_path / "train.tar"
    gz.write_bytes(gzip.compress(open(plain, "rb").read()))
    with pytest.raises(DataError, match=rf"archive {gz} is compressed \(gzip\).*uncompressed tar"):
        find_images(str(gz))
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all" * 100)
    with pytest.raises(DataError, match=rf"archive {junk}: not a tar archive"):
        find_images(str(junk))
    whole = open(plain, "rb").read()
    headers = [m.offset for m in tarfile.open(plain).getmembers()]
    # Cut inside a file's bytes, at a header, inside one, and with a header overwritten: tarfile itself
    # would end the listing there without a word at the last three.
    for at in (headers[-1] + 700, headers[-1], headers[-1] + 100):
        cut = tmp_path / f"cut{at}.tar"
        cut.write_bytes(whole[:at])
        with pytest.raises(DataError, match=rf"archive {cut}: .*at byte \d+.*cut short\? copy it again"):
            find_images(str(cut))
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(whole[:headers[-1]] + b"x" * 512 + whole[headers[-1] + 512:])
    with pytest.raises(DataError, match=rf"archive {damaged}: no tar header nor end-of-archive block at byte "
                                        rf"{headers[-1]}"):
        find_images(str(damaged))
    both = pack(image_folder, tmp_path / "both.tar", ".")
    with pytest.raises(DataError, match=r"holds the splits train/, validation_preprocess/.*train.tar"):
        find_images(both)
    flat = tmp_path / "flat.tar"
    with tarfile.open(flat, "w") as tf:
        tf.add(str(folder / "n01" / "img_0.JPEG"), arcname="img_0.JPEG")
    with pytest.raises(DataError, match=rf"image archive '{flat}' has no class folders or class archives"):
        find_images(str(flat))


def test_class_archives_cut_short_are_refused_naming_them(image_folder, tmp_path, capsys):
    """ImageNet's training archive cut inside a class archive failed on a path made up of the two ("Not a
    directory: 'x.tar/n02.tar'"), and predict stopped at it; a class archive cut short before it was packed read
    as the images it still held, the rest lost without a word."""
    whole = open(pack_per_class(image_folder / "train", tmp_path / "whole.tar"), "rb").read()
    second = [m for m in tarfile.open(tmp_path / "whole.tar").getmembers() if m.name == "n02.tar"][0]
    cut = tmp_path / "cut.tar"
    cut.write_bytes(whole[:second.offset_data + 1100])
    with pytest.raises(DataError, match=rf"^archive {cut}: its class archive n02.tar runs past the archive's end "
                                        rf"\({second.offset_data + 1100} bytes\): cut short\?"):
        find_images(str(cut))
    assert cli.main(["data-stats", "--dataset_path", str(cut), "--dataset", "imagenet2012"]) == 1
    assert "its class archive n02.tar runs past the archive's end" in capsys.readouterr().err
    # A header damaged inside a class archive: named as the class archive's, at its own byte
    inner = tarfile.open(tmp_path / "whole.tar").extractfile("n02.tar").read()
    at = tarfile.open(fileobj=io.BytesIO(inner)).getmembers()[1].offset
    damaged = tmp_path / "damaged.tar"
    damaged.write_bytes(whole[:second.offset_data + at] + b"x" * 512 + whole[second.offset_data + at + 512:])
    with pytest.raises(DataError, match=rf"^archive {damaged}: its class archive n02.tar: no tar header nor "
                                        rf"end-of-archive block at byte {at}; cut short\?"):
        find_images(str(damaged))
    # A class archive cut before it was packed
    first = tarfile.open(fileobj=io.BytesIO(inner)).getmembers()[0]
    short = inner[:first.offset_data + first.size + 700]
    packed = tmp_path / "packed.tar"

    def pack_members(members):
        """``packed``: a tar of these (name, bytes) members."""
        with tarfile.open(packed, "w") as outer:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                outer.addfile(info, io.BytesIO(data))

    pack_members([("n01.tar", tarfile.open(tmp_path / "whole.tar").extractfile("n01.tar").read()), ("n02.tar", short)])
    with pytest.raises(DataError, match=rf"^archive {packed}: its class archive n02.tar ends without a tar's "
                                        rf"end-of-archive block: cut short\?"):
        find_images(str(packed))
    # Cut at a block's edge (its second image's header), packed before another class archive and as the last one
    edge = inner[:tarfile.open(fileobj=io.BytesIO(inner)).getmembers()[1].offset]
    for order in (("n02.tar", "n01.tar"), ("n01.tar", "n02.tar")):
        whole_of = tarfile.open(tmp_path / "whole.tar").extractfile
        pack_members([(name, edge if name == "n02.tar" else whole_of(name).read()) for name in order])
        with pytest.raises(DataError, match=rf"^archive {packed}: its class archive n02.tar ends without a tar's "
                                            rf"end-of-archive block: cut short\?"):
            find_images(str(packed))
    # A compressed one is said as such (not as cut short: its size is no whole number of blocks either)
    pack_members([("n02.tar", gzip.compress(inner))])
    with pytest.raises(DataError, match=rf"^archive {packed}: its class archive n02.tar is compressed \(gzip\)"):
        find_images(str(packed))


def test_training_on_archives_gives_the_weights_and_top1_of_the_folders(image_folder, tmp_path, capsys):
    """One epoch and its evaluation, --dataset_path the folders and then train.tar + val.tar beside
    each other (no folder at all): the same weights bit for bit and the same top-1; eval reads the
    archive too."""
    packed = tmp_path / "packed"
    packed.mkdir()
    pack_per_class(image_folder / "train", packed / "train.tar")
    pack(image_folder / "validation_preprocess", packed / "val.tar", ".")
    results, evals = [], []
    for root in (image_folder, packed):
        args = ["--dataset=imagenet2012", f"--dataset_path={root}", "--class_num=2", "--width_mult=0.25",
                "--image_size=32", "--batch_size=4", "--device_target=CPU", "--num_workers=0",
                "--warmup_epochs=0", "--epoch_size=1", "--eval_interval=1",
                f"--save_checkpoint_path={tmp_path / ('run_' + root.name)}"]
        results.append(train.run(load_config(args)))
        log = capsys.readouterr().out
        assert "training: 15 samples, 3 steps per epoch" in log
        evals += [line.split(" (")[0] for line in log.splitlines() if line.startswith("eval: epoch 1 top-1")]
    a, b = (load_file(r["checkpoint"])["model"] for r in results)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert len(evals) == 2 and evals[0] == evals[1]
    assert cli.main(["eval", "--dataset=imagenet2012", f"--dataset_path={packed}", "--device_target=CPU",
                     f"--checkpoint_path={results[1]['checkpoint']}", "--num_workers=0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["total"] == 6


def test_predict_reads_an_archive_as_the_folder_it_was_packed_from(image_folder, tmp_path, capsys):
    """predict X.tar: every image in it (class archives' too), named by its path under the archive, with
    the predictions of the same files in the folder, its damaged file listed and the exit status 1."""
    from mobilenet_v1 import checkpoint as ckpt_io
    from mobilenet_v1.model import MobileNetV1

    torch.manual_seed(0)
    ckpt = tmp_path / "model.ckpt"
    model = MobileNetV1(class_num=2, width_mult=0.25)
    for layer in model.modules():  # outputs that differ from image to image (the default's vanish)
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(layer.weight)
    ckpt_io.atomic_save({"model": model.state_dict(), "classes": ["n01", "n02"]}, str(ckpt))
    folder = image_folder / "validation_preprocess"
    (folder / "n02" / "broken.JPEG").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = []
    for path, root in ((folder, folder), (pack_per_class(folder, tmp_path / "val.tar"), tmp_path / "val.tar")):
        assert cli.main(["predict", str(path), "--ckpt_file", str(ckpt), "--json", "--device_target", "CPU"]) == 1
        predictions = json.loads(capsys.readouterr().out)["predictions"]
        out.append([{**p, "image": os.path.relpath(p["image"], root),
                     "error": p.get("error", "").replace(str(root), "ROOT")} for p in predictions])
    assert out[0] == out[1] and len(out[0]) == 7
    assert out[1][3]["image"] == "n02/broken.JPEG" and out[1][3]["error"].startswith("ROOT/n02/broken.JPEG: not a")
    assert len({p["top_k"][0]["probability"] for p in out[1] if "top_k" in p}) == 6


def test_links_repeated_names_and_empty_classes_read_as_once_extracted(tmp_path):
    """What extracting leaves: an empty class folder is still a class (the labels after it keep their
    place); a hard link, a symbolic link to a file and one to a folder hold their targets' bytes; a name
    stored twice is the last copy's; a whole data set's archive holding one split is that split."""
    folder = tmp_path / "train"
    for cls, n in (("cat", 2), ("dog", 2)):
        (folder / cls).mkdir(parents=True)
        for i in range(n):
            (folder / cls / f"{i}.png").write_bytes(jpeg_bytes(smooth_image(20, 20, 10 * len(cls) + i), fmt="PNG"))
    (folder / "ant").mkdir()  # empty: label 0, and cat, dog 1, 2
    os.link(folder / "cat" / "0.png", folder / "cat" / "hard.png")
    (folder / "dog" / "soft.png").symlink_to("../cat/1.png")
    (folder / "dog" / "more").symlink_to("../cat", target_is_directory=True)
    archive = tmp_path / "train.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(str(folder), arcname="train")
        stale = tarfile.TarInfo("train/dog/0.png")  # stored again, later: extracting keeps this one
        newer = jpeg_bytes(smooth_image(24, 24, 99), fmt="PNG")
        stale.size = len(newer)
        tf.addfile(stale, io.BytesIO(newer))
    (folder / "dog" / "0.png").write_bytes(newer)
    want, want_classes = find_images(str(folder))
    got, classes = find_images(str(archive))
    assert classes == want_classes == ["ant", "cat", "dog"]
    assert relative(got, archive) == relative(want, folder) and len(got) == 3 + 6
    for (path, _), (member, _) in zip(want, got):
        assert read_member(member) == Path(path).read_bytes()
    whole = tmp_path / "dataset.tar"  # tar cf dataset.tar dataset, the folder holding train/ alone
    with tarfile.open(whole, "w") as tf:
        tf.add(str(folder), arcname="dataset/train")
    assert find_images(str(whole))[1] == ["ant", "cat", "dog"]
    # Links in any stored order, as extracting resolves them (helper-111: a chain stored link first was
    # unreadable, a folder link stored before a hard link in its folder lacked that file): b/y -> b/z ->
    # a/0, c -> a, a/1 a hard link of a/0; and a link to an absolute path, which no archive holds, is named
    # as unreadable as the extracted folder's broken link is (it was left out).
    linked = tmp_path / "linked"
    (linked / "a").mkdir(parents=True)
    (linked / "b").mkdir()
    (linked / "a" / "0.png").write_bytes(jpeg_bytes(smooth_image(20, 20, 7), fmt="PNG"))
    os.link(linked / "a" / "0.png", linked / "a" / "1.png")
    (linked / "b" / "y.png").symlink_to("z.png")
    (linked / "b" / "z.png").symlink_to("../a/0.png")
    (linked / "c").symlink_to("a", target_is_directory=True)
    # Chains through links to folders, as extracting follows them (helper-375: the archive dropped d as a link to
    # what it does not hold, numbering the classes after it otherwise, and could not read b/w.png): d -> c -> a,
    # and b/w.png -> ../c/0.png.
    (linked / "d").symlink_to("c", target_is_directory=True)
    (linked / "b" / "w.png").symlink_to("../c/0.png")
    archive = tmp_path / "linked.tar"
    with tarfile.open(archive, "w") as tf:
        for name in ("b", "b/w.png", "d", "b/y.png", "b/z.png", "c", "a", "a/0.png", "a/1.png"):
            tf.add(str(linked / name), arcname=name, recursive=False)
        outside = tarfile.TarInfo("b/abs.png")
        outside.type, outside.linkname = tarfile.SYMTYPE, "/nowhere/at/all.png"
        tf.addfile(outside)
    # c -> a is one folder as two classes: said of the archive as of the folder (helper-369: the archive said nothing).
    with pytest.warns(DataWarning, match=r"image folder .*: class folders a and c and d are one folder"):
        want = find_images(str(linked))
    with pytest.warns(DataWarning, match=r"image archive .*linked.tar.*: class folders a and c and d are one folder"):
        got = find_images(str(archive))
    assert got[1] == want[1] == ["a", "b", "c", "d"] and len(got[0]) == len(want[0]) + 1 == 10
    assert relative([s for s in got[0] if not str(s[0]).endswith("abs.png")], archive) == relative(want[0], linked)
    for (path, _), (member, _) in zip(want[0], [s for s in got[0] if not str(s[0]).endswith("abs.png")]):
        assert read_member(member) == Path(path).read_bytes()
    with pytest.raises(OSError, match="a link to a file the archive does not hold"):
        read_member(next(m for m, _ in got[0] if str(m).endswith("abs.png")))


def test_class_folders_packed_under_folders_of_other_names_are_refused_naming_where_they_are(image_folder,
                                                                                              tmp_path, capsys):
    """tar cf train.tar data/imagenet/train: the one top folder, data/, is named neither as the archive nor as a
    split, so it is one class (it may be one class's folders of images: it is not taken apart), and training
    refused '1 class folder' without saying where the classes were; now the refusal, and eval's for a model's
    classes, name the folder holding them and the tar command that packs them at the top."""
    archive = tmp_path / "train.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(str(image_folder / "train"), arcname="data/imagenet/train")
    assert find_images(str(archive))[1] == ["data"]
    hint = ("its one class folder data/ holds only data/imagenet/train/, whose 2 folders (n01, n02) look like the "
            "classes (a top folder is passed through only when named as the archive or as a split): pack them at "
            "the archive's top (tar cf train.tar -C data/imagenet/train .)")
    assert cli.main(["train", "--dataset", "imagenet2012", "--dataset_path", str(archive), "--class_num", "2",
                     "--image_size", "32", "--num_workers", "0", "--device_target", "CPU",
                     "--save_checkpoint_path", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert f"a classifier needs two classes or more; {hint}\n" in err and not (tmp_path / "run").exists()
    with pytest.raises(DataError, match=r"class folder\(s\) data are not among the 2 classes .*\(n01, n02\); "
                                        + re.escape(hint) + "$"):
        find_images(str(archive), ["n01", "n02"])
    direct = tmp_path / "val.tar"  # one folder, data/, holding the classes
    with tarfile.open(direct, "w") as tf:
        tf.add(str(image_folder / "train"), arcname="data")
    with pytest.raises(DataError, match=re.escape("its one class folder data/ holds 2 folders (n01, n02) alone, "
                                                  "which look like the classes") + r".*\(tar cf val.tar -C data \.\)$"):
        find_images(str(direct), ["n01", "n02"])
    one = tmp_path / "one.tar"  # a class of images beside its folders: no such hint
    with tarfile.open(one, "w") as tf:
        tf.add(str(image_folder / "train"), arcname="n01")
        tf.add(str(image_folder / "train" / "n01" / "img_0.JPEG"), arcname="n01/img_0.JPEG")
    with pytest.raises(DataError, match=r"are not among the 2 classes [^;]*$"):
        find_images(str(one), ["n00", "n02"])


def test_class_folders_packed_as_links_to_what_the_archive_does_not_hold_are_named(image_folder, tmp_path):
    """tar stores a class folder that is a symbolic link as the link (without -h), not its images: such a class
    (a link to an absolute path, or up out of the archive) was left out without a word, the labels of the
    classes after it numbered without it; named in a warning, as the extracted folder's broken link is. A link to
    a class folder it holds is one folder as two classes, said as the extracted folder says it."""
    train = image_folder / "train"
    archive = tmp_path / "train.tar"
    with tarfile.open(archive, "w") as tf:
        tf.add(str(train / "n02"), arcname="train/n02")
        for name, target in (("train/n01", str(train / "n01")), ("train/n00", "../../elsewhere/n00")):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, target
            tf.addfile(link)
    with pytest.warns(DataWarning, match=rf"image archive '{archive}': n00, n01 are 2 links to what the archive does "
                                         r"not hold \(a class folder linked when packed\? tar -h packs the folders "
                                         r"links point to\): not read as classes, the classes after them numbered"):
        samples, classes = find_images(str(archive))
    assert classes == ["n02"] and {y for _, y in samples} == {0}
    with pytest.warns(DataWarning, match=r"n00, n01 are 2 links .*: not read as classes$"):
        find_images(str(archive), ["n00", "n01", "n02"])  # labelled by the model's list: none numbered otherwise
    whole = tmp_path / "whole.tar"
    with tarfile.open(whole, "w") as tf:
        tf.add(str(train), arcname=".")
        link = tarfile.TarInfo("n03")  # a link to a class folder it holds: that class's images again
        link.type, link.linkname = tarfile.SYMTYPE, "n02"
        tf.addfile(link)
    with pytest.warns(DataWarning, match=rf"image archive '{whole}': class folders n02 and n03 are one folder "
                                         r"\(through symbolic links\)"):
        assert find_images(str(whole))[1] == ["n01", "n02", "n03"]


def test_sparse_and_compressed_archives_are_refused_by_name(image_folder, tmp_path):
    sparse = tmp_path / "sparse.tar"
    with tarfile.open(sparse, "w", format=tarfile.GNU_FORMAT) as tf:
        info = tarfile.TarInfo("c/x.png")
        info.type = tarfile.GNUTYPE_SPARSE
        tf.addfile(info)
    with pytest.raises(DataError, match=rf"archive {sparse}: c/x.png is stored sparse \(tar -S\)"):
        find_images(str(sparse))
    root = tmp_path / "P"
    root.mkdir()
    plain = pack(image_folder / "train", tmp_path / "t.tar", "train")
    (root / "train.tar.gz").write_bytes(gzip.compress(open(plain, "rb").read()))
    opts = DataOptions("imagenet2012", str(root), batch_size=4, image_size=32, seed=3, num_workers=0,
                       channels_last=False)
    with pytest.raises(DataError, match=rf"{root / 'train.tar.gz'} is a compressed tar archive.*uncompressed"):
        build_loader(opts, True, torch.device("cpu"))
    with pytest.raises(DataError, match=rf"{root / 'train.tar.gz'} is a compressed tar archive"):
        build_loader(DataOptions("imagenet2012", str(root / "train.tar.gz"), 4, 32, 3, 0, False), True,
                     torch.device("cpu"))


def test_one_process_walks_an_archive_while_the_others_wait_for_its_listing(image_folder, tmp_path, monkeypatch,
                                                                              capsys):
    """Processes listing one archive at once (torchrun's ranks on a machine) walk it one at a time: while another
    holds the walk's lock, a process waits and reads the listing once it is kept, not walking it itself; it says
    whose walk it waits for after a while. A walker gone without keeping one leaves the walk to the next, and the
    lock file goes with the walk."""
    import fcntl
    import threading

    from mobilenet_v1 import archive as archive_mod

    cache = tmp_path / "cache"
    monkeypatch.setenv(archive_mod.CACHE_ENV, str(cache))
    monkeypatch.setattr(archive_mod, "WALK_WAIT_NOTE_SECONDS", 0.3)
    archive = pack_per_class(image_folder / "train", tmp_path / "train.tar")
    real = archive_mod._walk
    walked = real(archive)
    walks = []
    monkeypatch.setattr(archive_mod, "_walk", lambda path: walks.append(path) or real(path))
    cached = archive_mod._cache_file(archive, os.stat(archive))
    cache.mkdir()

    def hold():  # another process's walk under way: its lock taken, its number written
        fd = os.open(cached + ".lock", os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, b"4242\n")
        return fd

    def list_in_thread():
        got = []
        thread = threading.Thread(target=lambda: got.append(archive_mod._listing(archive)), daemon=True)
        thread.start()
        return thread, got

    holder = hold()
    thread, got = list_in_thread()
    time.sleep(0.8)
    assert thread.is_alive() and walks == []  # waits, walking nothing
    archive_mod._write_cache(cached, walked)  # the other's listing kept: read at once, its lock still held
    thread.join(5)
    assert not thread.is_alive() and walks == [] and got[0].files == walked.files
    assert f"archive {archive}: waiting for another process (process 4242) that is listing it" \
        in capsys.readouterr().err
    os.close(holder)

    os.unlink(cached)
    holder = hold()
    thread, got = list_in_thread()
    time.sleep(0.5)
    assert thread.is_alive() and walks == []
    os.close(holder)  # gone without a listing kept: this one walks
    thread.join(5)
    assert not thread.is_alive() and walks == [archive] and got[0].files == walked.files
    assert sorted(os.listdir(cache)) == [os.path.basename(cached)]  # kept; the lock file removed
    # A walk that could keep no listing (a name with a line break, a full disk) says so in its lock file as it
    # lets go: those that waited then walk at once, side by side, not one after another (helper-374).
    os.unlink(cached)
    waiting = os.open(cached + ".lock", os.O_RDWR | os.O_CREAT)  # opened by a process waiting for the walk
    monkeypatch.setattr(archive_mod, "_write_cache", lambda *a: None)
    archive_mod._listing(archive)
    assert os.pread(waiting, 32, 0) == b"unkept\n" and not os.path.exists(cached + ".lock")
    os.close(waiting)
    holder = hold()
    got = []
    thread = threading.Thread(target=lambda: got.append(archive_mod._walk_lock(archive, cached)), daemon=True)
    thread.start()
    time.sleep(0.5)
    archive_mod._release_walk_lock(holder, cached, kept=False)
    thread.join(5)
    assert got == [(None, None)]  # no lock taken: its own walk at once


def test_a_listing_is_kept_between_processes_until_the_archive_changes(image_folder, tmp_path, monkeypatch):
    """The walk's listing is kept in MOBILENET_V1_CACHE: a new process (here: the in-process one forgotten)
    reads it instead of walking, and gets the same samples and offsets; a damaged listing is walked anew,
    and so is an archive rewritten; an empty MOBILENET_V1_CACHE keeps none."""
    from mobilenet_v1 import archive as archive_mod

    cache = tmp_path / "cache"
    monkeypatch.setenv(archive_mod.CACHE_ENV, str(cache))
    walks = []
    real = archive_mod._walk
    monkeypatch.setattr(archive_mod, "_walk", lambda path: walks.append(path) or real(path))
    archive = pack_per_class(image_folder / "train", tmp_path / "train.tar")

    def listed():
        archive_mod.forget_indexes()
        samples = find_images(archive)[0]
        return [(str(p), p.offset, p.size, y) for p, y in samples]

    first = listed()
    kept = list(cache.iterdir())
    assert len(walks) == 1 and len(kept) == 1 and kept[0].suffix == ".npz"
    assert listed() == first and len(walks) == 1  # read, not walked
    kept[0].write_bytes(kept[0].read_bytes()[:100])  # cut short
    assert listed() == first and len(walks) == 2
    (image_folder / "train" / "n02" / "new.JPEG").write_bytes(jpeg_bytes(smooth_image(30, 30, 3)))
    pack_per_class(image_folder / "train", archive)  # rewritten in place: another size and time
    again = listed()
    assert len(walks) == 3 and len(again) == len(first) + 1
    # Rewritten in place to the same size with its modification time put back (as cp -p or rsync -a leave
    # it): its change time tells it apart, and it is walked anew.
    before = os.stat(archive)
    data = bytearray(Path(archive).read_bytes())
    victim = find_images(archive)[0][0][0]
    data[victim.offset:victim.offset + 16] = bytes(16)
    Path(archive).write_bytes(bytes(data))
    os.utime(archive, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(archive).st_size == before.st_size and listed() == again and len(walks) == 4
    # ... in this process too, whose listings were kept by size and modification time: a class renamed (same
    # size) was read by the old listing, the old class's name and the image offsets of the file before.
    renamed = tmp_path / "renamed"
    shutil.copytree(image_folder / "train", renamed)
    os.rename(renamed / "n02", renamed / "n09")
    packed = Path(pack_per_class(renamed, tmp_path / "renamed.tar")).read_bytes()
    before = os.stat(archive)
    assert len(packed) == before.st_size
    with open(archive, "r+b") as f:
        f.write(packed)
    os.utime(archive, ns=(before.st_atime_ns, before.st_mtime_ns))
    samples, classes = find_images(archive)[:2]  # not forgotten in between
    assert classes == ["n01", "n09"] and len(walks) == 5
    again = [(str(p), p.offset, p.size, y) for p, y in samples]
    # Not a listing (a .npy saved under its name): walked anew, not an error; nor a listing damaged in ways
    # numpy's reader does not call damage (a flag bit of its zip: NotImplementedError; an empty array), which
    # ended every run with a traceback.
    newest = max(cache.iterdir(), key=os.path.getmtime)
    with open(newest, "wb") as f:
        np.save(f, np.arange(3))
    assert listed() == again and len(walks) == 6
    newest = max(cache.iterdir(), key=os.path.getmtime)
    raw = bytearray(newest.read_bytes())
    central = raw.index(b"PK\x01\x02")
    raw[central + 8] |= 0x20  # the general-purpose flags' bit 5: "compressed patched data"
    newest.write_bytes(bytes(raw))
    assert listed() == again and len(walks) == 7
    newest = max(cache.iterdir(), key=os.path.getmtime)
    with np.load(newest) as kept:
        arrays = dict(kept)
    np.savez(newest.with_suffix(""), **{**arrays, "version": np.zeros(0, np.int64)})
    assert listed() == again and len(walks) == 8
    # The archive replaced while it is walked: that listing is not kept under the key of the version before.
    for f in cache.iterdir():
        f.unlink()
    monkeypatch.setattr(archive_mod, "_walk", lambda path: walks.append(path) or os.utime(path) or real(path))
    assert listed() == again and not list(cache.iterdir())  # (walked twice: its stat changed each time)
    monkeypatch.setattr(archive_mod, "_walk", lambda path: walks.append(path) or real(path))
    monkeypatch.setenv(archive_mod.CACHE_ENV, "")
    walked = len(walks)
    assert listed() == again and len(walks) == walked + 1 and not list(cache.iterdir())


def test_a_folder_of_class_archives_reads_as_the_folder_they_were_packed_from(image_folder, tmp_path):
    """train/ holding one tar a class (ImageNet's training archive extracted once: n01.tar, n02.tar): the
    folder's classes, labels, images in the same order, the same images held out by val_split, and the
    same evaluation batches; a model's class list labels it as it labels the folder. Class archives packed with
    their folder (tar cf n01.tar n01), in a folder or in train.tar as ImageNet's, hold out the same images (their
    names were hashed as n01/n01/...), and a hard link in one reads its target."""
    folder = image_folder / "train"
    split, wrapped = tmp_path / "P" / "train", tmp_path / "W" / "train"
    for root, inside in ((split, ""), (wrapped, "{}/")):  # W: each packed with its folder (tar cf n01.tar n01)
        root.mkdir(parents=True)
        for cls in ("n01", "n02"):
            with tarfile.open(root / f"{cls}.tar", "w") as tf:
                for name in sorted(os.listdir(folder / cls)):
                    tf.add(str(folder / cls / name), arcname=inside.format(cls) + name)

    def named(samples, root):  # a class archive's image by the path it extracts to
        return [(re.sub(r"^(n0[12])\.tar/(n0[12]/)?", r"\1/", os.path.relpath(str(p), root)), y) for p, y in samples]

    nested = tmp_path / "C" / "train.tar"  # ImageNet's training archive: class archives in one, each with its folder
    nested.parent.mkdir()
    with tarfile.open(nested, "w") as tf:
        for cls in ("n01", "n02"):
            tf.add(str(wrapped / f"{cls}.tar"), arcname=f"{cls}.tar")
    # A hard link in such an archive names its target with the folder: read as that file's bytes (the folder taken
    # off the link's name only, it was "a link to a file the archive does not hold").
    linked = tmp_path / "H" / "train.tar"
    linked.parent.mkdir()
    first = sorted(os.listdir(folder / "n01"))[0]
    with tarfile.open(tmp_path / "H" / "n01.tar", "w") as tf:
        tf.add(str(folder / "n01" / first), arcname=f"n01/{first}")
        link = tarfile.TarInfo(f"n01/dup_{first}")
        link.type, link.linkname = tarfile.LNKTYPE, f"n01/{first}"
        tf.addfile(link)
    with tarfile.open(linked, "w") as tf:
        tf.add(str(tmp_path / "H" / "n01.tar"), arcname="n01.tar")
        tf.add(str(wrapped / "n02.tar"), arcname="n02.tar")
    got = dict(relative(find_images(str(linked))[0], linked))
    assert got[f"n01/dup_{first}"] == got[f"n01/{first}"] == 0
    assert {p: read_member(p) for p, _ in find_images(str(linked))[0] if "dup_" in str(p)} == {
        p: (folder / "n01" / first).read_bytes() for p, _ in find_images(str(linked))[0] if "dup_" in str(p)}
    for held in (True, False):  # the same images held out, the class's folder in its archive or not
        want = relative(find_images(str(folder), None, Holdout(0.34, held))[0], folder)
        assert named(find_images(str(wrapped), None, Holdout(0.34, held))[0], wrapped) == want
        assert relative(find_images(str(nested), None, Holdout(0.34, held))[0], nested) == want
    assert class_folders(str(split)) == ["n01", "n02"]
    for classes in (None, ["x", "n02", "n01"]):
        want, want_classes = find_images(str(folder), classes)
        got, got_classes = find_images(str(split), classes)
        assert got_classes == want_classes and named(got, split) == relative(want, folder) and len(got) == 15
        assert all(read_member(p) == open(f, "rb").read() for (p, _), (f, _) in zip(got, want))
        for held in (True, False):
            assert named(find_images(str(split), classes, Holdout(0.34, held))[0], split) == \
                relative(find_images(str(folder), classes, Holdout(0.34, held))[0], folder)
    batches = []
    for root in (folder, split):
        opts = DataOptions("imagenet2012", str(root), batch_size=4, image_size=32, seed=3, num_workers=0,
                           channels_last=False, val_split=0.34)
        with build_loader(opts, False, torch.device("cpu"), drop_last=False) as loader:
            batches.append([(x, y) for x, y in loader])
    assert len(batches[0]) == 2 and all(torch.equal(a, c) and torch.equal(b, d)
                                        for (a, b), (c, d) in zip(*batches))
    # Classes in the order of the folders they extract to: a before a-b, though a-b.tar sorts before a.tar.
    odd, extracted = tmp_path / "odd", tmp_path / "extracted"
    odd.mkdir()
    for cls in ("a", "a-b"):
        (extracted / cls).mkdir(parents=True)
        (extracted / cls / "x.jpg").write_bytes(jpeg_bytes(smooth_image(20, 20, len(cls))))
        with tarfile.open(odd / f"{cls}.tar", "w") as tf:
            tf.add(str(extracted / cls / "x.jpg"), arcname="x.jpg")
    assert class_folders(str(odd)) == find_images(str(odd))[1] == find_images(str(extracted))[1] == ["a", "a-b"]


def test_kept_listings_unread_for_30_days_are_removed_when_one_is_written(image_folder, tmp_path, monkeypatch):
    """Writing a listing removes those unread for CACHE_UNUSED_DAYS and temporary and lock files left a day ago;
    reading one keeps it (its time is refreshed); files not named as listings stay."""

    from mobilenet_v1 import archive as archive_mod

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv(archive_mod.CACHE_ENV, str(cache))
    day = 86400
    ages = {"a" * 32 + ".npz": 31, "b" * 32 + ".npz": 29, "c" * 32 + ".npz.77.tmp": 2, "d" * 32 + ".npz.78.tmp": 0.5,
            "notes.txt": 400, "E" * 32 + ".npz": 400, "f" * 32 + ".npz.lock": 2, "0" * 32 + ".npz.lock": 0.5}
    for name, days in ages.items():
        (cache / name).write_bytes(b"x")
        os.utime(cache / name, (time.time() - days * day,) * 2)
    archive_mod.forget_indexes()
    find_images(pack(image_folder / "train", tmp_path / "train.tar", "train"))
    left = sorted(p.name for p in cache.iterdir())
    written = [n for n in left if n not in ages]
    assert len(written) == 1 and sorted(set(left) - set(written)) == sorted(
        ["b" * 32 + ".npz", "d" * 32 + ".npz.78.tmp", "notes.txt", "E" * 32 + ".npz", "0" * 32 + ".npz.lock"])
    os.utime(cache / written[0], (time.time() - 40 * day,) * 2)
    archive_mod.forget_indexes()
    find_images(str(tmp_path / "train.tar"))  # read, so kept
    assert time.time() - os.path.getmtime(cache / written[0]) < 600
    find_images(pack(image_folder / "validation_preprocess", tmp_path / "val.tar", "val"))  # another written
    assert (cache / written[0]).exists() and len(list(cache.iterdir())) == 7
    # The folder is looked through once a process, not at each listing written: ImageNet's 1,000 class archives,
    # listed one after the other, each looked through the listings of those before (half a million stats).
    looked = []
    monkeypatch.setattr(archive_mod, "_prune", looked.append)
    other = tmp_path / "other"
    monkeypatch.setenv(archive_mod.CACHE_ENV, str(other))
    archive_mod.forget_indexes()
    split = tmp_path / "classes"
    split.mkdir()
    for cls in ("n01", "n02", "n03"):
        with tarfile.open(split / f"{cls}.tar", "w") as tf:
            tf.add(str(image_folder / "train" / "n01" / sorted(os.listdir(image_folder / "train" / "n01"))[0]),
                   arcname="a.JPEG")
    assert find_images(str(split))[1] == ["n01", "n02", "n03"]
    assert len(list(other.iterdir())) == 3 and looked == [str(other)]


def test_odd_member_names_later_copies_and_link_loops_read_as_once_extracted(tmp_path):
    """Names tar writes otherwise than it extracts them (a leading / from ``tar -P``, ``.`` and empty parts)
    are the files they extract to, each once; a name stored again after a (hard or symbolic) link of it, or after
    the link's target, is read as extracting leaves it; a symbolic link to a folder it lies in (a loop) adds nothing, as
    a folder walk reads that folder once."""
    png = {i: jpeg_bytes(smooth_image(20, 20, i), fmt="PNG") for i in range(6)}

    def archive_of(name, members):
        path = tmp_path / name
        with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tf:
            for member, what in members:
                info = tarfile.TarInfo(member)
                if isinstance(what, bytes):
                    info.size = len(what)
                    tf.addfile(info, io.BytesIO(what))
                else:
                    info.type, info.linkname = what
                    tf.addfile(info)
        return str(path)

    def read(path):
        samples, classes = find_images(path)
        return classes, [(os.path.relpath(m, path), label, read_member(m)) for m, label in samples]

    absolute = archive_of("absolute.tar", [("/cat/0.png", png[0]), ("/dog/1.png", png[1])])
    assert read(absolute) == (["cat", "dog"], [("cat/0.png", 0, png[0]), ("dog/1.png", 1, png[1])])
    dotted = archive_of("dotted.tar", [("cat/./0.png", png[0]), ("cat//1.png", png[1]), ("cat/1.png", png[2]),
                                       ("dog/2.png", png[3])])
    assert read(dotted) == (["cat", "dog"], [("cat/0.png", 0, png[0]), ("cat/1.png", 0, png[2]),
                                             ("dog/2.png", 1, png[3])])
    hard = (tarfile.LNKTYPE, "cat/0.png")
    later = archive_of("later.tar", [("cat/0.png", png[0]), ("dog/a.png", hard), ("dog/b.png", hard),
                                     ("dog/a.png", png[4]), ("cat/0.png", png[5])])
    assert read(later) == (["cat", "dog"], [("cat/0.png", 0, png[5]), ("dog/a.png", 1, png[4]),
                                            ("dog/b.png", 1, png[0])])
    # A symbolic link stored, then a file of its name: extracting leaves the file.
    relinked = archive_of("relinked.tar", [("cat/0.png", png[0]), ("dog/a.png", (tarfile.SYMTYPE, "../cat/0.png")),
                                           ("dog/a.png", png[1])])
    assert read(relinked) == (["cat", "dog"], [("cat/0.png", 0, png[0]), ("dog/a.png", 1, png[1])])
    loop = archive_of("loop.tar", [("cat/0.png", png[0]), ("cat/again", (tarfile.SYMTYPE, ".")),
                                   ("cat/s/up", (tarfile.SYMTYPE, "../..")), ("dog/1.png", png[1]),
                                   ("dog/cats", (tarfile.SYMTYPE, "../cat"))])
    assert read(loop) == (["cat", "dog"], [("cat/0.png", 0, png[0]), ("dog/1.png", 1, png[1]),
                                           ("dog/cats/0.png", 1, png[0])])


def test_a_folder_a_class_reaches_twice_through_links_is_read_once_as_the_folders_walk_reads_it(tmp_path):
    """A class folder holding a link to a sub-folder of its own (cat/best -> 2023) read that sub-folder's images
    twice from the archive, once from the folder (c077ec4): now once, under the name the folder's walk keeps (the
    first in name order: cat/2023, but cat/a for cat/a -> z), in training's, val_split's and predict's listings,
    from the walk and from the listing kept. A link to another class's folder is that class's images again, as
    in the folder."""
    from mobilenet_v1 import archive as archive_mod
    from mobilenet_v1.data import image_files_under

    folder = tmp_path / "train"
    for i, name in enumerate(("cat/2023/0.png", "cat/2023/1.png", "cat/z/2.png", "cat/3.png", "dog/4.png")):
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(jpeg_bytes(smooth_image(20, 20, i), fmt="PNG"))
    (folder / "cat" / "best").symlink_to("2023", target_is_directory=True)
    (folder / "cat" / "a").symlink_to("z", target_is_directory=True)
    (folder / "dog" / "more").symlink_to("../cat/2023", target_is_directory=True)
    archive = pack(folder, tmp_path / "train.tar", "train")
    want = relative(find_images(str(folder))[0], folder)
    assert want == [("cat/3.png", 0), ("cat/2023/0.png", 0), ("cat/2023/1.png", 0), ("cat/a/2.png", 0),
                    ("dog/4.png", 1), ("dog/more/0.png", 1), ("dog/more/1.png", 1)]
    for _ in ("walked", "kept"):
        archive_mod.forget_indexes()
        assert relative(find_images(archive)[0], archive) == want
        for held in (True, False):
            assert relative(find_images(archive, holdout=Holdout(0.5, held))[0], archive) == \
                relative(find_images(str(folder), holdout=Holdout(0.5, held))[0], folder)
        predicted = [os.path.relpath(m, archive) for m in archive_mod.archive_images(archive, (".png",))]
        assert predicted == [os.path.join("train", os.path.relpath(f, folder)) for f in image_files_under(str(folder))]


def test_folder_links_resolve_as_a_pass_over_every_file_for_each_link_resolved_them():
    """Links to folders take their targets' files by bisecting the names sorted once (a pass over every file
    for each link took hours for a thousand class links among ImageNet's files): the same files, values and
    order as that pass, for links to folders, to files, to links, to nothing, loops and links under links."""
    import random

    from mobilenet_v1.archive import _links_to_files_resolved, _resolve_links

    def by_passes(links, files):  # the listing as each link's pass over every file made it
        # (Links to files, and the targets of links to folders, as _resolve_links finds them: what this reference
        # checks is the bisection that follows.)
        pending = _links_to_files_resolved(links, files)
        folder_links = {name for name, _ in pending}

        def through_link(n):
            parts = n.split("/")
            return any("/".join(parts[:k]) in folder_links for k in range(1, len(parts)))

        for name, target in pending:
            if name.startswith(target + "/"):
                continue
            under = target + "/"
            inside = [(n, where) for n, where in files.items() if n.startswith(under) and not through_link(n)]
            if inside:
                files.update((name + "/" + n[len(under):], where) for n, where in inside)
            else:
                files[name] = (-1, 0)

    rng = random.Random(0)
    parts = ["a", "b", "a-b", "a0", "a.b", "c"]
    for trial in range(300):
        files = {"/".join(rng.choice(parts) for _ in range(rng.randint(1, 3))) + f"/{i}.jpg": (i, 1)
                 for i in range(rng.randint(0, 30))}
        links = {}
        for _ in range(rng.randint(1, 8)):
            name = "/".join(rng.choice(parts) for _ in range(rng.randint(1, 3)))
            target = rng.choice(["/".join(rng.choice(parts) for _ in range(rng.randint(1, 3))), name + "/..",
                                 rng.choice(list(files) or ["x"]), rng.choice(list(links) or ["y"]), "missing"])
            links[name] = os.path.normpath(target)
        want, got = dict(files), dict(files)
        by_passes(dict(links), want)
        _resolve_links(dict(links), got)
        assert list(got.items()) == list(want.items()), (trial, links)


def test_a_folder_of_class_archives_is_listed_once_a_process_until_an_archive_changes(image_folder, tmp_path,
                                                                                     monkeypatch):
    """Each find_images over a folder of class archives read every archive's kept listing again (ImageNet's
    1,000: some 17 s a loader, paid by training's loader, its held-out one, eval at each size); now once a
    process, as a split's archive is, and again once an archive is rewritten."""
    from mobilenet_v1 import archive as archive_mod

    split = tmp_path / "classes"
    split.mkdir()
    source = image_folder / "train" / "n01"
    for cls in ("n01", "n02", "n03"):
        with tarfile.open(split / f"{cls}.tar", "w") as tf:
            tf.add(str(source / "img_0.JPEG"), arcname="a.JPEG")
    listed = []
    real = archive_mod._listing
    monkeypatch.setattr(archive_mod, "_listing", lambda path: listed.append(path) or real(path))
    first, _ = find_images(str(split))
    assert len(listed) == 3
    again, _ = find_images(str(split))
    assert list(again) == list(first) and find_images(str(split), ["n03", "n02", "n01"])[0].labels.tolist() == [2, 1, 0]
    assert len(listed) == 3  # none read again
    with tarfile.open(split / "n02.tar", "w") as tf:  # rewritten: two images now
        for name in ("a.JPEG", "b.JPEG"):
            tf.add(str(source / "img_0.JPEG"), arcname=name)
    samples, _ = find_images(str(split))
    assert str(split / "n02.tar") in listed[3:] and len(samples) == 4


def test_an_archive_is_named_tar_in_any_case_and_is_a_file(tmp_path):
    """A split copied from a system that names files in capitals (TRAIN.TAR) is an archive as train.tar is."""
    for name in ("TRAIN.TAR", "val.Tar"):
        with tarfile.open(tmp_path / name, "w"):
            pass
        assert is_archive(str(tmp_path / name))
    (tmp_path / "folder.tar").mkdir()
    assert not is_archive(str(tmp_path / "folder.tar")) and not is_archive(str(tmp_path / "missing.tar"))


def test_class_archives_packed_inside_a_folder_are_named_not_said_to_be_missing(image_folder, tmp_path):
    """ImageNet's training archive extracted one level (train/n01.tar, ...) and packed again (tar cf train.tar
    train): class archives are read at an archive's top only, and this one was said to hold "no class folders
    or class archives"."""
    extracted = tmp_path / "train"
    extracted.mkdir()
    with tarfile.open(pack_per_class(image_folder / "train", tmp_path / "outer.tar")) as tf:
        tf.extractall(extracted, filter="data")
    packed = pack(extracted, tmp_path / "again.tar", "train")
    with pytest.raises(DataError, match=rf"image archive '{packed}' has no class folders or class archives at its "
                                        r"top; it holds class archives in train/ \(n01\.tar, n02\.tar\).*"
                                        r"tar cf again\.tar -C train \.\)$"):
        find_images(packed)


def test_predict_on_a_folder_of_tars_points_at_the_tars(image_folder, tmp_path):
    """predict reads a .tar named itself, not one inside a folder it is given: a folder holding only shards or
    class archives said "no image files in it", true but not what to do; it now names the archives to give."""
    from mobilenet_v1.predict import image_files

    folder = tmp_path / "packed"
    folder.mkdir()
    pack(image_folder / "train", folder / "train.tar", ".")
    with pytest.raises(ValueError, match=rf"folder {folder}: no image files \(.*\) in it; its \.tar archives "
                                         r"\(train\.tar\) are read when named themselves: give them, not the folder"):
        image_files([str(folder)])
    assert image_files([str(folder / "train.tar")])  # as the message says


def test_a_listing_kept_from_before_system_folders_were_left_out_is_not_read(tmp_path, monkeypatch):
    """Listings are kept between processes (archive.cache_folder): one written before __MACOSX was left out
    (helper-289) brought it back as class 0, every label shifted, until the archive changed."""
    from mobilenet_v1 import archive

    folder = tmp_path / "t"
    for cls in ("cat", "dog"):
        (folder / cls).mkdir(parents=True)
        (folder / cls / "0.jpg").write_bytes(jpeg_bytes(smooth_image(16, 16, 1)))
    (folder / "__MACOSX" / "cat").mkdir(parents=True)
    (folder / "__MACOSX" / "cat" / "._0.jpg").write_bytes(b"AppleDouble")
    tar = pack(folder, tmp_path / "t.tar", ".")

    def forget():  # what one process keeps of a listing: the next reads the kept file
        for value in vars(archive).values():
            if hasattr(value, "cache_clear"):
                value.cache_clear()

    with monkeypatch.context() as m:  # the code of before: hidden names only, its listings' version
        m.setattr(archive, "_CACHE_VERSION", 4)
        m.setattr(archive, "is_hidden_name", lambda name: name.startswith("."))
        assert class_folders(tar) == ["__MACOSX", "cat", "dog"]
    forget()
    assert class_folders(tar) == ["cat", "dog"]


def test_the_listings_folder_follows_the_environment_and_none_is_kept_without_a_home(monkeypatch, tmp_path):
    """MOBILENET_V1_CACHE, else XDG_CACHE_HOME, else ~/.cache; where ~ is not found (no HOME, a user id without
    an account) none is kept: the listings went to a folder named ~ under the current one (helper-325)."""
    from mobilenet_v1 import archive as archive_mod

    monkeypatch.delenv(archive_mod.CACHE_ENV, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert archive_mod.cache_folder() == str(tmp_path / ".cache" / "mobilenet_v1" / "archives")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert archive_mod.cache_folder() == str(tmp_path / "xdg" / "mobilenet_v1" / "archives")
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # to be ignored, says the XDG specification
    assert archive_mod.cache_folder() == str(tmp_path / ".cache" / "mobilenet_v1" / "archives")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", "")  # the root's .cache is no one's
    assert archive_mod.cache_folder() == ""
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # ~ not found: as Python leaves it
    assert archive_mod.cache_folder() == ""
    monkeypatch.setenv(archive_mod.CACHE_ENV, str(tmp_path / "mine"))
    assert archive_mod.cache_folder() == str(tmp_path / "mine")


def test_a_listing_is_written_through_a_fresh_file_of_its_own(image_folder, tmp_path, monkeypatch):
    """Two writers of one PID number (two containers, one NFS home) or a link put beforehand in a shared
    listings folder: the temporary file is made afresh under a name no one can foretell (O_EXCL), so a
    file the link names is not written over, and the listing is kept (helper-366)."""
    from mobilenet_v1 import archive as archive_mod

    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv(archive_mod.CACHE_ENV, str(cache))
    archive = pack(image_folder / "train", tmp_path / "train.tar", "train")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    key = os.path.basename(archive_mod._cache_file(archive, os.stat(archive)))
    os.symlink(victim, cache / f"{key}.{os.getpid()}.tmp")  # the name the writer used to take
    walks = []
    real = archive_mod._walk
    monkeypatch.setattr(archive_mod, "_walk", lambda path: walks.append(path) or real(path))

    def listed():
        archive_mod.forget_indexes()
        return [(str(p), p.offset, p.size, y) for p, y in find_images(archive)[0]]

    first = listed()
    assert victim.read_text() == "precious"
    assert (cache / key).is_file() and not (cache / key).is_symlink()
    assert listed() == first and len(walks) == 1  # read, not walked


def test_the_listings_folder_of_the_environment_has_its_tilde_expanded(monkeypatch, tmp_path):
    """MOBILENET_V1_CACHE=~/x as a Dockerfile's ENV or a unit file gives it (no shell expanded it) is the home's
    x, not a folder named ~ under the current one; where no home is found, none is kept (helper-366)."""
    from mobilenet_v1 import archive as archive_mod

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv(archive_mod.CACHE_ENV, "~/listings")
    assert archive_mod.cache_folder() == str(tmp_path / "listings")
    monkeypatch.setattr(os.path, "expanduser", lambda path: path)  # ~ not found: as Python leaves it
    assert archive_mod.cache_folder() == ""


@pytest.mark.parametrize("how", ["hole", "concatenated"])
def test_an_archive_with_data_after_its_end_block_is_refused(image_folder, tmp_path, how):
    """A download preallocated and not finished (a block of zeros where a piece is still missing) or two archives
    joined with cat: tar ends its listing at the first end-of-archive block, leaving every image after it out
    without a word; here it is an error naming the bytes (helper-366)."""
    from mobilenet_v1 import archive as archive_mod

    archive = pack(image_folder / "train", tmp_path / "train.tar", "train")
    whole = len(find_images(archive)[0])
    data = Path(archive).read_bytes()
    if how == "hole":
        with tarfile.open(archive) as tf:
            header = tf.getmembers()[5].offset  # a member's headers (and what follows) not yet downloaded
        data = data[:header] + bytes(2 * tarfile.BLOCKSIZE) + data[header + 2 * tarfile.BLOCKSIZE:]
    else:
        data = data + data
    broken = tmp_path / "broken" / "train.tar"
    broken.parent.mkdir()
    broken.write_bytes(data)
    archive_mod.forget_indexes()
    with pytest.raises(DataError, match="end-of-archive block at byte .* then data at byte"):
        find_images(str(broken))
    assert whole == 15


def test_an_image_is_not_read_from_an_archive_replaced_after_it_was_listed(image_folder, tmp_path):
    """A data set refreshed under a running job (rsync, or cp to a temporary name then mv): the listing's offsets
    are the old file's, and the new one holds pieces of other images there, some of which decode; a read says
    so instead (helper-366)."""
    from mobilenet_v1 import archive as archive_mod

    archive_mod.forget_indexes()
    archive = pack(image_folder / "train", tmp_path / "train.tar", "train")
    samples = find_images(archive)[0]
    first = samples[0][0]
    assert read_member(first)
    (image_folder / "train" / "n01" / "new.JPEG").write_bytes(jpeg_bytes(smooth_image(30, 30, 3)))
    pack(image_folder / "train", tmp_path / "next.tar", "train")
    os.replace(tmp_path / "next.tar", archive)
    with pytest.raises(OSError, match="replaced or rewritten after this process listed it"):
        read_member(first)
    archive_mod.forget_indexes()  # listed again (eval lists an archive twice at its start): the new file's offsets
    assert read_member(find_images(archive)[0][0][0])
    with pytest.raises(OSError, match="replaced or rewritten after this process listed it"):
        read_member(first)  # a member of the first listing still is that file's (helper-367)
