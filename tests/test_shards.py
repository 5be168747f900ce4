"""WebDataset shards read in place (mobilenet_v1.archive): samples of files sharing a key (``k.jpg`` and its
label ``k.cls``), in the layouts shards come in, with the samples, labels, batches and runs of the image
folder they were written from."""
import gzip
import io
import json
import os
import tarfile

import pytest
import torch

from mobilenet_v1 import cli, train
from mobilenet_v1.archive import ArchiveError, ArchiveMember, expand_braces, shard_files
from mobilenet_v1.checkpoint import load_file
from mobilenet_v1.config import load_config
from mobilenet_v1.data import DataError, Holdout, find_images, image_split

from conftest import epoch_batches, jpeg_bytes, smooth_image


def add(tf, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tf.addfile(info, io.BytesIO(data))


def write_shards(folder, paths, extra=True):
    """The images of the class folders under ``folder`` as WebDataset samples, in the folder's order, dealt
    into the shards ``paths`` in runs (as webdataset's ShardWriter fills one, then the next): ``<key>.jpg``
    (the file's own bytes), ``<key>.cls`` (its label as text) and, with ``extra``, a ``<key>.json``."""
    samples, _ = find_images(str(folder))
    per = -(-len(samples) // len(paths))
    for n, path in enumerate(paths):
        with tarfile.open(path, "w") as tf:
            for i in range(n * per, min((n + 1) * per, len(samples))):
                file, label = samples[i]
                key = f"{os.path.basename(os.path.dirname(file))}_{i:04d}"
                add(tf, f"{key}.jpg", open(file, "rb").read())
                add(tf, f"{key}.cls", f"{label}\n".encode())
                if extra:
                    add(tf, f"{key}.json", json.dumps({"file": os.path.basename(file)}).encode())
    return samples


def read(path):
    with open(path.archive, "rb") as f:
        f.seek(path.offset)
        return f.read(path.size)


def test_brace_patterns_expand_as_webdataset_names_its_shards():
    assert expand_braces("d/x-{000..002}.tar") == ["d/x-000.tar", "d/x-001.tar", "d/x-002.tar"]
    assert expand_braces("{a,b}-{8..10}.tar") == ["a-8.tar", "a-9.tar", "a-10.tar", "b-8.tar", "b-9.tar", "b-10.tar"]
    assert expand_braces("x-{3..1}.tar") == ["x-3.tar", "x-2.tar", "x-1.tar"]
    assert expand_braces("x-{0..10}.tar")[:2] == ["x-0.tar", "x-1.tar"]  # unpadded, as bash: no bound 0N
    assert expand_braces("plain.tar") == ["plain.tar"]


def test_shards_in_each_layout_give_the_samples_and_labels_of_their_folder(image_folder, tmp_path):
    """A folder of shards (train/ beside val/), shards side by side named by split as the Hub's *-wds data
    sets are (one of them alone in its split), a brace pattern and one shard: the folder's images, bytes
    for bytes, with its labels and order; other members (.json) are left alone; val_split holds out the
    same share of each label."""
    folder = image_folder / "train"
    kinds = tmp_path / "by_folder"
    (kinds / "train").mkdir(parents=True)
    (kinds / "val").mkdir()
    want = write_shards(folder, [kinds / "train" / f"s-{i}.tar" for i in range(3)])
    evals = write_shards(image_folder / "validation_preprocess", [kinds / "val" / "s-0.tar"])
    hub = tmp_path / "hub"
    hub.mkdir()
    write_shards(folder, [hub / f"imagenet1k-train-{i:04d}.tar" for i in range(4)])
    write_shards(image_folder / "validation_preprocess", [hub / "imagenet1k-validation-00.tar"])
    assert image_split(str(hub), True)[0] == str(hub / "imagenet1k-train-*.tar")
    assert image_split(str(hub), False)[0] == str(hub / "imagenet1k-validation-0[0].tar")
    single = tmp_path / "one.tar"
    write_shards(folder, [single])
    for root, train_split, expected in ((kinds, True, want), (kinds, False, evals), (hub, True, want),
                                        (hub, False, evals), (kinds / "train" / "s-{0..2}.tar", True, want),
                                        (single, True, want)):
        split, _ = image_split(str(root), train_split)
        got, classes = find_images(split)
        assert classes is None and len(got) == len(expected) > 0
        assert all(isinstance(p, ArchiveMember) for p, _ in got)
        assert [y for _, y in got] == [y for _, y in expected] and set(y for _, y in got) == {0, 1}
        assert all(read(p) == open(f, "rb").read() for (p, _), (f, _) in zip(got, expected))
    all_names = [str(p) for p, _ in find_images(str(kinds / "train"))[0]]
    for held in (True, False):
        part = find_images(str(kinds / "train"), holdout=Holdout(0.34, held))[0]
        assert [str(p) for p, _ in part] == [n for n in all_names if n in {str(p) for p, _ in part}]
        # round(0.34 * 9) of label 0's images and round(0.34 * 6) of label 1's
        assert sorted(y for _, y in part) == ([0] * 3 + [1] * 2 if held else [0] * 6 + [1] * 4)
    assert not {str(p) for p, _ in find_images(str(kinds / "train"), holdout=Holdout(0.34, True))[0]} & \
        {str(p) for p, _ in find_images(str(kinds / "train"), holdout=Holdout(0.34, False))[0]}


@pytest.mark.parametrize("pipeline", ["cpu", "gpu"])
def test_both_pipelines_give_the_folders_batches_from_shards(image_folder, tmp_path, pipeline):
    """Shards named by split in one folder give the image folder's batches bit for bit, training
    (augmented) and evaluation, through a loader worker; the grayscale, CMYK and PNG-named files decode as
    they do from the folder."""
    hub = tmp_path / "hub"
    hub.mkdir()
    write_shards(image_folder / "train", [hub / f"x-train-{i}.tar" for i in range(2)])
    write_shards(image_folder / "validation_preprocess", [hub / f"x-val-{i}.tar" for i in range(2)])
    for train_split in (True, False):
        batches = []
        for root in (image_folder, hub):
            found, loader = epoch_batches(root, train_split, pipeline)
            batches.append(found)
            assert loader.num_classes == 2 and not loader.bad_samples.files
        assert len(batches[0]) == (3 if train_split else 2) and len(batches[0]) == len(batches[1])
        for (x, y), (x2, y2) in zip(*batches):
            assert torch.equal(x, x2) and torch.equal(y, y2)


def test_shards_that_are_not_samples_are_refused_naming_the_shard_and_key(image_folder, tmp_path):
    image = jpeg_bytes(smooth_image(30, 30, 1))
    cases = {
        "no_label": ([("a.jpg", image), ("a.cls", b"0"), ("b.jpg", image)],
                     r"1 sample\(s\) with an image but no \.cls label: b$"),
        "no_image": ([("a.cls", b"0"), ("a.jpg", image), ("b.cls", b"1"), ("b.txt", b"b")],
                     r"1 sample\(s\) with a \.cls label but no image \(\.jpg.*\): b$"),
        "two": ([("a.cls", b"0"), ("a.jpg", image), ("a.png", image)], r"1 sample\(s\) with two images.*: a$"),
        "words": ([("a.cls", b"tench"), ("a.jpg", image)], r"sample a: its \.cls holds b'tench', not a class number"),
        "negative": ([("a.cls", b"-1"), ("a.jpg", image)], r"sample a: its \.cls holds b'-1', not a class number"),
        "huge": ([("a.cls", b"99999999999999999999"), ("a.jpg", image)], r"sample a: its \.cls holds b'9+', not a"),
        "plus": ([("a.cls", b"+1"), ("a.jpg", image)], r"sample a: its \.cls holds b'\+1', not a class number"),
    }
    for name, (members, message) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        with tarfile.open(folder / "s-0.tar", "w") as tf:
            for member, data in members:
                add(tf, member, data)
        with pytest.raises(DataError, match=rf"shard {folder / 's-0.tar'}: {message}"):
            find_images(str(folder))
    with pytest.raises(DataError, match=r"shards .*s-\{0\.\.3\}\.tar: 3 of its 4 files are not there \(.*s-1\.tar"):
        find_images(str(tmp_path / "words" / "s-{0..3}.tar"))
    with pytest.raises(DataError, match=r"shards .*nothing-\*\.tar: no \.tar files there"):
        find_images(str(tmp_path / "nothing-*.tar"))
    with pytest.raises(DataError, match=r"\{x\} is neither a range"):
        find_images(str(tmp_path / "s-{x}.tar"))
    packed = tmp_path / "packed"  # shards gzipped under their .tar names: named as such, not "no class folders"
    packed.mkdir()
    (packed / "s-0.tar").write_bytes(gzip.compress((tmp_path / "words" / "s-0.tar").read_bytes()))
    with pytest.raises(DataError, match=rf"archive {packed / 's-0.tar'} is compressed \(gzip\)"):
        find_images(str(packed))
    # A folder of .tar files that hold no labels is not read as shards: they are class archives.
    plain = tmp_path / "plain"
    plain.mkdir()
    for cls in ("n01", "n02"):
        with tarfile.open(plain / f"{cls}.tar", "w") as tf:
            add(tf, "img.jpg", image)
    samples, classes = find_images(str(plain))
    assert classes == ["n01", "n02"] and [y for _, y in samples] == [0, 1]


def test_a_shard_whose_first_sample_has_no_label_is_refused_not_read_as_a_class_or_flat_archive(tmp_path):
    """Shards are told from archives of images by their first sample's .cls; one without it made a folder of
    one shard a class archive (every sample labelled 0: top-1 1.0 where the model said class 0) and a shard
    given as the split a flat archive ("no class folders"), the other samples' labels left out unread."""
    image = jpeg_bytes(smooth_image(30, 30, 1))
    members = [("a.jpg", image), ("b.jpg", image), ("b.cls", b"1"), ("c.jpg", image), ("c.cls", b"2")]
    folder = tmp_path / "val"
    folder.mkdir()
    with tarfile.open(folder / "v-00.tar", "w") as tf:
        for member, data in members:
            add(tf, member, data)
    for root in (folder, folder / "v-00.tar"):
        with pytest.raises(DataError, match=rf"archive {folder / 'v-00.tar'} holds WebDataset samples .*1 of them "
                                            rf"have no \.cls \(a\)"):
            find_images(str(root))
    # Class archives and tars of class folders without labels are read as before.
    plain = tmp_path / "plain"
    plain.mkdir()
    with tarfile.open(plain / "n01.tar", "w") as tf:
        add(tf, "img.jpg", image)
    assert find_images(str(plain))[1] == ["n01"]
    with tarfile.open(tmp_path / "packed.tar", "w") as tf:
        add(tf, "n01/img.jpg", image)
    assert find_images(str(tmp_path / "packed.tar"))[1] == ["n01"]


def test_shards_named_another_way_hold_out_the_share_their_run_held_out(image_folder, tmp_path):
    """A run's val_split is found again on the same shards named by a folder, a brace pattern or a glob (eval
    took them for another folder, held nothing out and counted the training samples in its top-1)."""
    from mobilenet_v1.data import held_out_for, held_out_record

    shards = tmp_path / "shards"
    shards.mkdir()
    write_shards(image_folder / "train", [shards / "s-0.tar", shards / "s-1.tar"])
    names = [str(shards), str(shards / "s-{0..1}.tar"), str(shards / "s-*.tar"), str(shards) + "/"]
    for trained in names:
        record = held_out_record(trained, 0.25)
        for evaluated in names:
            assert held_out_for(record, evaluated, "m.ckpt", "imagenet2012") == (0.25, "")
    held = {tuple(sorted(map(str, find_images(n, holdout=Holdout(0.25, True))[0].names))) for n in names}
    assert len(held) == 1
    (tmp_path / "other").mkdir()
    write_shards(image_folder / "train", [tmp_path / "other" / "s-0.tar"])
    share, note = held_out_for(held_out_record(names[1], 0.25), str(tmp_path / "other"), "m.ckpt", "imagenet2012")
    assert share == 0.0 and "another folder" in note


def test_shards_whose_keys_hold_a_dot_are_refused_not_left_out_nor_read_as_class_archives(tmp_path):
    """Keys that hold a dot (a writer given the files' names, n01_1.JPEG, as keys): each sample's files are
    neither an image nor a .cls (the key ends at the first dot), so they were left out without a word (all but
    the samples without a dot), and a folder of such shards, none of whose first sample had a .cls, was read as
    class archives, one class a shard; refused, naming the shard and the files."""
    image = jpeg_bytes(smooth_image(30, 30, 1))
    some, every = tmp_path / "some", tmp_path / "every"
    for folder, keys in ((some, ["k0", "k1", "img.v2", "img.v3"]), (every, ["a_1.JPEG", "a_2.JPEG"])):
        folder.mkdir()
        for n in range(2):
            with tarfile.open(folder / f"s-{n}.tar", "w") as tf:
                for i, key in enumerate(keys):
                    add(tf, f"{key}.jpg", image)
                    add(tf, f"{key}.cls", str(i % 2).encode())
    for spec in (some, some / "s-{0..1}.tar", some / "s-0.tar"):
        with pytest.raises(DataError, match=rf"shard {some / 's-0.tar'}: 2 sample\(s\) whose key holds a dot "
                                            r"\(img\.v2\.cls, img\.v3\.cls\): a key ends at the first dot"):
            find_images(str(spec))
    for spec, shard in ((every, "s-0.tar"), (every / "s-*.tar", "s-0.tar"), (every / "s-1.tar", "s-1.tar")):
        with pytest.raises(DataError, match=rf"shard {every / shard}: 2 sample\(s\) whose key holds a dot "
                                            r"\(a_1\.JPEG\.cls, a_2\.JPEG\.cls\)"):
            find_images(str(spec))
    # A dotted key beside a plain key it starts with (k0.v2 beside k0): its files fell to the sample k0 as fields
    # and were left out without a word. A dotted label alone beside a whole sample (k1.coarse.cls) is a field of it.
    clash = tmp_path / "clash"
    clash.mkdir()
    with tarfile.open(clash / "s-0.tar", "w") as tf:
        for i, key in enumerate(["k0", "k0.v2", "k1"]):
            add(tf, f"{key}.jpg", image)
            add(tf, f"{key}.cls", str(i % 2).encode())
        add(tf, "k1.coarse.cls", b"7")
    with pytest.raises(DataError, match=r"1 sample\(s\) whose key holds a dot \(k0\.v2\.cls\)"):
        find_images(str(clash / "s-0.tar"))
    with tarfile.open(clash / "s-1.tar", "w") as tf:
        for i, key in enumerate(["k0", "k1"]):
            add(tf, f"{key}.jpg", image)
            add(tf, f"{key}.cls", str(i % 2).encode())
        add(tf, "k1.coarse.cls", b"7")
    assert len(find_images(str(clash / "s-1.tar"))[0]) == 2


def test_training_on_shards_gives_the_weights_and_top1_of_the_folders(image_folder, tmp_path, capsys):
    """One epoch and its evaluation on the folders, then on shards named by split in one folder: the same
    weights bit for bit and the same top-1; eval, with the recorded class count, reads the shards too;
    a class_num below the shards' labels is refused naming them."""
    hub = tmp_path / "hub"
    hub.mkdir()
    write_shards(image_folder / "train", [hub / f"d-train-{i:02d}.tar" for i in range(3)])
    write_shards(image_folder / "validation_preprocess", [hub / "d-val-00.tar"])
    results, evals = [], []
    base = ["--dataset=imagenet2012", "--width_mult=0.25", "--image_size=32", "--batch_size=4",
            "--device_target=CPU", "--num_workers=0", "--warmup_epochs=0", "--epoch_size=1", "--eval_interval=1"]
    for root in (image_folder, hub):
        args = base + [f"--dataset_path={root}", "--class_num=2", f"--save_checkpoint_path={tmp_path / root.name}"]
        results.append(train.run(load_config(args)))
        log = capsys.readouterr().out
        assert "training: 15 samples, 3 steps per epoch" in log
        evals += [line.split(" (")[0] for line in log.splitlines() if line.startswith("eval: epoch 1 top-1")]
    a, b = (load_file(r["checkpoint"]) for r in results)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert a["classes"] == ["n01", "n02"] and b["classes"] is None
    assert len(evals) == 2 and evals[0] == evals[1]
    assert cli.main(["eval", "--dataset=imagenet2012", f"--dataset_path={hub}", "--device_target=CPU",
                     f"--checkpoint_path={results[1]['checkpoint']}", "--num_workers=0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["total"] == 6
    three = tmp_path / "three"
    three.mkdir()
    with tarfile.open(three / "s-0.tar", "w") as tf:
        for i in range(3):
            add(tf, f"k{i}.jpg", jpeg_bytes(smooth_image(30, 30, i)))
            add(tf, f"k{i}.cls", str(i).encode())
    with pytest.raises(train.ConfigError, match=r"class_num 2 is too small .*labels 0\.\.2 in its shards' \.cls"):
        train.run(load_config(base + [f"--dataset_path={three}", "--class_num=2",
                                      f"--save_checkpoint_path={tmp_path / 'small'}"]))
    assert not (tmp_path / "small").exists()


def test_what_tells_shards_from_class_archives_and_patterns_from_files(image_folder, tmp_path):
    """A folder of tars is shards where any holds labels (an empty first one, or a first sample with many
    files before its .cls, does not hide them), class archives where none does, and refused where both
    are there; a class-folder archive named like a pattern (photos[2023].tar) is a file; braces in a
    folder's or shards' names are names; the held-out images do not depend on the folder's name; a data
    set with training shards and no evaluation split says so."""
    image = jpeg_bytes(smooth_image(30, 30, 1))
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    with tarfile.open(mixed / "a-empty.tar", "w"):
        pass
    with tarfile.open(mixed / "b.tar", "w") as tf:
        for i in range(40):
            add(tf, f"k0.extra{i}", b"x")
        add(tf, "k0.jpg", image)
        add(tf, "k0.cls", b"1")
        add(tf, "k1.jpg", image)
        add(tf, "k1.cls", b"0")
    samples, classes = find_images(str(mixed))
    assert classes is None and [y for _, y in samples] == [1, 0]
    with tarfile.open(mixed / "c-class.tar", "w") as tf:
        add(tf, "img_1.jpg", image)
        add(tf, "img_2.jpg", image)
    with pytest.raises(DataError, match=rf"folder {mixed} holds WebDataset shards \(b\.tar\) and tar files whose "
                                        r"first sample has no \.cls label \(c-class\.tar\)"):
        find_images(str(mixed))
    odd = tmp_path / "photos[2023].tar"
    with tarfile.open(odd, "w") as tf:
        add(tf, "cat/a.jpg", image)
        add(tf, "dog/b.jpg", image)
    assert find_images(str(odd))[1] == ["cat", "dog"]
    plain, weird = tmp_path / "plain", tmp_path / "we[ir]d {v1}"
    for root in (plain, weird):
        root.mkdir()
        write_shards(image_folder / "train", [root / f"ds{{v2}}-train-{i}.tar" for i in range(2)])
    held = []
    for root in (plain, weird):
        split, _ = image_split(str(root), True)
        assert len(find_images(split)[0]) == 15
        held.append([os.path.relpath(str(p), root) for p, _ in find_images(split, holdout=Holdout(0.34, True))[0]])
    assert held[0] == held[1] and len(held[0]) == 5
    (weird / "sub {v3}").mkdir()
    write_shards(image_folder / "train", [weird / "sub {v3}" / f"x-{i}.tar" for i in range(2)])
    assert len(find_images(str(weird / "sub {v3}" / "x-{0..1}.tar"))[0]) == 15  # braces in the file's name only
    with pytest.raises(DataError, match=r"it has a training split of shards \(ds\{v2\}-train-\*\.tar\) but no "
                                        r"evaluation split .*shards named \*-val-\*\.tar"):
        image_split(str(plain), False)


def test_missing_shards_are_counted_in_the_singular_for_one(tmp_path):
    """A brace pattern of one shard that is not there said "1 of its 1 files are not there"."""
    (tmp_path / "s-0.tar").write_bytes(b"")
    with pytest.raises(ArchiveError, match=r"^shards .*s-\{9\.\.9\}\.tar: 1 of its 1 file is not there "
                                           r"\(.*s-9\.tar\)$"):
        shard_files(str(tmp_path / "s-{9..9}.tar"))
    with pytest.raises(ArchiveError, match=r": 1 of its 2 files is not there \(.*s-1\.tar\)$"):
        shard_files(str(tmp_path / "s-{0..1}.tar"))
    with pytest.raises(ArchiveError, match=r": 2 of its 3 files are not there \(.*s-1\.tar, .*s-2\.tar\)$"):
        shard_files(str(tmp_path / "s-{0..2}.tar"))


def test_a_folder_of_shards_leaves_out_hidden_files_and_takes_the_suffix_in_any_case(tmp_path):
    """macOS leaves an AppleDouble ._NAME beside each file it copies onto a disk of another system: ._s-0.tar
    holds no samples, nor does a hidden .s-2.tar, a folder named .tar or a file of another suffix."""
    for name in ("s-1.tar", "s-0.TAR", "._s-0.tar", ".s-2.tar", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.tar").mkdir()
    assert shard_files(str(tmp_path)) == [str(tmp_path / "s-0.TAR"), str(tmp_path / "s-1.tar")]


def test_compressed_shards_in_a_folder_or_a_pattern_are_named_as_compressed(tmp_path, capsys):
    """Shards gzipped as webdataset writes them too (s-0.tar.gz): a folder of them (or of a split's, side by side)
    said it "has no class sub-folders", and a pattern of them that it "does not exist", the files being there."""
    image = jpeg_bytes(smooth_image(30, 30, 1))
    folder, hub = tmp_path / "train", tmp_path / "hub"  # hub: the splits' shards side by side
    for root, names in ((folder, ["ds-train-0", "ds-train-1"]), (hub, ["ds-train-0", "ds-train-1", "ds-val-0"])):
        root.mkdir()
        for i, name in enumerate(names):
            with tarfile.open(root / f"{name}.tar.gz", "w:gz") as tf:
                add(tf, f"k{i}.jpg", image)
                add(tf, f"k{i}.cls", b"0")
        with pytest.raises(DataError, match=rf"image folder '{root}' has no class sub-folders; it holds compressed "
                                            r"tar archives \(ds-train-0\.tar\.gz, ds-train-1\.tar\.gz.*\): "
                                            r".*decompress"):
            find_images(image_split(str(root), True)[0])
    for pattern in (folder / "ds-train-{0..1}.tar.gz", folder / "ds-train-*.tar.gz"):
        assert cli.main(["data-stats", "--dataset=imagenet2012", f"--dataset_path={pattern}"]) == 1
        err = capsys.readouterr().err
        assert f"dataset_path '{pattern}' names compressed shards" in err and "does not exist" not in err
    # quantize's calibration data too: one compressed shard, or a pattern of them, is said to be compressed.
    for given in (folder / "ds-train-0.tar.gz", folder / "ds-train-*.tar.gz"):
        assert cli.main(["quantize", "--onnx", str(tmp_path / "m.onnx"), "--calib_data", str(given), "--out",
                         str(tmp_path / "q.onnx")]) == 1
        assert f"--calib_data {given}: compressed tar archives are not read" in capsys.readouterr().err


def test_shards_beside_a_sub_folder_are_refused_naming_both(tmp_path):
    """A folder of shards that also held a sub-folder (notes/, __MACOSX/) was read as class folders: the one
    sub-folder a class, the shards left out with a warning about class archives half extracted."""
    image = jpeg_bytes(smooth_image(30, 30, 1))
    folder = tmp_path / "train"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "look.jpg").write_bytes(image)
    for i in range(2):
        with tarfile.open(folder / f"s-{i}.tar", "w") as tf:
            add(tf, f"k{i}.jpg", image)
            add(tf, f"k{i}.cls", b"1")
    with pytest.raises(DataError, match=rf"image folder '{folder}' holds WebDataset shards \(s-0\.tar, s-1\.tar\) and "
                                        r"folders \(notes/\)"):
        find_images(str(folder))
