"""An evaluation split whose images are not in class folders (ImageNet's validation images as they come),
labelled by a file (``eval_labels``): Kaggle's LOC_val_solution.csv, Caffe's val.txt, TF's one label a line."""
import json
import os
import shutil
import tarfile

import pytest

from mobilenet_v1 import cli, datastats, train
from mobilenet_v1.config import ConfigError, load_config
from mobilenet_v1.data import DataError, UnsortedImagesError, find_images


def flatten(image_folder, root):
    """``image_folder``'s validation_preprocess/<class>/ images copied flat into ``root/val/`` as
    ILSVRC2012_val_0000000K.JPEG, the classes interleaved (so the names' order is not the classes'), and
    the class of each name."""
    source = image_folder / "validation_preprocess"
    files = [(cls, source / cls / name) for cls in ("n01", "n02") for name in sorted(os.listdir(source / cls))]
    files = files[::2] + files[1::2]
    (root / "val").mkdir(parents=True)
    truth = {}
    for k, (cls, path) in enumerate(files, 1):
        name = f"ILSVRC2012_val_{k:08d}"
        shutil.copy(path, root / "val" / f"{name}.JPEG")
        truth[name] = cls
    return truth


def write_forms(truth, folder):
    """The labels of ``truth`` in the three forms, rows in another order than the images' where the form
    names the image."""
    names = sorted(truth)
    kaggle = folder / "LOC_val_solution.csv"
    kaggle.write_text("ImageId,PredictionString\n" + "".join(
        f"{n},{truth[n]} 12 34 56 78 {truth[n]} 1 2 3 4 \n" for n in reversed(names)))
    caffe = folder / "val.txt"  # the class's place in the sorted synsets
    caffe.write_text("".join(f"{n}.JPEG {['n01', 'n02'].index(truth[n])}\n" for n in reversed(names)))
    tf_list = folder / "synset_labels.txt"
    tf_list.write_text("".join(f"{truth[n]}\n" for n in names))
    return kaggle, caffe, tf_list


def test_each_form_labels_the_flat_images_by_their_names(image_folder, tmp_path):
    """The three forms give every image its class: a name through the model's class list (which may list
    the classes in another order) or the names' sorted order, a number as it is; a flat archive reads as the
    folder."""
    truth = flatten(image_folder, tmp_path)
    forms = write_forms(truth, tmp_path)
    flat = str(tmp_path / "val")
    packed = tmp_path / "val.tar"
    with tarfile.open(packed, "w") as tf:
        tf.add(flat, arcname=".")
    kaggle, caffe, tf_list = forms
    for form in forms:
        # Caffe's numbers are places in the sorted class list; names map through any list
        lists = [["n01", "n02"], None] if form == caffe else [["n02", "x", "n01"], None]
        for classes in lists:
            order = classes or ["n01", "n02"]
            for root in (flat, str(packed)):
                samples, got_classes = find_images(root, classes, labels_file=str(form))
                assert got_classes == (None if form == caffe and classes is None else order) and len(samples) == 6
                named = {os.path.basename(str(p)).split(".")[0]: order[y] for p, y in samples}
                assert named == truth
    # Caffe's form under a header line: its "label" was read as a class, the numbers then as names (sorted as
    # text: 10 before 2 with more classes)
    headed = tmp_path / "headed.txt"
    for header in ("image label", "ILSVRC2012_val_filename synset_number"):  # a header's words; a word over numbers
        headed.write_text(f"{header}\n" + caffe.read_text())
        samples, got_classes = find_images(flat, None, labels_file=str(headed))
        assert got_classes is None and {os.path.basename(str(p)).split(".")[0]: ["n01", "n02"][y]
                                        for p, y in samples} == truth, header
    # A first row for an image not here, named without its extension, is a row: its class (n00, in no other row)
    # is among the file's, which number the names.
    named = tmp_path / "named.txt"
    named.write_text("other_image n00\n" + "".join(f"{n} {truth[n]}\n" for n in sorted(truth)))
    samples, got_classes = find_images(flat, None, labels_file=str(named))
    assert got_classes == ["n00", "n01", "n02"]
    assert {os.path.basename(str(p)).split(".")[0]: got_classes[y] for p, y in samples} == truth
    # A header over names, of a header's words however written: not a class of its own
    for header in ("image_name class_name", "ImageName Label", "filename synset"):
        named.write_text(f"{header}\n" + "".join(f"{n} {truth[n]}\n" for n in sorted(truth)))
        samples, got_classes = find_images(flat, None, labels_file=str(named))
        assert got_classes == ["n01", "n02"], header


def test_a_flat_split_packed_under_its_name_reads_as_the_folder_it_extracts_to(image_folder, tmp_path):
    """``tar cf val.tar val`` of the flat val/ (and a data set's archive holding it) is that flat folder once
    extracted: labelled by eval_labels, refused without, where its top folder was read as one class named val
    (every image labelled 0, or a class the model did not know); a class's archive named as it (``cat.tar``
    holding ``cat/*.jpg``) stays that class."""
    truth = flatten(image_folder, tmp_path)
    kaggle, _, _ = write_forms(truth, tmp_path)
    flat = str(tmp_path / "val")
    want = find_images(flat, labels_file=str(kaggle))
    for packed, arcname in ((tmp_path / "val.tar", "val"), (tmp_path / "dataset.tar", "dataset/val")):
        with tarfile.open(packed, "w") as tf:
            tf.add(flat, arcname=arcname)
        for classes in (None, ["n01", "n02"]):
            with pytest.raises(UnsortedImagesError, match=rf"image archive '{packed}' has no class folders"):
                find_images(str(packed), classes)
            samples, got_classes = find_images(str(packed), classes, labels_file=str(kaggle))
            assert got_classes == want[1]
            assert [(os.path.basename(str(p)), y) for p, y in samples] == [
                (os.path.basename(p), y) for p, y in want[0]]
    cat = tmp_path / "cat.tar"
    with tarfile.open(cat, "w") as tf:
        tf.add(str(image_folder / "validation_preprocess" / "n01"), arcname="cat")
    samples, classes = find_images(str(cat))
    assert classes == ["cat"] and len(samples) == 3


def test_eval_and_training_evaluate_a_flat_split_as_the_class_folders(image_folder, tmp_path, capsys):
    """A run evaluating on the flat val/ with --eval_labels logs the top-1 of the same run on the class
    folders, and eval of its checkpoint gives the same figures from either layout."""
    truth = flatten(image_folder, tmp_path / "flat")
    kaggle, _, _ = write_forms(truth, tmp_path)
    shutil.copytree(image_folder / "train", tmp_path / "flat" / "train")
    base = ["--dataset=imagenet2012", "--class_num=2", "--width_mult=0.25", "--image_size=32", "--batch_size=4",
            "--device_target=CPU", "--num_workers=0", "--warmup_epochs=0", "--epoch_size=1", "--eval_interval=1"]
    evals, results = [], []
    for root, extra in ((image_folder, []), (tmp_path / "flat", [f"--eval_labels={kaggle}"])):
        results.append(train.run(load_config(base + extra + [f"--dataset_path={root}",
                                                              f"--save_checkpoint_path={tmp_path / root.name}"])))
        evals += [line.split(" (")[0] for line in capsys.readouterr().out.splitlines()
                  if line.startswith("eval: epoch 1 top-1")]
    assert len(evals) == 2 and evals[0] == evals[1]
    figures = []
    for root, extra in ((image_folder, []), (tmp_path / "flat", [f"--eval_labels={kaggle}"])):
        assert cli.main(["eval", "--dataset=imagenet2012", f"--dataset_path={root}", "--device_target=CPU",
                         f"--checkpoint_path={results[0]['checkpoint']}", "--num_workers=0", "--json"] + extra) == 0
        figures.append(json.loads(capsys.readouterr().out.splitlines()[-1]))
    assert figures[0]["total"] == figures[1]["total"] == 6
    assert figures[0]["top_1_accuracy"] == figures[1]["top_1_accuracy"]


def test_labels_that_do_not_fit_the_images_are_refused_naming_the_file(image_folder, tmp_path):
    truth = flatten(image_folder, tmp_path)
    flat = str(tmp_path / "val")
    names = sorted(truth)
    short = tmp_path / "short.csv"
    short.write_text("".join(f"{n},{truth[n]}\n" for n in names[1:]))
    with pytest.raises(DataError, match=rf"eval_labels {short}: no label for 1 of the 6 images \({names[0]}\)"):
        find_images(flat, labels_file=str(short))
    other = tmp_path / "other.txt"
    other.write_text("".join(f"{n}.JPEG {'n03' if i == 2 else truth[n]}\n" for i, n in enumerate(names)))
    with pytest.raises(DataError, match=rf"eval_labels {other}: class\(es\) n03 are not among the 2 classes"):
        find_images(flat, ["n01", "n02"], labels_file=str(other))
    counted = tmp_path / "counted.txt"
    counted.write_text("n01\nn02\n")
    with pytest.raises(DataError, match=rf"eval_labels {counted}: 2 labels, one a line, for the 6 images"):
        find_images(flat, labels_file=str(counted))
    devkit = tmp_path / "ILSVRC2012_validation_ground_truth.txt"
    devkit.write_text("".join(f"{1 + ['n01', 'n02'].index(truth[n])}\n" for n in names))
    with pytest.raises(DataError, match=rf"eval_labels {devkit}: a number a line, as the devkit's"):
        find_images(flat, ["n01", "n02"], labels_file=str(devkit))
    # Caffe's form with a line that lost its label: that line named, not the file read as TF's list (its image
    # names taken for labels; helper-251).
    lost = tmp_path / "lost.txt"
    lost.write_text("".join(f"{n}.JPEG {'' if i == 3 else ['n01', 'n02'].index(truth[n])}\n"
                            for i, n in enumerate(names)))
    with pytest.raises(DataError, match=rf"eval_labels {lost}, line 4: expected <image> <label>, as its other lines, "
                                        rf"got '{names[3]}.JPEG'"):
        find_images(flat, ["n01", "n02"], labels_file=str(lost))
    past = tmp_path / "past.txt"
    past.write_text("".join(f"{n} 7\n" for n in names))
    with pytest.raises(DataError, match=rf"eval_labels {past}: label 7 is past the model's 2 classes"):
        find_images(flat, ["n01", "n02"], labels_file=str(past))
    # A number no int64 holds, for a model that records no classes: named (a traceback of numpy's before).
    past.write_text("".join(f"{n} {2 ** 64 if i == 2 else 1}\n" for i, n in enumerate(names)))
    with pytest.raises(DataError, match=rf"eval_labels {past}: label {2 ** 64} is past any model's classes"):
        find_images(flat, labels_file=str(past))
    # An image labelled twice: the same label again is let be, another refused naming both lines (in both forms
    # that name the image: which label is right, the file cannot say).
    csv_rows = ["ImageId,PredictionString"] + [f"{n},{truth[n]} 1 2 3 4" for n in names]
    caffe_rows = [f"{n}.JPEG {truth[n]}" for n in names]
    other_class = {"n01": "n02", "n02": "n01"}[truth[names[1]]]
    for rows, name, line in ((csv_rows, "twice.csv", 8), (caffe_rows, "twice.txt", 7)):
        row = rows[line - 6]  # names[1]'s, on line `line - 5`
        again = tmp_path / ("again_" + name)
        again.write_text("\n".join(rows + [row]) + "\n")
        assert [label for _, label in find_images(flat, ["n01", "n02"], labels_file=str(again))[0]] == \
            [["n01", "n02"].index(truth[n]) for n in names]
        twice = tmp_path / name
        twice.write_text("\n".join(rows + [row.replace(truth[names[1]], other_class)]) + "\n")
        with pytest.raises(DataError, match=rf"eval_labels {twice}, line {line}: {names[1]}(\.JPEG)? is labelled "
                                            rf"{other_class}, but line {line - 5} labels it {truth[names[1]]}"):
            find_images(flat, ["n01", "n02"], labels_file=str(twice))
    # A file where the images should be is named for what it is, with or without eval_labels.
    for labels in (None, str(short)):
        with pytest.raises(DataError, match=rf"image folder '{short}' is a file, not a folder"):
            find_images(str(short), labels_file=labels)
        with pytest.raises(DataError, match=rf"image folder '{tmp_path / 'none'}' does not exist"):
            find_images(str(tmp_path / "none"), labels_file=labels)
    # Without eval_labels, the flat folder's message says what to give.
    with pytest.raises(DataError, match=r"has no class sub-folders; its images are not sorted into class folders: "
                                        r"give their labels with --eval_labels FILE"):
        find_images(flat)
    # Training takes its labels from the folders: eval's way out is not its own.
    with pytest.raises(DataError, match=rf"^dataset_path {flat}: its images are not sorted into class folders, which "
                                        rf"training takes its labels from: a sub-folder a class \({flat}/<class>/"):
        train.run(load_config(["--dataset=imagenet2012", f"--dataset_path={flat}", "--class_num=2",
                               "--device_target=CPU", "--num_workers=0", f"--save_checkpoint_path={tmp_path / 'r'}"]))
    assert not (tmp_path / "r").exists()
    # nor data-stats', which counts images by class
    with pytest.raises(DataError, match=rf"^dataset_path {flat}: its images are not sorted into class folders, which "
                                        rf"data-stats counts by class, as training labels them: a sub-folder a class "
                                        rf"\({flat}/<class>/"):
        datastats.main(["--dataset=imagenet2012", f"--dataset_path={flat}", "--num_workers=0"])
    for extra, message in ((["--dataset=imagenet2012", "--val_split=0.2"],
                            r"eval_labels labels an evaluation split of its own"),
                           (["--dataset=cifar10"], r"CIFAR-10's labels are in its data files")):
        with pytest.raises(ConfigError, match=message):
            load_config([f"--dataset_path={tmp_path}", f"--eval_labels={short}"] + extra)
    with pytest.raises(ConfigError, match=rf"eval_labels {tmp_path / 'none.csv'}: no such file"):
        load_config(["--dataset=imagenet2012", f"--dataset_path={tmp_path}", f"--eval_labels={tmp_path / 'none.csv'}"])


def test_an_eval_labels_file_that_is_not_there_is_named_once(tmp_path, capsys):
    """A missing --eval_labels said "option --eval_labels: eval_labels F: no such file", its key twice; now as
    every path given that is not there (checkpoint.check_given), "--eval_labels F: no such file"; a config
    file's names the file and then the key, once."""
    from mobilenet_v1.config import Config, validate

    none = tmp_path / "none.csv"
    data = ["--dataset=imagenet2012", f"--dataset_path={tmp_path}"]
    with pytest.raises(ConfigError, match=rf"^--eval_labels {none}: no such file$"):
        load_config([*data, f"--eval_labels={none}"])
    assert cli.main(["eval", *data, f"--eval_labels={none}", f"--checkpoint_path={tmp_path}"]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"mobilenet-v1 eval: error: --eval_labels {none}: " \
                                                              f"no such file"
    config = tmp_path / "c.yaml"
    config.write_text(f"eval_labels: {tmp_path}\n")
    with pytest.raises(ConfigError, match=rf"^config file {config}: eval_labels {tmp_path}: a folder, not a file$"):
        load_config([*data, f"--config_path={config}"])
    with pytest.raises(ConfigError, match=rf"^Config\.eval_labels {none}: no such file$"):
        validate(Config(dataset="imagenet2012", eval_labels=str(none)))


def test_an_eval_labels_pipe_or_dangling_link_is_named_for_what_it_is(tmp_path):
    """`--eval_labels <(zcat val.txt.gz)` or /dev/stdin from a pipe said "no such file" of a path that is there (a
    link to nothing said so too); named as what it is, with what to do (it is read at each evaluation's listing)."""
    data = ["--dataset=imagenet2012", f"--dataset_path={tmp_path}"]
    pipe = tmp_path / "labels.fifo"
    os.mkfifo(pipe)
    with pytest.raises(ConfigError, match=rf"^--eval_labels {pipe}: a named pipe, not a regular file: save its "
                                          rf"lines to a file and give that$"):
        load_config([*data, f"--eval_labels={pipe}"])
    link = tmp_path / "val.txt"
    link.symlink_to(tmp_path / "gone.txt")
    with pytest.raises(ConfigError, match=rf"^--eval_labels {link}: a link to nothing$"):
        load_config([*data, f"--eval_labels={link}"])


def test_a_config_file_named_eval_labels_still_names_the_key(tmp_path):
    """The key is named after a config file's name by where the value came from, not by how that name ends: a
    file named "eval_labels" (no extension) said "config file C F: no such file", without the key."""
    none = tmp_path / "none.csv"
    config = tmp_path / "eval_labels"
    config.write_text(f"eval_labels: {none}\n")
    with pytest.raises(ConfigError, match=rf"^config file {config}: eval_labels {none}: no such file$"):
        load_config(["--dataset=imagenet2012", f"--dataset_path={tmp_path}", f"--config_path={config}"])


def test_subsets_byte_order_marks_and_names_that_clash(image_folder, tmp_path):
    """A subset of the images (one class's) with the whole file: without a class list, names are numbered
    by every class the file names, and Caffe's form is still told from its lines; a byte order mark is no
    part of a label; class names that are numbers stay names; two images of one name, and a split
    labelled by its own class folders or shards, are refused; a flat archive without eval_labels says
    what to give."""
    truth = flatten(image_folder, tmp_path / "all")
    kaggle, caffe, tf_list = write_forms(truth, tmp_path)
    subset = tmp_path / "subset"
    subset.mkdir()
    for name, cls in truth.items():
        if cls == "n02":
            shutil.copy(tmp_path / "all" / "val" / f"{name}.JPEG", subset)
    for form in (kaggle, caffe):
        samples, classes = find_images(str(subset), labels_file=str(form))
        assert len(samples) == 3 and {y for _, y in samples} == {1}
        assert classes == (None if form == caffe else ["n01", "n02"])
    flat = str(tmp_path / "all" / "val")
    for form in (kaggle, caffe, tf_list):
        marked = tmp_path / f"bom_{form.name}"
        marked.write_bytes(b"\xef\xbb\xbf" + form.read_bytes())
        assert [y for _, y in find_images(flat, ["n01", "n02"], labels_file=str(marked))[0]] == \
            [y for _, y in find_images(flat, ["n01", "n02"], labels_file=str(form))[0]]
    numbered = tmp_path / "numbered.txt"
    numbered.write_text("".join(f"{n} {'2' if truth[n] == 'n01' else '10'}\n" for n in sorted(truth)))
    samples, _ = find_images(flat, ["0", "1", "10", "2"], labels_file=str(numbered))
    assert [["0", "1", "10", "2"][y] for _, y in samples] == ["2" if truth[n] == "n01" else "10" for n in sorted(truth)]
    # Numbers or names is the whole file's to say: Caffe's numbers with classes named "1", "2", "3" are places,
    # in a subset whose labels (1 and 2) happen to be class names too (helper-111: read as names before).
    places = tmp_path / "places.txt"
    places.write_text("".join(f"{n}.JPEG {k % 3}\n" for k, n in enumerate(sorted(truth))))
    for root in (flat, str(tmp_path / "few")):
        samples, _ = find_images(root, ["1", "2", "3"], labels_file=str(places))
        assert {os.path.basename(str(p)).split(".")[0]: y for p, y in samples} == \
            {n: k % 3 for k, n in enumerate(sorted(truth)) if root == flat or k % 3}
        os.makedirs(tmp_path / "few", exist_ok=True)
        for k, n in enumerate(sorted(truth)):
            if k % 3:
                shutil.copy(tmp_path / "all" / "val" / f"{n}.JPEG", tmp_path / "few")
    # A CSV label of several words is a name whole (a class folder "golden retriever"), Kaggle's first word
    # where a number follows it.
    spaced = tmp_path / "spaced.csv"
    spaced.write_text("image,label\n" + "".join(f"{n}.JPEG,{'red wine' if truth[n] == 'n01' else 'red'}\n"
                                                for n in sorted(truth)))
    samples, _ = find_images(flat, ["golden retriever", "red", "red wine"], labels_file=str(spaced))
    assert [y for _, y in samples] == [2 if truth[n] == "n01" else 1 for n in sorted(truth)]
    (tmp_path / "all" / "val" / "again").mkdir()
    shutil.copy(tmp_path / "all" / "val" / f"{sorted(truth)[0]}.JPEG", tmp_path / "all" / "val" / "again")
    with pytest.raises(DataError, match=rf"two images in .* are named {sorted(truth)[0]} \("):
        find_images(flat, labels_file=str(kaggle))
    folders = image_folder / "validation_preprocess"
    by_folder = tmp_path / "by_folder.txt"
    by_folder.write_text("".join(f"{cls}_{name} {cls}\n" for cls in ("n01", "n02")
                                 for name in sorted(os.listdir(folders / cls))))
    for cls in ("n01", "n02"):  # names of their own, so only the class folders are in the way
        for name in os.listdir(folders / cls):
            os.rename(folders / cls / name, folders / cls / f"{cls}_{name}")
    with pytest.raises(DataError, match=r"has class folders \(n01, n02\), which label its images; leave eval_labels"):
        find_images(str(folders), ["n01", "n02"], labels_file=str(by_folder))
    packed = tmp_path / "val.tar"
    with tarfile.open(packed, "w") as tf:
        tf.add(str(subset), arcname=".")
    with pytest.raises(DataError, match=r"has no class folders or class archives; its images are not sorted into "
                                        r"class folders: give their labels with --eval_labels FILE"):
        find_images(str(packed))
