"""MindSpore interchange: .ckpt (protobuf) and .safetensors read and written, names mapped, a seed training
run continued. MindSpore itself is not needed: the files are built with the schema of SPEC.md section 6."""
import dataclasses
import os
import re

import pytest
import torch

from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1 import cli, engine, load_model, mindspore_io, train
from mobilenet_v1.config import ConfigError, load_config
from mobilenet_v1.model import MobileNetV1

SRC = os.path.join(os.path.dirname(__file__), "..", "src", "mobilenet_v1")
SMALL = ["--width_mult=0.25", "--image_size=32", "--batch_size=16", "--device_target=CPU", "--num_workers=0",
         "--warmup_epochs=0", "--lr_decay_mode=linear", "--lr_max=0.05"]


def trained_looking(class_num: int, width_mult: float, seed: int = 0) -> MobileNetV1:
    """A model whose every tensor is distinct and non-default, BatchNorm statistics included."""
    torch.manual_seed(seed)
    model = MobileNetV1(class_num=class_num, width_mult=width_mult, padding="same")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.num_batches_tracked.fill_(123)
        model.fc.bias.uniform_(-1, 1)
    return model.eval()


def seed_entries(model: MobileNetV1, moments: bool = False, global_step: int = 0):
    """What the seed's MindSpore network would save for ``model``, written out by hand from SPEC.md's name
    list (not with mindspore_io's mapping, which is under test)."""
    out = {}
    for k, layer in enumerate(model.network):
        conv, bn = layer[0], layer[1]
        out[f"network.{k}.0.weight"] = conv.weight.detach().clone()
        out[f"network.{k}.1.gamma"] = bn.weight.detach().clone()
        out[f"network.{k}.1.beta"] = bn.bias.detach().clone()
        out[f"network.{k}.1.moving_mean"] = bn.running_mean.clone()
        out[f"network.{k}.1.moving_variance"] = bn.running_var.clone()
    out["fc.weight"] = model.fc.weight.detach().clone()
    out["fc.bias"] = model.fc.bias.detach().clone()
    if moments:
        g = torch.Generator().manual_seed(7)
        for name in [n for n in list(out) if not n.endswith(("moving_mean", "moving_variance"))]:
            out["moments." + name] = torch.randn(out[name].shape, generator=g) * 0.01
        out["learning_rate"] = torch.linspace(0.1, 0.0, 24)  # the seed passes its whole lr array
        out["momentum"] = torch.tensor(0.9)
        out["global_step"] = torch.tensor([global_step], dtype=torch.int32)
    return out


def write_seed_ckpt(path, entries):
    """A .ckpt laid out as MindSpore writes it: one Checkpoint message per parameter, back to back."""
    path.write_bytes(mindspore_io.mindspore_bytes(entries))
    return str(path)


def test_wire_format_is_the_schemas():
    """Bytes computed by hand from the schema (field numbers, unpacked dims, the scalar as dims [0])."""
    data = mindspore_io.mindspore_bytes({"a": torch.tensor([1.0, 2.0]), "s": torch.tensor(3, dtype=torch.int32)})
    content = torch.tensor([1.0, 2.0]).numpy().tobytes()
    tensor_a = b"\x08\x02" + b"\x12\x07Float32" + b"\x1a\x08" + content
    value_a = b"\x0a\x01a" + b"\x12" + bytes([len(tensor_a)]) + tensor_a
    tensor_s = b"\x08\x00" + b"\x12\x05Int32" + b"\x1a\x04" + (3).to_bytes(4, "little")
    value_s = b"\x0a\x01s" + b"\x12" + bytes([len(tensor_s)]) + tensor_s
    assert data == (b"\x0a" + bytes([len(value_a)]) + value_a) + (b"\x0a" + bytes([len(value_s)]) + value_s)


def test_runtime_schema_matches_the_proto_file():
    text = open(os.path.join(SRC, "mindspore_checkpoint.proto")).read()
    in_file = set(re.findall(r"^\s*(required|optional|repeated)?\s*(\w+)\s+(\w+)\s*=\s*(\d+);", text, re.M))
    in_file = {(label or "optional", t, n, int(i)) for label, t, n, i in in_file}  # oneof members: optional
    fdp = mindspore_io._file_descriptor()
    built = set()
    types = {3: "int64", 9: "string", 12: "bytes"}
    labels = {1: "optional", 2: "required", 3: "repeated"}

    def walk(messages):
        for m in messages:
            for f in m.field:
                built.add((labels[f.label], types.get(f.type, f.type_name.split(".")[-1]), f.name, f.number))
            walk(m.nested_type)
    walk(fdp.message_type)
    assert built == in_file and len(built) == 8
    assert all(not f.options.packed for m in fdp.message_type for f in m.field)


@pytest.mark.parametrize("class_num,width_mult", [(10, 0.25), (1000, 0.5), (1001, 1.0)])
def test_round_trip_ours_mindspore_ours_is_bit_exact(tmp_path, class_num, width_mult):
    model = trained_looking(class_num, width_mult)
    ours = tmp_path / "ours.pt"
    ckpt_io.atomic_save({"model": model.state_dict()}, str(ours))
    for ext in ("ckpt", "safetensors"):
        assert cli.main(["convert", str(ours), str(tmp_path / f"ms.{ext}")]) == 0
        assert cli.main(["convert", str(tmp_path / f"ms.{ext}"), str(tmp_path / f"back_{ext}.pt")]) == 0
        back = ckpt_io.load_file(str(tmp_path / f"back_{ext}.pt"))["model"]
        assert set(back) == set(model.state_dict())
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                assert back[name].item() == 0  # no MindSpore counterpart: synthesised
                continue
            assert back[name].dtype == t.dtype and torch.equal(back[name], t), name
    # The MindSpore file holds exactly the seed's names.
    raw, _ = mindspore_io.read_mindspore_ckpt(str(tmp_path / "ms.ckpt"))
    assert list(raw) == list(seed_entries(model))


def test_seed_file_gives_the_same_logits_with_same_padding(tmp_path):
    model = trained_looking(1001, 1.0, seed=3)
    path = write_seed_ckpt(tmp_path / "mobilenetv1-90_1251.ckpt", seed_entries(model))
    assert mindspore_io.detect_format(path) == "mindspore"
    loaded = load_model(path)
    assert not loaded.training and loaded.padding == "same" and loaded.fc.out_features == 1001
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert (loaded(x) - model(x)).abs().max().item() <= 1e-6
    # The same names as a MindSpore-style .safetensors (sorted keys, format "ms").
    from safetensors.torch import save_file
    save_file(seed_entries(model), str(tmp_path / "m.safetensors"), metadata={"format": "ms"})
    with torch.no_grad():
        assert (load_model(str(tmp_path / "m.safetensors"))(x) - model(x)).abs().max().item() <= 1e-6


def test_slices_of_one_parameter_and_crc_trailer_are_read(tmp_path):
    """MindSpore splits big parameters into several Values with one tag, and can append a CRC."""
    import binascii

    model = trained_looking(10, 0.25)
    entries = seed_entries(model)
    Checkpoint = mindspore_io.message_class("Checkpoint")
    data = b""
    for name, t in entries.items():
        flat = t.reshape(-1)
        halves = [flat[: flat.numel() // 2], flat[flat.numel() // 2:]] if name == "fc.weight" else [flat]
        for part in halves:
            msg = Checkpoint()
            v = msg.value.add()
            v.tag = name
            v.tensor.dims.extend(list(t.shape))
            v.tensor.tensor_type = "Float32"
            v.tensor.tensor_content = part.numpy().tobytes()
            data += msg.SerializeToString()
    (tmp_path / "split.ckpt").write_bytes(data + b"crc_num" + binascii.crc32(data).to_bytes(10, "big"))
    loaded = load_model(str(tmp_path / "split.ckpt"))
    assert torch.equal(loaded.fc.weight, model.fc.weight)
    bad = data + b"crc_num" + (binascii.crc32(data) ^ 1).to_bytes(10, "big")
    (tmp_path / "badcrc.ckpt").write_bytes(bad)
    with pytest.raises(ckpt_io.CheckpointError, match=r"badcrc\.ckpt: CRC"):
        load_model(str(tmp_path / "badcrc.ckpt"))


def test_dims_0_is_a_scalar_with_one_element_and_an_empty_vector_without(tmp_path):
    """MindSpore writes a scalar as dims [0] and one element's bytes; dims [0] with no bytes is an empty vector."""
    path = tmp_path / "e.ckpt"
    path.write_bytes(mindspore_io.mindspore_bytes({"empty": torch.empty(0), "scalar": torch.tensor(2.5)}))
    raw, _ = mindspore_io.read_mindspore_ckpt(str(path))
    assert raw["empty"].shape == (0,) and raw["scalar"].shape == () and raw["scalar"].item() == 2.5


def test_a_seed_files_step_counts_its_batchnorms_and_is_written_back_as_mindspores_int32_step(tmp_path):
    """num_batches_tracked, which MindSpore has not, is the file's global_step; convert writes the step back as
    the seed's optimiser holds it (global_step: Int32, one element)."""
    path = write_seed_ckpt(tmp_path / "mobilenetv1-2_12.ckpt", seed_entries(trained_looking(4, 0.25), True, 24))
    counters = {k: v for k, v in mindspore_io.read_any(path)["model"].items() if k.endswith("num_batches_tracked")}
    assert len(counters) == 27 and all(v.dtype == torch.long and v.item() == 24 for v in counters.values())
    assert cli.main(["convert", path, str(tmp_path / "back.ckpt")]) == 0
    raw, _ = mindspore_io.read_mindspore_ckpt(str(tmp_path / "back.ckpt"))
    assert raw["global_step"].dtype == torch.int32 and raw["global_step"].tolist() == [24]


def test_mismatches_are_named_and_nothing_is_half_loaded(tmp_path):
    model = trained_looking(10, 0.5)
    entries = seed_entries(model)
    wrong = dict(entries, **{"network.3.0.weight": torch.zeros(5, 1, 3, 3)})
    with pytest.raises(ckpt_io.CheckpointError,
                       match=r"wrong\.ckpt.*network\.3\.0\.weight: file \(5, 1, 3, 3\) vs model \(32, 1, 3, 3\)"):
        load_model(write_seed_ckpt(tmp_path / "wrong.ckpt", wrong))
    missing = {k: v for k, v in entries.items() if k != "network.5.1.moving_variance"}
    with pytest.raises(ckpt_io.CheckpointError, match=r"missing 1: network\.5\.1\.moving_variance \(64,\)"):
        load_model(write_seed_ckpt(tmp_path / "missing.ckpt", missing))
    extra = dict(entries, **{"network.27.0.weight": torch.zeros(3, 3, 1, 1)})
    with pytest.raises(ckpt_io.CheckpointError, match=r"unexpected 1: network\.27\.0\.weight \(3, 3, 1, 1\)"):
        load_model(write_seed_ckpt(tmp_path / "extra.ckpt", extra))
    resnet = {"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(1000, 2048),
              "fc.bias": torch.zeros(1000)}
    with pytest.raises(ckpt_io.CheckpointError, match=r"resnet\.ckpt.*unexpected 1: conv1\.weight \(64, 3, 7, 7\)"):
        load_model(write_seed_ckpt(tmp_path / "resnet.ckpt", resnet))
    # pre_trained: the target model is untouched when the file does not fit.
    target = MobileNetV1(class_num=10, width_mult=0.5)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    ck = ckpt_io.load_file(str(tmp_path / "wrong.ckpt"))
    with pytest.raises(ckpt_io.CheckpointError):
        ckpt_io.load_weights(target, ck["model"], "wrong.ckpt", naming=ck["naming"])
    assert all(torch.equal(before[k], v) for k, v in target.state_dict().items())


def test_truncated_and_foreign_files_are_refused_naming_the_file(tmp_path):
    model = trained_looking(10, 0.25)
    good = write_seed_ckpt(tmp_path / "good.ckpt", seed_entries(model))
    data = open(good, "rb").read()
    (tmp_path / "cut.ckpt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ckpt_io.CheckpointError, match=r"cut\.ckpt: not a complete MindSpore checkpoint"):
        load_model(str(tmp_path / "cut.ckpt"))
    # Cut exactly between two parameters: protobuf reads it, the missing names are named.
    boundary = len(mindspore_io.mindspore_bytes(dict(list(seed_entries(model).items())[:-1])))
    (tmp_path / "short.ckpt").write_bytes(data[:boundary])
    with pytest.raises(ckpt_io.CheckpointError, match=r"short\.ckpt.*missing 1: fc\.bias"):
        load_model(str(tmp_path / "short.ckpt"))
    # Cut before fc (MindSpore writes it last), or saved under a prefix: said, not only "no fc.weight".
    entries = list(seed_entries(model).items())
    (tmp_path / "early.ckpt").write_bytes(mindspore_io.mindspore_bytes(dict(entries[:100])))
    with pytest.raises(ckpt_io.CheckpointError, match=r"early\.ckpt: no fc\.weight, not a MobileNetV1 state dict "
                                                      r"\(100 entries; 37 of the network's are missing, from "
                                                      r"network\.20\.0\.weight, .*: a file cut short"):
        load_model(str(tmp_path / "early.ckpt"))
    (tmp_path / "prefixed.ckpt").write_bytes(mindspore_io.mindspore_bytes({f"backbone.{k}": v for k, v in entries}))
    with pytest.raises(ckpt_io.CheckpointError, match=r"its backbone\.fc\.weight: names under the prefix "
                                                      r"'backbone\.', which ours lack"):
        load_model(str(tmp_path / "prefixed.ckpt"))
    # Numbers save_checkpoint's append_dict adds (lr, best_acc) are no parameters: left out, listed.
    extra = dict(seed_entries(model), lr=torch.tensor(0.1), best_acc=torch.tensor(0.5))
    added = ckpt_io.load_file(str(write_seed_ckpt(tmp_path / "appended.ckpt", extra)))
    assert added["ignored"] == ["lr", "best_acc"] and torch.equal(load_model(str(tmp_path / "appended.ckpt")).fc.bias,
                                                                  model.fc.bias)
    st = tmp_path / "good.safetensors"
    mindspore_io.write_safetensors(str(st), seed_entries(model), {"format": "ms"})
    raw = st.read_bytes()
    for cut in (len(raw) - 100, 200, 12):
        (tmp_path / "cut.safetensors").write_bytes(raw[:cut])
        with pytest.raises(ckpt_io.CheckpointError, match=r"cut\.safetensors: not a complete safetensors file"):
            load_model(str(tmp_path / "cut.safetensors"))
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(ckpt_io.CheckpointError, match=r"empty\.ckpt: the file is empty"):
        ckpt_io.load_file(str(tmp_path / "empty.ckpt"))
    (tmp_path / "text.ckpt").write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(ckpt_io.CheckpointError, match=r"text\.ckpt: neither.*; a MindSpore checkpoint saved "
                                                      r"encrypted \(save_checkpoint's enc_key\) is read by MindSpore"):
        ckpt_io.load_file(str(tmp_path / "text.ckpt"))
    # A content size that does not match dims (a damaged length) is caught per tensor.
    entries = {"fc.bias": torch.zeros(4)}
    blob = bytearray(mindspore_io.mindspore_bytes(entries))
    Checkpoint = mindspore_io.message_class("Checkpoint")
    msg = Checkpoint()
    msg.ParseFromString(bytes(blob))
    msg.value[0].tensor.dims[0] = 5
    (tmp_path / "dims.ckpt").write_bytes(msg.SerializeToString())
    with pytest.raises(ckpt_io.CheckpointError, match=r"dims\.ckpt: tensor fc\.bias holds 16 bytes"):
        ckpt_io.load_file(str(tmp_path / "dims.ckpt"))


def test_a_mindspore_tensor_of_no_bytes_and_a_shape_past_any_tensor_is_named_as_damaged(tmp_path):
    """dims [0, 2**62, 2**62] hold no bytes, as their product says: torch.empty of that shape ended info, eval,
    predict and convert in a traceback ("Stride calculation overflowed"; helper-357). Named with the file."""
    Checkpoint = mindspore_io.message_class("Checkpoint")
    msg = Checkpoint()
    msg.ParseFromString(mindspore_io.mindspore_bytes({"fc.bias": torch.zeros(0)}))
    del msg.value[0].tensor.dims[:]
    msg.value[0].tensor.dims.extend([0, 2 ** 62, 2 ** 62])
    (tmp_path / "huge.ckpt").write_bytes(msg.SerializeToString())
    with pytest.raises(ckpt_io.CheckpointError, match=r"huge\.ckpt: tensor fc\.bias has shape \(0, "
                                                      r"4611686018427387904, 4611686018427387904\), past any "
                                                      r"tensor's size; the file is damaged$"):
        ckpt_io.load_file(str(tmp_path / "huge.ckpt"))


def test_a_damaged_name_is_refused_naming_the_file(tmp_path, capsys):
    """A flipped byte in a parameter's name makes it invalid UTF-8, which protobuf returns as bytes: a
    clear error naming the file (it was a TypeError traceback from the name mapping)."""
    data = mindspore_io.mindspore_bytes(seed_entries(trained_looking(4, 0.25)))
    at = data.index(b"network.0.1.gamma")
    (tmp_path / "name.ckpt").write_bytes(data[:at] + b"\xff" + data[at + 1:])
    with pytest.raises(ckpt_io.CheckpointError, match=r"name\.ckpt: the name of entry 2 is not UTF-8 text "
                                                      r"\(b'\\xffetwork\.0\.1\.gamma'\); the file is damaged"):
        ckpt_io.load_file(str(tmp_path / "name.ckpt"))
    assert cli.main(["convert", str(tmp_path / "name.ckpt"), str(tmp_path / "out.pt")]) == 1
    assert "name.ckpt: the name of entry 2 is not UTF-8 text" in capsys.readouterr().err
    assert not (tmp_path / "out.pt").exists()


def test_dtypes_survive_and_unknown_types_are_refused(tmp_path):
    tensors = {"f16": torch.randn(3, 2).half(), "bf16": torch.randn(4).bfloat16(), "i64": torch.arange(5),
               "u8": torch.arange(6, dtype=torch.uint8), "b": torch.tensor([True, False]),
               "f64": torch.randn(2, dtype=torch.float64), "scalar": torch.tensor(2.5)}
    path = tmp_path / "t.ckpt"
    mindspore_io.write_mindspore_ckpt(str(path), tensors)
    back, _ = mindspore_io.read_mindspore_ckpt(str(path))
    for k, t in tensors.items():
        assert back[k].dtype == t.dtype and back[k].shape == t.shape and torch.equal(back[k], t), k
    msg = mindspore_io.message_class("Checkpoint")()
    msg.ParseFromString(path.read_bytes())
    msg.value[0].tensor.tensor_type = "Complex64"
    path.write_bytes(msg.SerializeToString())
    with pytest.raises(ckpt_io.CheckpointError, match=r"tensor f16 has tensor_type 'Complex64'"):
        mindspore_io.read_mindspore_ckpt(str(path))


def test_every_entry_point_takes_mindspore_files(cifar_dir, tmp_path, capsys):
    """eval's checkpoint_path, train's pre_trained and load_model read a seed .ckpt directly."""
    from mobilenet_v1 import evaluate as evaluate_mod

    model = trained_looking(4, 0.25, seed=5)
    ours = tmp_path / "ours.pt"
    ckpt_io.atomic_save({"model": model.state_dict()}, str(ours))
    seed = write_seed_ckpt(tmp_path / "seed.ckpt", seed_entries(model))
    args = SMALL + ["--class_num=4", f"--dataset_path={cifar_dir}"]
    a = evaluate_mod.run(load_config(args + [f"--checkpoint_path={ours}"]))
    b = evaluate_mod.run(load_config(args + [f"--checkpoint_path={seed}"]))
    assert (a["top_1_accuracy"], a["top_5_accuracy"], a["total"]) == (b["top_1_accuracy"], b["top_5_accuracy"], 40)
    from conftest import without_top5_note

    assert "outputs" not in without_top5_note(capsys.readouterr().err)
    # A model of many more outputs than the data's classes (the seed's ImageNet file on CIFAR): said, with CIFAR-10's
    # 10 classes, the format's, though these files' labels stop at 3 (a subset: helper-360).
    wide = write_seed_ckpt(tmp_path / "wide.ckpt", seed_entries(trained_looking(1001, 0.25, seed=5)))
    evaluate_mod.run(load_config(args + [f"--checkpoint_path={wide}"]))
    assert f"note: {wide} has 1001 outputs, dataset_path {cifar_dir} 10 classes: a prediction past class 9 is " \
           f"always wrong" in capsys.readouterr().err
    cfg = load_config(args + ["--epoch_size=1", f"--pre_trained={seed}", f"--save_checkpoint_path={tmp_path / 'r'}"])
    train.run(cfg)
    assert f"pre_trained: loaded {seed}" in capsys.readouterr().out


def test_eval_of_a_file_without_class_names_on_a_folder_of_fewer_classes_says_the_labels_may_be_shifted(
        image_folder, tmp_path, capsys):
    """A MindSpore .ckpt holds no class names (convert says it leaves them out): its 3 outputs evaluated on
    a folder of 2 class folders, labelled by their places, gave a class missing from the folder's every
    later class the label of the one before it, and the figures, per class too, another class's, without a
    word (the note was for 2 outputs more than the classes or beyond). A file that records its names labels
    the folders by them: nothing to say."""
    from mobilenet_v1 import evaluate as evaluate_mod

    model = trained_looking(3, 0.25, seed=5)
    seed = write_seed_ckpt(tmp_path / "seed.ckpt", seed_entries(model))
    args = SMALL + ["--dataset=imagenet2012", f"--dataset_path={image_folder}"]
    evaluate_mod.run(load_config(args + [f"--checkpoint_path={seed}"]))
    assert (f"note: {seed} has 3 outputs, dataset_path {image_folder} 2 classes: a prediction past class 1 is always "
            f"wrong; is it the model of this data set? {seed} records no class names, so the class folders are "
            f"labelled by their places in sorted order: one of the model's classes missing from the folder shifts "
            f"the labels of those after it") in capsys.readouterr().err
    ours = tmp_path / "ours.pt"
    ckpt_io.atomic_save({"model": model.state_dict(), "classes": ["n00", "n01", "n02"]}, str(ours))
    evaluate_mod.run(load_config(args + [f"--checkpoint_path={ours}"]))
    assert "always wrong" not in capsys.readouterr().err


def test_info_names_a_seed_checkpoint_and_how_it_continues(tmp_path, capsys):
    """info FILE on a seed run's .ckpt: MindSpore's format, the network read off its shapes, its global
    step, no recorded image size (multiply-adds only with --image_size), and that it continues with
    --pre_trained (its Momentum buffers), not --resume."""
    import json

    from mobilenet_v1.info import count_macs

    path = write_seed_ckpt(tmp_path / "mobilenetv1-2_12.ckpt", seed_entries(trained_looking(4, 0.25), True, 24))
    assert cli.main(["info", path, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["format"] == "MindSpore checkpoint" and got["kind"] == "checkpoint"
    assert (got["width_mult"], got["class_num"], got["training"]) == (0.25, 4, {"global_step": 24})
    assert got["image_size"] is None and "macs" not in got
    assert got["resumable"] is False and got["momentum_buffers"] is True
    assert cli.main(["info", path, "--image_size", "96"]) == 0
    text = capsys.readouterr().out
    assert f"{count_macs(0.25, 96, 4):,}" in text and "at 96x96" in text and "global_step 24" in text
    assert "--pre_trained and --pretrain_epoch_size (its Momentum buffers continue)" in text


def test_seed_training_checkpoint_continues_here(cifar_dir, tmp_path, capsys):
    """A seed run saved after 2 epochs (moments + global_step) continues at epoch 3 with its momentum."""
    model = trained_looking(4, 0.25, seed=9)
    entries = seed_entries(model, moments=True, global_step=24)  # 2 epochs of 12 steps
    path = write_seed_ckpt(tmp_path / "mobilenetv1-2_12.ckpt", entries)
    ck = ckpt_io.load_file(path)
    assert ck["global_step"] == 24 and sorted(ck["ignored"]) == ["learning_rate", "momentum"]
    assert torch.equal(ck["moments"]["network.4.1.weight"], entries["moments.network.4.1.gamma"])
    # The buffers are SGD's momentum_buffer: one step with a zero gradient moves p by -lr * momentum * v,
    # as MindSpore's ApplyMomentum would (v = momentum * v + grad; p -= lr * v).
    net = MobileNetV1(class_num=4, width_mult=0.25)
    ckpt_io.load_weights(net, ck["model"], path, naming=ck["naming"])
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    assert mindspore_io.load_momentum(opt, net, ck["moments"], path) == len(list(net.parameters()))
    before = net.fc.weight.detach().clone()
    for p in net.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    expected = before - 0.1 * 0.9 * entries["moments.fc.weight"]
    assert torch.allclose(net.fc.weight, expected, atol=1e-7)

    def run(moments_file, out, *extra):
        cfg = load_config(SMALL + [f"--dataset_path={cifar_dir}", "--class_num=4", "--epoch_size=3",
                                   "--pretrain_epoch_size=2", f"--pre_trained={moments_file}",
                                   f"--save_checkpoint_path={tmp_path / out}", *extra])
        return train.run(cfg)

    first = run(path, "a")
    log = capsys.readouterr().out
    n = len(list(model.parameters()))
    assert f"momentum buffers of {n} parameters restored (its global_step 24); continuing at epoch 3" in log
    assert ", epoch 3, precision" in log and "epoch: 3 step: 12" in log and "epoch: 1 " not in log
    assert "note: global_step" not in log  # 24 = 2 x 12
    # The buffers matter: zeroed buffers (a fresh optimizer) end elsewhere.
    zero = dict(entries, **{k: torch.zeros_like(v) for k, v in entries.items() if k.startswith("moments.")})
    second = run(write_seed_ckpt(tmp_path / "zero.ckpt", zero), "b")
    w1 = ckpt_io.load_file(first["checkpoint"])["model"]["fc.weight"]
    w2 = ckpt_io.load_file(second["checkpoint"])["model"]["fc.weight"]
    assert not torch.allclose(w1, w2)
    # Buffers of the wrong shape are refused before training starts.
    bad = dict(entries, **{"moments.fc.bias": torch.zeros(7)})
    with pytest.raises(ckpt_io.CheckpointError, match=r"momentum buffers.*fc\.bias: file \(7,\) vs model \(4,\)"):
        run(write_seed_ckpt(tmp_path / "bad.ckpt", bad), "c")
    # Another optimiser has no use for Momentum buffers: they are left out, with a word, and it trains.
    capsys.readouterr()
    adamw = run(path, "d", "--opt=adamw", "--lr_max=0.002")
    assert "buffers (its global_step 24) left out: they are the seed's Momentum optimiser's, this run's is adamw" \
        in capsys.readouterr().out
    assert ckpt_io.load_file(adamw["checkpoint"])["optimizer"]["state"][0].keys() == {"step", "exp_avg", "exp_avg_sq"}
    # Frozen layers (fine-tuning) get no buffers: the optimiser does not hold them, and torch refused to
    # save its state with theirs in it, after a whole epoch of training.
    frozen = run(path, "e", "--freeze_layers=13")
    trained = [p for name, p in MobileNetV1(4, 0.25).freeze(13).named_parameters() if p.requires_grad]
    assert f"momentum buffers of {len(trained)} parameters restored" in capsys.readouterr().out
    assert len(ckpt_io.load_file(frozen["checkpoint"])["optimizer"]["state"]) == len(trained) < n
    # Our own training checkpoints convert with their optimiser as the seed's hold it: SGD's buffers become
    # moments (a frozen layer's zeros, as MindSpore starts them), its steps global_step; AdamW's state is named
    # as left out.
    for result, freeze in ((first, 0), (frozen, 13)):
        ours = ckpt_io.load_file(result["checkpoint"])
        net = MobileNetV1(4, 0.25).freeze(freeze)
        opt = engine.make_optimizer(net, 0.1, 0.9, 1e-4, torch.device("cpu"))
        opt.load_state_dict(ours["optimizer"])  # training's own way to put each buffer to its parameter
        assert cli.main(["convert", result["checkpoint"], str(tmp_path / "conv.ckpt")]) == 0
        back = ckpt_io.load_file(str(tmp_path / "conv.ckpt"))
        assert back["global_step"] == ours["step"] > 0 and len(back["moments"]) == n
        for name, p in net.named_parameters():
            held = opt.state[p]["momentum_buffer"] if p.requires_grad else torch.zeros_like(p)
            assert torch.equal(back["moments"][name], held), name
    assert cli.main(["convert", first["checkpoint"], str(tmp_path / "weights.ckpt"), "--weights_only"]) == 0
    assert {"moments", "global_step"}.isdisjoint(ckpt_io.load_file(str(tmp_path / "weights.ckpt")))
    capsys.readouterr()
    assert cli.main(["convert", adamw["checkpoint"], str(tmp_path / "adamw.ckpt")]) == 0
    assert "its adamw optimiser's state has no MindSpore Momentum counterpart" in capsys.readouterr().err
    assert "moments" not in ckpt_io.load_file(str(tmp_path / "adamw.ckpt"))
    # Resumed, the run takes nothing from pre_trained: its buffers are not said to be restored.
    run(path, "a", "--epoch_size=4", "--resume=auto")
    out = capsys.readouterr().out
    assert "momentum buffers" not in out and f"pre_trained {path} is not used" in out and ", epoch 4, precision" in out


def test_convert_cli_both_directions_and_errors(tmp_path, capsys):
    model = trained_looking(1001, 0.25)
    seed = write_seed_ckpt(tmp_path / "seed.ckpt", seed_entries(model, moments=True, global_step=1251))
    assert cli.main(["convert", seed, str(tmp_path / "ours.pt")]) == 0
    out, err = capsys.readouterr()
    assert f"note: learning_rate, momentum in {seed} (the MindSpore run's optimiser settings" in err
    assert out.startswith(f"wrote {tmp_path / 'ours.pt'}: PyTorch checkpoint, ") and \
        "(MobileNetV1 width_mult 0.25, 1001 classes, momentum buffers, global_step 1251) from " in out
    assert mindspore_io.detect_format(str(tmp_path / "ours.pt")) == "torch"
    ck = ckpt_io.load_file(str(tmp_path / "ours.pt"))
    assert ck["model_args"] == {"class_num": 1001, "width_mult": 0.25}  # SAME presumed of the .ckpt, not recorded
    # Back to MindSpore, named .ckpt like our own training checkpoints, but written as protobuf.
    assert cli.main(["convert", str(tmp_path / "ours.pt"), str(tmp_path / "again.ckpt")]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {tmp_path / 'again.ckpt'}: MindSpore checkpoint, ")
    assert mindspore_io.detect_format(str(tmp_path / "again.ckpt")) == "mindspore"
    raw, _ = mindspore_io.read_mindspore_ckpt(str(tmp_path / "again.ckpt"))
    original, _ = mindspore_io.read_mindspore_ckpt(seed)
    for name, t in raw.items():
        assert torch.equal(t, original[name]), name
    assert set(original) - set(raw) == {"learning_rate", "momentum"}  # optimiser settings, not state
    # --format overrides the extension; an unknown extension is an error; nothing is written on errors.
    assert cli.main(["convert", seed, str(tmp_path / "x.bin"), "--format", "safetensors"]) == 0
    assert mindspore_io.detect_format(str(tmp_path / "x.bin")) == "safetensors"
    assert cli.main(["convert", seed, str(tmp_path / "x.weights")]) == 1
    assert "cannot tell the format" in capsys.readouterr().err
    assert cli.main(["convert", seed, str(tmp_path / "ours.pt" / "sub" / "x.pt")]) == 1  # under a file
    assert f"DST {tmp_path / 'ours.pt' / 'sub' / 'x.pt'}: {tmp_path / 'ours.pt'} is a file, not a folder" in \
        capsys.readouterr().err
    bad = write_seed_ckpt(tmp_path / "bad.ckpt", {"conv1.weight": torch.zeros(2, 3, 3, 3)})
    assert cli.main(["convert", bad, str(tmp_path / "never.pt")]) == 1
    assert "bad.ckpt" in capsys.readouterr().err and not (tmp_path / "never.pt").exists()
    # A symmetric-padding model still converts, with a warning.
    sym = MobileNetV1(class_num=10, width_mult=0.25, padding="symmetric")
    ckpt_io.atomic_save({"model": sym.state_dict(), "model_args": {"class_num": 10, "width_mult": 0.25,
                                                                   "padding": "symmetric"}}, str(tmp_path / "s.pt"))
    assert cli.main(["convert", str(tmp_path / "s.pt"), str(tmp_path / "s.ckpt")]) == 0
    assert "pads SAME" in capsys.readouterr().err
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_an_exported_files_name_is_not_answered_with_a_format_option_that_is_refused_too(tmp_path, capsys):
    """convert to model.onnx (or .pte, .pt2, .tflite) without --format advised `--format ckpt|pt|safetensors`,
    which is refused under those names: the advice names the extensions that take a checkpoint alone, and a name
    of no kind still offers --format."""
    src = str(tmp_path / "a.pt")
    ckpt_io.atomic_save({"model": MobileNetV1(class_num=10, width_mult=0.25).state_dict(),
                         "model_args": {"class_num": 10, "width_mult": 0.25}}, src)
    for ext in (".onnx", ".pte", ".pt2", ".tflite", ".ONNX"):
        dst = str(tmp_path / f"model{ext}")
        assert cli.main(["convert", src, dst]) == 1, ext
        err = capsys.readouterr().err
        assert f"{dst}: the extension {ext.lower()} is the name of " in err and "not of a checkpoint" in err, err
        assert "--format" not in err.replace("--file_format", ""), err
        assert cli.main(["convert", src, dst, "--format", "pt"]) == 1  # what the old advice led to
        assert "--format pt under the extension" in capsys.readouterr().err
    assert cli.main(["convert", src, str(tmp_path / "model.weights")]) == 1
    assert "or pass --format ckpt|pt|safetensors" in capsys.readouterr().err
    assert cli.main(["convert", src, str(tmp_path / "model.safetensors")]) == 0
    assert sorted(os.listdir(tmp_path)) == ["a.pt", "model.safetensors"]


def test_convert_keeps_what_predict_and_export_read(tmp_path, capsys):
    """A converted file keeps the training run's configuration and class names (in a .safetensors as JSON
    metadata): without them predict and export fall back to 224x224 and a guessed normalisation."""
    from mobilenet_v1.config import to_dict
    from mobilenet_v1.predict import load_predictor

    model = trained_looking(10, 0.25)
    cfg = load_config(["--dataset=imagenet2012", "--class_num=10", "--width_mult=0.25", "--image_size=40"])
    classes = [f"class_{i}" for i in range(10)]
    src = str(tmp_path / "mobilenetv1-1_5.ckpt")
    ckpt_io.atomic_save({"format": ckpt_io.FORMAT, "model": model.state_dict(),
                         "model_args": {"class_num": 10, "width_mult": 0.25, "padding": "same"},
                         "config": to_dict(cfg), "classes": classes,
                         "held_out": {"val_split": 0.1, "folder": "/data/photos"}}, src)
    pt, st, back = str(tmp_path / "m.pt"), str(tmp_path / "m.safetensors"), str(tmp_path / "back.pt")
    assert cli.main(["convert", src, pt]) == 0
    assert cli.main(["convert", src, st]) == 0
    assert cli.main(["convert", st, back]) == 0  # and on from a .safetensors
    assert capsys.readouterr().err == ""
    for path in (pt, st, back):
        ck = ckpt_io.load_file(path)
        assert ck["config"] == to_dict(cfg), path
        assert ck["classes"] == classes, path
        assert ck["held_out"] == {"val_split": 0.1, "folder": "/data/photos"}, path  # eval finds them again
        assert ck["model_args"] == {"class_num": 10, "width_mult": 0.25, "padding": "same"}, path
        predictor = load_predictor(path)
        assert (predictor.dataset, predictor.image_size, predictor.names) == ("imagenet2012", 40, classes), path
    # A MindSpore .ckpt cannot hold them: converted all the same, and the user is told.
    assert cli.main(["convert", pt, str(tmp_path / "m.ckpt")]) == 0
    err = capsys.readouterr().err
    assert "training configuration" in err and "class names" in err and "m.ckpt" in err and "val_split" in err


def test_a_safetensors_says_whether_its_weights_are_the_seeds_as_the_file_it_was_written_from(tmp_path, capsys):
    """A .safetensors is in MindSpore's names whoever trained the weights: one written from a PyTorch state dict
    that records no settings resizes photos as that file does (eval, predict and export follow
    trained_antialias), not as the seed did; one of the seed's weights keeps the seed's plain bilinear."""
    from mobilenet_v1.averaging import average

    bare = str(tmp_path / "bare.pt")
    torch.save(trained_looking(10, 0.25).state_dict(), bare)  # torch.save(model.state_dict()): no settings
    torch.save(trained_looking(10, 0.25, seed=1).state_dict(), str(tmp_path / "bare1.pt"))
    seed = write_seed_ckpt(tmp_path / "seed.ckpt", seed_entries(trained_looking(10, 0.25, seed=2)))
    assert ckpt_io.trained_antialias(ckpt_io.load_file(bare)) is None  # not said: eval's own default
    assert cli.main(["convert", bare, str(tmp_path / "bare.safetensors")]) == 0
    average([bare, str(tmp_path / "bare1.pt")], str(tmp_path / "mean.safetensors"))
    assert cli.main(["convert", seed, str(tmp_path / "seed.safetensors")]) == 0
    average([seed, str(tmp_path / "seed.safetensors")], str(tmp_path / "seed_mean.safetensors"))
    for name, want in (("bare.safetensors", None), ("mean.safetensors", None), ("seed.safetensors", False),
                       ("seed_mean.safetensors", False)):
        assert ckpt_io.trained_antialias(ckpt_io.load_file(str(tmp_path / name))) is want, name
    capsys.readouterr()
    assert cli.main(["info", str(tmp_path / "bare.safetensors")]) == 0
    assert "as the seed resized" not in capsys.readouterr().out
    # and on into a .pt: the seed's weights say so there too, the others do not
    for name, want in (("bare.safetensors", None), ("seed.safetensors", False)):
        assert cli.main(["convert", str(tmp_path / name), str(tmp_path / "back.pt")]) == 0
        assert ckpt_io.trained_antialias(ckpt_io.load_file(str(tmp_path / "back.pt"))) is want, name


@pytest.mark.parametrize("width_mult", [0.1, 0.3, 0.6, 1.3])
def test_any_width_round_trips_through_a_mindspore_file(tmp_path, width_mult):
    """A MindSpore .ckpt records no width: it is read off every layer's channel count. The last layer's
    alone (1024 x alpha) gives 616 / 1024 at 0.6, whose 512-channel layers have 312 channels, not 304."""
    from mobilenet_v1.api import infer_model_args

    model = trained_looking(10, width_mult)
    state = model.state_dict()
    args = infer_model_args(state, "bare")
    rebuilt = MobileNetV1(args["class_num"], args["width_mult"]).state_dict()
    assert args == {"class_num": 10, "width_mult": width_mult}  # the simplest width that fits: the one typed
    assert {k: v.shape for k, v in rebuilt.items()} == {k: v.shape for k, v in state.items()}
    bare, ms, back = str(tmp_path / "bare.pt"), str(tmp_path / "w.ckpt"), str(tmp_path / "back.pt")
    torch.save(state, bare)  # a bare state dict: no model_args either
    assert mindspore_io.convert(bare, ms)["width_mult"] == width_mult
    assert mindspore_io.convert(ms, back)["width_mult"] == width_mult
    # A file recording its class count but not its width (written by hand) has the width read off it too.
    ckpt_io.atomic_save({"model": state, "model_args": {"class_num": 10}}, str(tmp_path / "half.pt"))
    assert load_model(str(tmp_path / "half.pt")).width_mult == width_mult
    again = ckpt_io.load_file(back)["model"]
    assert set(again) == set(state)
    for name, t in state.items():
        if name.endswith("num_batches_tracked"):
            assert int(again[name]) == 0  # MindSpore has no such counter
        else:
            assert torch.equal(again[name], t), name


def test_channel_counts_of_no_single_width_are_refused(tmp_path):
    from mobilenet_v1.api import infer_model_args

    state = MobileNetV1(10, 0.6).state_dict()
    mixed = dict(state, **{"network.12.0.weight": torch.zeros(296, 152, 1, 1)})  # 0.6 elsewhere, 0.58 here
    with pytest.raises(ckpt_io.CheckpointError, match=r"no width_mult gives every layer.*network\.12.* 296"):
        infer_model_args(mixed, "mixed")
    odd = dict(state, **{"network.12.0.weight": torch.zeros(300, 152, 1, 1)})
    with pytest.raises(ckpt_io.CheckpointError, match=r"network\.12 has 300 channels.*multiples of 8"):
        infer_model_args(odd, "odd")
    ms = str(tmp_path / "mixed.ckpt")
    mindspore_io.write_mindspore_ckpt(ms, mindspore_io.to_seed_state({"model": mixed}))
    # Loading names the layer that disagrees with the others, as for any shape that does not fit.
    with pytest.raises(ckpt_io.CheckpointError, match=r"network\.12\.0\.weight: file \(296, 152, 1, 1\) vs model "
                                                      r"\(304, 152, 1, 1\).*no width_mult gives every layer"):
        load_model(ms)
    assert cli.main(["convert", ms, str(tmp_path / "never.pt")]) == 1
    # Classifier inputs of no width's count (300, not a multiple of 8): nothing to build the network at.
    mindspore_io.write_mindspore_ckpt(ms, mindspore_io.to_seed_state({"model": dict(state, **{
        "fc.weight": torch.zeros(10, 300)})}))
    with pytest.raises(ckpt_io.CheckpointError, match=r"mixed\.ckpt: fc \(its inputs\) has 300 channels, which no "
                                                      r"width_mult gives .*: not a MobileNetV1 of one width$"):
        load_model(ms)
    assert not (tmp_path / "never.pt").exists()


def test_convert_takes_a_run_folder_as_eval_does(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for epoch, seed in ((1, 0), (2, 1)):
        ckpt_io.atomic_save({"model": trained_looking(10, 0.25, seed).state_dict()},
                            str(run / ckpt_io.checkpoint_name(epoch, 5)))
    assert cli.main(["convert", str(run), str(tmp_path / "newest.pt")]) == 0
    assert "mobilenetv1-2_5.ckpt" in capsys.readouterr().out
    newest = ckpt_io.load_file(str(tmp_path / "newest.pt"))["model"]
    assert torch.equal(newest["fc.bias"], trained_looking(10, 0.25, 1).fc.bias)
    # A folder with no checkpoint is named as a folder, not as a missing file.
    (tmp_path / "empty").mkdir()
    assert cli.main(["convert", str(tmp_path / "empty"), str(tmp_path / "never.pt")]) == 1
    err = capsys.readouterr().err
    assert "folder" in err and "no such file" not in err
    with pytest.raises(ckpt_io.CheckpointError, match="a folder, not a file"):
        ckpt_io.load_file(str(run))
    assert not (tmp_path / "never.pt").exists()


# timm's MobileNetV1 state dict, by its own naming scheme (written out here, not taken from our reader):
# conv_stem/bn1, then blocks.<stage>.<block> of conv_dw/bn1 and conv_pw/bn2 over stages of 1, 2, 2, 6 and
# 2 blocks, then classifier.
TIMM_STAGES = (1, 2, 2, 6, 2)


def timm_names() -> list:
    """(timm's prefix, our prefix) for every conv and BatchNorm, in layer order."""
    pairs = [("conv_stem", "network.0.0"), ("bn1", "network.0.1")]
    layer = 1
    for stage, blocks in enumerate(TIMM_STAGES):
        for block in range(blocks):
            p = f"blocks.{stage}.{block}"
            pairs += [(f"{p}.conv_dw", f"network.{layer}.0"), (f"{p}.bn1", f"network.{layer}.1"),
                      (f"{p}.conv_pw", f"network.{layer + 1}.0"), (f"{p}.bn2", f"network.{layer + 1}.1")]
            layer += 2
    return pairs + [("classifier", "fc")]


def test_timm_weights_load_with_their_normalisation_folded_into_the_first_layer(tmp_path, capsys):
    """A bare timm state dict (.bin, .safetensors) loads as a model of padding symmetric. Every tensor is
    timm's but the first convolution and its BatchNorm's mean, which make our ImageNet-normalised input
    give what timm's mean/std 0.5 gave: the first layer's outputs agree inside the image's edge."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    reference = MobileNetV1(class_num=5, width_mult=0.25, padding="symmetric").eval()
    with torch.no_grad():
        for name, t in reference.state_dict().items():
            if t.is_floating_point():
                t.uniform_(0.5, 1.5) if "running_var" in name else t.normal_()
    ours_state = reference.state_dict()
    timm_state = {}
    for theirs, ours in timm_names():
        for name, t in ours_state.items():
            if name.startswith(ours + "."):
                timm_state[theirs + name[len(ours):]] = t.clone()
    assert len(timm_state) == len(ours_state)
    torch.save(timm_state, str(tmp_path / "pytorch_model.bin"))
    save_file(timm_state, str(tmp_path / "model.safetensors"))
    x = torch.rand(2, 3, 40, 40)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    for f in ("pytorch_model.bin", "model.safetensors"):
        model = load_model(str(tmp_path / f))
        assert (model.padding, model.class_num, model.width_mult) == ("symmetric", 5, 0.25)
        state = model.state_dict()
        changed = {"network.0.0.weight", "network.0.1.running_mean"}
        for name, t in ours_state.items():
            assert torch.equal(state[name], t) != (name in changed), name
        with torch.no_grad():
            got = model.network[0](((x - mean) / std))
            want = reference.network[0]((x - 0.5) / 0.5)
        assert torch.allclose(got[..., 1:-1, 1:-1], want[..., 1:-1, 1:-1], atol=1e-4)
        assert not torch.allclose(got, want, atol=1e-4)  # the edge, where zero padding means another colour
    # convert writes ours and says what was done; the result records an ImageNet model.
    assert cli.main(["convert", str(tmp_path / "model.safetensors"), str(tmp_path / "ours.pt")]) == 0
    assert "timm's MobileNetV1 weights (ReLU6, padding symmetric)" in capsys.readouterr().out
    saved = ckpt_io.load_file(str(tmp_path / "ours.pt"))
    assert saved["config"]["dataset"] == "imagenet2012" and saved["model_args"]["padding"] == "symmetric"
    # resized bicubic, as timm trains and evaluates them: predict (and eval) follow it unless told otherwise
    from mobilenet_v1.predict import load_predictor
    assert saved["config"]["interpolation"] == "bicubic"
    assert load_predictor(str(tmp_path / "model.safetensors")).interpolation == "bicubic"
    for f, container in (("model.safetensors", "timm's weights (safetensors)"),
                         ("pytorch_model.bin", "timm's weights (PyTorch)"), ("ours.pt", "mobilenet-v1 checkpoint")):
        assert cli.main(["info", str(tmp_path / f)]) == 0
        text = capsys.readouterr().out
        assert f"{tmp_path / f}: {container}" in text and "width_mult 0.25, 5 classes, padding symmetric" in text
        assert "data:           imagenet2012, no image size recorded" in text
    # timm's variants with a head convolution are another network: named, not loaded.
    timm_state["conv_head.weight"] = torch.zeros(8, 256, 1, 1)
    torch.save(timm_state, str(tmp_path / "h.bin"))
    with pytest.raises(ckpt_io.CheckpointError, match=r"h.bin: timm's names of no MobileNetV1 layer: "
                                                      r"conv_head.weight: another of timm's networks \(its "
                                                      r"mobilenetv1_\*h models end in a head"):
        load_model(str(tmp_path / "h.bin"))


def test_a_bare_state_dict_without_batchnorm_counters_loads_as_pytorch_loads_it(tmp_path):
    """A bare state dict saved without BatchNorm's num_batches_tracked (timm's hub files can be) loads, the
    counters 0 as PyTorch's BatchNorm sets them, ours and timm's names alike, for fine-tuning too; any other
    name missing is still refused, and named."""
    from safetensors.torch import save_file

    reference = trained_looking(5, 0.25).eval()
    counted = {k for k in reference.state_dict() if k.endswith(".num_batches_tracked")}
    state = {k: v for k, v in reference.state_dict().items() if k not in counted}
    torch.save(state, str(tmp_path / "bare.pt"))
    timm_state = {theirs + name[len(ours):]: t for theirs, ours in timm_names() for name, t in state.items()
                  if name.startswith(ours + ".")}
    assert len(timm_state) == len(state) and not any("num_batches" in k for k in timm_state)
    torch.save(timm_state, str(tmp_path / "pytorch_model.bin"))
    save_file(timm_state, str(tmp_path / "model.safetensors"))
    x = torch.rand(2, 3, 32, 32)
    model = load_model(str(tmp_path / "bare.pt"))
    assert all(int(model.state_dict()[k]) == 0 for k in counted)
    with torch.no_grad():
        assert torch.equal(model(x), reference(x))
    for f in ("pytorch_model.bin", "model.safetensors"):
        loaded = load_model(str(tmp_path / f)).state_dict()
        assert all(int(loaded[k]) == 0 for k in counted), f
        assert torch.equal(loaded["network.5.1.running_var"], state["network.5.1.running_var"]), f
    # Fine-tuning's loading (another class count: the classifier left out) takes it too.
    other = MobileNetV1(class_num=3, width_mult=0.25)
    assert ckpt_io.load_weights(other, state, "bare.pt", skip_head_mismatch=True) == ["fc.weight", "fc.bias"]
    assert torch.equal(other.network[5][1].running_var, state["network.5.1.running_var"])
    cut = {k: v for k, v in state.items() if k != "network.5.1.running_var"}
    with pytest.raises(ckpt_io.CheckpointError, match=r"^checkpoint cut.pt does not fit this model \(missing 1: "
                                                      r"network\.5\.1\.running_var \(32,\)\)$"):
        ckpt_io.load_weights(MobileNetV1(class_num=5, width_mult=0.25), cut, "cut.pt")


def test_a_safetensors_header_length_ending_in_0x80_is_no_pickle_and_bad_model_args_are_named(tmp_path, capsys):
    """safetensors begins with its header's length (8 bytes, little-endian): one in 256 files begins with
    0x80, a pickle's first byte. Such a file, ours, is read as safetensors (its names mapped, its metadata
    kept). A file whose model_args cannot build a model is refused naming the file and the key."""
    model = trained_looking(10, 0.25)
    path = tmp_path / "m.safetensors"
    for pad in range(256):
        meta = {mindspore_io._MODEL_ARGS_KEY: '{"class_num": 10, "width_mult": 0.25, "padding": "same"}',
                "note": "x" * pad}
        mindspore_io.write_safetensors(str(path), seed_entries(model), meta)
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80 and mindspore_io.detect_format(str(path)) == "safetensors"
    assert cli.main(["convert", str(path), str(tmp_path / "back.pt")]) == 0
    back = ckpt_io.load_file(str(tmp_path / "back.pt"))
    assert back["model_args"] == {"class_num": 10, "width_mult": 0.25, "padding": "same"}
    for k, v in model.state_dict().items():
        assert k.endswith("num_batches_tracked") or torch.equal(back["model"][k], v), k  # the seed has none
    capsys.readouterr()
    for key, value in (("class_num", '"10"'), ("class_num", "10.0"), ("class_num", "0"), ("width_mult", "null"),
                       ("width_mult", "0")):  # a count of none, or not a whole number, builds no classifier
        meta = {mindspore_io._MODEL_ARGS_KEY: f'{{"class_num": 10, "width_mult": 0.25, "{key}": {value}}}'}
        mindspore_io.write_safetensors(str(path), seed_entries(model), meta)
        assert cli.main(["convert", str(path), str(tmp_path / "never.pt")]) == 1
        assert f"checkpoint {path}: its model_args have {key} " in capsys.readouterr().err
    ckpt_io.atomic_save({"model": model.state_dict(), "model_args": {"class_num": 10, "width_mult": -1}},
                        str(tmp_path / "bad.pt"))
    assert cli.main(["convert", str(tmp_path / "bad.pt"), str(tmp_path / "never.pt")]) == 1
    assert "its model_args have width_mult -1: width_mult a number > 0 is needed" in capsys.readouterr().err
    # A padding name the model has not (the seed's pad_mode spelling, upper case): the file named, not only the model.
    ckpt_io.atomic_save({"model": model.state_dict(), "model_args": {"class_num": 10, "width_mult": 0.25,
                                                                      "padding": "SAME"}}, str(tmp_path / "bad.pt"))
    assert cli.main(["convert", str(tmp_path / "bad.pt"), str(tmp_path / "never.pt")]) == 1
    assert (f"checkpoint {tmp_path / 'bad.pt'}: its model_args have padding 'SAME': padding a name (same or "
            f"symmetric) is needed") in capsys.readouterr().err
    # qat 1, hand-edited: named with the file too (the model refuses a flag that is no bool, naming neither).
    ckpt_io.atomic_save({"model": model.state_dict(), "model_args": {"class_num": 10, "width_mult": 0.25,
                                                                      "qat": 1}}, str(tmp_path / "bad.pt"))
    assert cli.main(["convert", str(tmp_path / "bad.pt"), str(tmp_path / "never.pt")]) == 1
    assert f"checkpoint {tmp_path / 'bad.pt'}: its model_args have qat 1: qat true or false is needed" in \
        capsys.readouterr().err
    assert not (tmp_path / "never.pt").exists()


def test_nonfinite_momentum_buffers_are_never_continued_nor_written(cifar_dir, tmp_path, capsys):
    """Momentum buffers holding NaN: convert copied them into the file it wrote (from a MindSpore file, or from a
    training checkpoint of ours whose optimizer state info says --resume refuses), info called that file one whose
    buffers continue, and --pre_trained with --pretrain_epoch_size took them: the run died at its first step with an
    error blaming the learning rate. Now convert leaves them out with a note, --pre_trained refuses them by name,
    and info says so."""
    import json

    entries = seed_entries(trained_looking(4, 0.25), moments=True, global_step=24)
    entries["moments.network.3.0.weight"].view(-1)[0] = float("nan")
    path = write_seed_ckpt(tmp_path / "nan.ckpt", entries)
    assert cli.main(["info", path, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["momentum_buffers"] is False and got["nonfinite_tensors"] == ["momentum buffers"]
    assert cli.main(["info", path]) == 0
    text = capsys.readouterr().out
    assert "resume:         no: its momentum buffers hold NaN or infinite values" in text
    assert "weights:        trained\n" in text  # buffers beside them: trained weights, as of any seed training file
    with pytest.raises(ckpt_io.CheckpointError, match=r"momentum buffers hold NaN or infinite values \(moments\."
                                                      r"network\.3\.0\.weight\).*--pretrain_epoch_size 0"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--class_num=4", "--epoch_size=3",
                                       "--pretrain_epoch_size=2", f"--pre_trained={path}",
                                       f"--save_checkpoint_path={tmp_path / 'run'}"]))
    capsys.readouterr()
    for dst in ("a.pt", "a.ckpt"):
        assert cli.main(["convert", path, str(tmp_path / dst)]) == 0
        assert "momentum buffers hold NaN or infinite values (moments.network.3.0.weight)" in capsys.readouterr().err
        back = ckpt_io.load_file(str(tmp_path / dst))
        assert "moments" not in back and back["global_step"] == 24
    # A training checkpoint of ours with a damaged optimizer state: its buffers are not written either.
    result = train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--class_num=4", "--epoch_size=1",
                                            f"--save_checkpoint_path={tmp_path / 'ours'}"]))
    ours = ckpt_io.load_file(result["checkpoint"])
    buffer = ours["optimizer"]["state"][0]["momentum_buffer"]  # the first parameter's: network.0.0.weight
    buffer[(0,) * buffer.dim()] = float("inf")
    ckpt_io.atomic_save(ours, str(tmp_path / "damaged.pt"))
    capsys.readouterr()
    assert cli.main(["convert", str(tmp_path / "damaged.pt"), str(tmp_path / "b.ckpt")]) == 0
    assert ("its momentum buffers hold NaN or infinite values (moments.network.0.0.weight), which a continued run "
            "refuses, and are left out") in capsys.readouterr().err
    assert "moments" not in ckpt_io.load_file(str(tmp_path / "b.ckpt"))


def test_momentum_buffers_that_do_not_fit_are_named_as_the_file_names_them_and_leave_its_weights_usable(
        cifar_dir, tmp_path, capsys):
    """Buffers missing for a layer, or of another shape, beside whole weights (helper-282): convert --weights_only
    refused the file though it writes no buffers, info said its buffers continue where train refused them, and the
    errors named entries the file has not (moments.network.3.1.weight for its moments.network.3.1.gamma)."""
    import json

    entries = seed_entries(trained_looking(4, 0.25), moments=True, global_step=24)
    for name in ("moments.network.3.0.weight", "moments.network.3.1.gamma", "moments.network.3.1.beta"):
        del entries[name]
    entries["moments.fc.weight"] = torch.zeros(5, entries["fc.weight"].shape[1])
    path = write_seed_ckpt(tmp_path / "part.ckpt", entries)
    misfit = (r"missing moments\.network\.3\.0\.weight, moments\.network\.3\.1\.gamma, moments\.network\.3\.1\.beta; "
              r"wrong shape: moments\.fc\.weight: file \(5, 256\) vs model \(4, 256\)")
    assert cli.main(["info", path, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["momentum_buffers"] is False and re.fullmatch(misfit, got["momentum_buffers_misfit"])
    assert cli.main(["info", path]) == 0
    text = capsys.readouterr().out
    assert re.search(rf"resume: +no: its momentum buffers do not fit its network \({misfit}\)", text)
    assert "weights:        trained\n" in text
    with pytest.raises(ckpt_io.CheckpointError, match=rf"momentum buffers do not fit this model \({misfit}\); "
                                                      r"--pretrain_epoch_size 0 starts from its weights"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--class_num=4", "--epoch_size=3",
                                       "--pretrain_epoch_size=2", f"--pre_trained={path}",
                                       f"--save_checkpoint_path={tmp_path / 'run'}"]))
    assert cli.main(["convert", path, str(tmp_path / "a.pt")]) == 1
    assert re.search(rf"\({misfit}\); convert --weights_only writes its weights without them", capsys.readouterr().err)
    assert not (tmp_path / "a.pt").exists()
    assert cli.main(["convert", "--weights_only", path, str(tmp_path / "w.pt")]) == 0
    back = ckpt_io.load_file(str(tmp_path / "w.pt"))
    assert "moments" not in back and torch.equal(back["model"]["fc.weight"], entries["fc.weight"])


def test_info_of_a_file_written_from_a_mindspore_file_without_buffers_does_not_call_its_weights_trained(tmp_path,
                                                                                                       capsys):
    """A MindSpore .ckpt without Momentum buffers may hold a run's moving average (convert of an --ema_decay run
    writes that), and info says its weights are not recorded; the .pt and .safetensors convert wrote from it were
    called "weights: trained", which nothing in them records."""
    path = write_seed_ckpt(tmp_path / "w.ckpt", seed_entries(trained_looking(4, 0.25)))
    for dst in ("w.pt", "w.safetensors"):
        assert cli.main(["convert", path, str(tmp_path / dst)]) == 0
        capsys.readouterr()
        assert cli.main(["info", str(tmp_path / dst)]) == 0
        text = capsys.readouterr().out
        assert "weights:        not recorded: a MindSpore .ckpt without Momentum buffers" in text, dst
        assert "weights:        trained" not in text
    # With its buffers beside them the weights are trained ones, in any format.
    path = write_seed_ckpt(tmp_path / "m.ckpt", seed_entries(trained_looking(4, 0.25), moments=True, global_step=24))
    assert cli.main(["convert", path, str(tmp_path / "m.pt")]) == 0
    capsys.readouterr()
    assert cli.main(["info", str(tmp_path / "m.pt")]) == 0
    assert "weights:        trained\n" in capsys.readouterr().out


def test_resume_of_a_file_with_momentum_buffers_says_how_they_continue(cifar_dir, tmp_path):
    """--resume of a seed training file (or convert's of ours) is refused, as a file without the training state; it
    said to pass the weights with --pre_trained, and not that --pretrain_epoch_size continues its buffers."""
    path = write_seed_ckpt(tmp_path / "m.ckpt", seed_entries(trained_looking(4, 0.25), moments=True, global_step=24))
    with pytest.raises(ckpt_io.CheckpointError, match=r"pass weights with --pre_trained instead; with "
                                                      r"--pretrain_epoch_size N, the epochs its run completed \(its "
                                                      r"global_step 24\), its momentum buffers continue"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--class_num=4", "--epoch_size=3",
                                       f"--resume={path}", f"--save_checkpoint_path={tmp_path / 'run'}"]))
    bare = write_seed_ckpt(tmp_path / "w.ckpt", seed_entries(trained_looking(4, 0.25)))
    with pytest.raises(ckpt_io.CheckpointError, match=r"pass weights with --pre_trained instead$"):
        train.run(load_config(SMALL + [f"--dataset_path={cifar_dir}", "--class_num=4", "--epoch_size=3",
                                       f"--resume={bare}", f"--save_checkpoint_path={tmp_path / 'run2'}"]))


def test_a_timm_train_py_checkpoint_loads_its_weights_average_and_normalisation(tmp_path, capsys):
    """timm's train.py writes model_best.pth.tar: state_dict, state_dict_ema (--model-ema), epoch, arch, metric,
    the optimiser's state and its args, an argparse.Namespace, which weights_only refused ("pickled Python
    objects"), so a model trained with timm could not be brought here. Its weights and average load, folded
    from the run's own --mean/--std, resized as its --interpolation at its --img-size; its args' objects are
    still unpickled as weights_only does (another class is refused)."""
    import argparse
    import copy
    import pathlib

    torch.manual_seed(0)
    nets = [MobileNetV1(class_num=5, width_mult=0.25, padding="symmetric").eval() for _ in range(2)]
    with torch.no_grad():
        for net in nets:
            for name, t in net.state_dict().items():
                if t.is_floating_point():
                    t.uniform_(0.5, 1.5) if "running_var" in name else t.normal_()
    trained, average = [{theirs + name[len(ours):]: t.clone() for theirs, ours in timm_names()
                         for name, t in net.state_dict().items() if name.startswith(ours + ".")} for net in nets]
    optimizer = torch.optim.SGD(nets[0].parameters(), lr=0.1, momentum=0.9)
    mean, std = [0.4, 0.45, 0.5], [0.2, 0.25, 0.3]
    args = argparse.Namespace(model="mobilenetv1_100", mean=mean, std=std, interpolation="bilinear", img_size=160,
                              crop_pct=0.95, model_ema=True, model_ema_decay=0.9998, data_dir="/data/imagenet",
                              scale=[0.08, 1.0], aa="rand-m9-mstd0.5-inc1", smoothing=0.1, amp=True, epochs=300)
    path = tmp_path / "model_best.pth.tar"
    torch.save({"epoch": 7, "arch": "mobilenetv1_100", "state_dict": trained, "optimizer": optimizer.state_dict(),
                "version": 2, "args": args, "metric": 61.25, "state_dict_ema": average}, str(path))
    x = torch.rand(2, 3, 40, 40)
    imagenet = (x - torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(
        1, 3, 1, 1)
    theirs = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    for use_ema, reference in ((False, nets[0]), (True, nets[1])):
        model = load_model(str(path), use_ema=use_ema)
        assert torch.equal(model.fc.weight, reference.fc.weight)
        with torch.no_grad():
            got, want = model.network[0](imagenet), reference.network[0](theirs)
        assert torch.allclose(got[..., 1:-1, 1:-1], want[..., 1:-1, 1:-1], atol=1e-4)
    assert cli.main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "data:           imagenet2012, image_size 160" in text and "interpolation bilinear" in text
    assert "crop_pct 0.95" in text  # train.py's --crop-pct: its evaluation's centre crop, which eval follows
    assert "exponential moving average (ema_decay 0.9998), which eval, export and predict take" in text
    assert ("imported:       timm's train.py checkpoint (arch mobilenetv1_100, epoch 7, metric 61.25): its MobileNetV1 "
            "weights (ReLU6, padding symmetric); its first convolution rescaled from timm's input normalisation (mean "
            "0.4,0.45,0.5, std 0.2,0.25,0.3) to ImageNet's") in text
    assert cli.main(["convert", str(path), str(tmp_path / "ours.pt"), "--use_ema", "False"]) == 0
    assert "the trained weights (--use_ema False; the file also holds their average, ema_decay 0.9998)" in \
        capsys.readouterr().out
    assert torch.equal(ckpt_io.load_file(str(tmp_path / "ours.pt"))["model"]["fc.weight"], nets[0].fc.weight)
    # Names of a parallel model's (module., which timm's clean_state_dict strips) or a compiled one's load alike,
    # and both nested either way: torch.compile(DDP(model)) saves _orig_mod.module. (refused before, naming module.).
    for prefix in ("module.", "_orig_mod.", "_orig_mod.module.", "module._orig_mod."):
        torch.save({"epoch": 7, "state_dict": {prefix + k: t for k, t in trained.items()}, "version": 2, "args": args,
                    "state_dict_ema": {prefix + k: t for k, t in average.items()}}, str(tmp_path / "wrapped.pth.tar"))
        for use_ema, reference in ((False, nets[0]), (True, nets[1])):
            model = load_model(str(tmp_path / "wrapped.pth.tar"), use_ema=use_ema)
            assert torch.equal(model.fc.weight, reference.fc.weight)
            assert torch.equal(model.network[5][0].weight, reference.network[5][0].weight)
    # --input-size, where given, is the size timm's train.py takes, before --img-size (resolve_data_config).
    torch.save({"state_dict": trained, "args": argparse.Namespace(**{**vars(args), "input_size": [3, 192, 192]})},
               str(tmp_path / "size.pth.tar"))
    assert mindspore_io.read_any(str(tmp_path / "size.pth.tar"))["config"]["image_size"] == 192
    # A run with --bn-eps (timm's MobileNetV1 takes it): its BatchNorm's eps folded into the running variances.
    torch.save({"state_dict": trained, "args": argparse.Namespace(**{**vars(args), "bn_eps": 1e-3})},
               str(tmp_path / "eps.pth.tar"))
    model, reference = load_model(str(tmp_path / "eps.pth.tar")), copy.deepcopy(nets[0])
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eps = 1e-3
    h = torch.rand(2, reference.network[1][0].in_channels, 10, 10)
    with torch.no_grad():
        assert torch.allclose(model.network[1:](h), reference.network[1:](h), atol=1e-4)
    # Other objects among the args are refused as before, named; a std that is no normalisation too.
    torch.save({"state_dict": trained, "args": argparse.Namespace(output=pathlib.PurePosixPath("/out"))},
               str(tmp_path / "path.pth.tar"))
    with pytest.raises(ckpt_io.CheckpointError, match=r"pickled Python objects, not only tensors \(the first: "
                                                      r"pathlib.*PurePosixPath\)"):
        load_model(str(tmp_path / "path.pth.tar"))
    torch.save({"state_dict": trained, "args": argparse.Namespace(std=[0.0])}, str(tmp_path / "std.pth.tar"))
    with pytest.raises(ckpt_io.CheckpointError, match=r"std.pth.tar: its train.py args give std 0, not positive"):
        load_model(str(tmp_path / "std.pth.tar"))
    torch.save({"state_dict": trained, "args": argparse.Namespace(bn_eps=-1.0)}, str(tmp_path / "eps.pth.tar"))
    with pytest.raises(ckpt_io.CheckpointError, match=r"eps.pth.tar: its train.py args give bn_eps -1, not positive"):
        load_model(str(tmp_path / "eps.pth.tar"))


def test_a_timm_train_py_checkpoints_outputs_are_read_in_its_folders_natural_class_order(tmp_path, capsys):
    """timm's train.py numbers a folder's classes in natural order (lower case, digits by value: apple, class2,
    class10, Zebra), this toolkit sorts them (Zebra, apple, class10, class2): eval took output k as the k-th sorted
    class, each figure another class's. eval now labels the images in that order, for the checkpoint (with more
    outputs than classes too: timm keeps 1000 without --num-classes) and for a file exported from it; --teacher and
    --pre_trained take its classifier's rows in sorted order (the average's too). A run of timm's that read a data
    set otherwise (torchvision's folder, --class-map) is taken as it is; a MindSpore .ckpt cannot keep the record."""
    import argparse
    import json

    from conftest import jpeg_bytes, smooth_image

    natural, counts = ["apple", "class2", "class10", "Zebra"], {"class2": 3}
    root = tmp_path / "photos" / "validation_preprocess"
    for name in natural:
        (root / name).mkdir(parents=True)
        for i in range(counts.get(name, 1)):
            (root / name / f"{i}.jpg").write_bytes(jpeg_bytes(smooth_image(40, 40, seed=i)))

    def timm_file(name: str, outputs: int, **args) -> str:
        net = MobileNetV1(class_num=outputs, width_mult=0.25, padding="symmetric").eval()
        with torch.no_grad():  # whatever the image: timm's output 1, its class2 (3 of the 6 images)
            net.fc.weight.zero_()
            net.fc.bias.copy_(torch.arange(outputs) * 0.01 + 10.0 * (torch.arange(outputs) == 1))
        state = {theirs + k[len(ours):]: t.clone() for theirs, ours in timm_names()
                 for k, t in net.state_dict().items() if k.startswith(ours + ".")}
        torch.save({"epoch": 3, "state_dict": state, "state_dict_ema": state,
                    "args": argparse.Namespace(model="mobilenetv1_100", img_size=32, **args)}, str(tmp_path / name))
        return str(tmp_path / name)

    def top_1(path: str) -> float:
        capsys.readouterr()
        assert cli.main(["eval", "--dataset", "imagenet2012", "--dataset_path", str(tmp_path / "photos"),
                         "--checkpoint_path", path, "--device_target", "CPU", "--json", "--image_size", "32"]) == 0
        said = capsys.readouterr()
        assert (f"{path}: its run (timm's train.py) numbered the folder's classes in natural order (apple, class2, "
                f"class10, Zebra), this toolkit sorts them (Zebra, apple, class10, class2): the images are labelled "
                f"in that order") in said.err
        noted.append("labelled by their places in timm's natural order" in said.err)
        return json.loads(said.out)["top_1_accuracy"]

    noted = []
    four, six = timm_file("four.pth.tar", 4, dataset=""), timm_file("six.pth.tar", 6)
    assert top_1(four) == pytest.approx(0.5) and top_1(six) == pytest.approx(0.5)  # before: sorted's apple, 1 of 6
    assert noted == [False, True]  # the note on more outputs than classes names the order the labels follow
    assert cli.main(["export", "--ckpt_file", four, "--file_name", str(tmp_path / "four")]) == 0
    assert top_1(str(tmp_path / "four.onnx")) == pytest.approx(0.5)
    ckpt = mindspore_io.read_any(six)
    moved, said = ckpt_io.in_sorted_order(ckpt, sorted(natural), six)
    assert said.endswith("its classifier's outputs are taken in this order")
    for weights in (ckpt_io.model_state(moved), ckpt_io.ema_state(moved)):  # class2, the last sorted; 4, 5 stay
        assert weights["fc.bias"].tolist() == pytest.approx([0.03, 0.0, 0.02, 10.01, 0.04, 0.05])
    assert cli.main(["convert", four, str(tmp_path / "m.ckpt")]) == 0
    assert "record that timm's train.py numbered its folder's classes in natural order" in capsys.readouterr().err
    # Fine-tuned from it and taught by it on the same folder: its rows put in sorted order, said for each.
    import shutil

    shutil.copytree(root, tmp_path / "photos" / "train")
    capsys.readouterr()
    train.run(load_config(SMALL + ["--dataset=imagenet2012", f"--dataset_path={tmp_path / 'photos'}", "--class_num=4",
                                   "--batch_size=2", "--epoch_size=1", f"--pre_trained={four}", f"--teacher={four}",
                                   "--padding=symmetric", f"--save_checkpoint_path={tmp_path / 'tuned'}"]))
    out = capsys.readouterr().out
    for who in ("pre_trained: ", "teacher "):
        assert f"{who}{four}: its run (timm's train.py) numbered the folder's classes in natural order" in out, who
    # A .pt2 exported from it teaches as the checkpoint does: its outputs were taken as they came, each class
    # taught by another's.
    assert cli.main(["export", "--ckpt_file", four, "--file_name", str(tmp_path / "four"), "--file_format", "PT2"]) == 0
    program = str(tmp_path / "four.pt2")
    cfg = load_config(SMALL + ["--dataset=imagenet2012", f"--dataset_path={tmp_path / 'photos'}", "--class_num=4",
                               "--padding=symmetric"])
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    capsys.readouterr()
    taught = [train.build_distiller(dataclasses.replace(cfg, teacher=teacher), sorted(natural), torch.device("cpu"),
                                    torch.contiguous_format, str(tmp_path / "out")).logits(x)
              for teacher in (four, program)]
    assert torch.allclose(taught[0], taught[1], atol=1e-5) and taught[0].argmax(1).tolist() == [3, 3]  # class2
    assert f"teacher {program}: its run (timm's train.py) numbered the folder's classes" in capsys.readouterr().out
    # One of another count than the run's classes is refused as before (the reorder had cut 6 outputs to 4)
    assert cli.main(["export", "--ckpt_file", six, "--file_name", str(tmp_path / "six"), "--file_format", "PT2"]) == 0
    with pytest.raises(ConfigError, match=r"answers a batch of \d+ image\(s\) with shape \(\d+, 6\), this run needs"):
        train.build_distiller(dataclasses.replace(cfg, teacher=str(tmp_path / "six.pt2")), sorted(natural),
                              torch.device("cpu"), torch.contiguous_format, str(tmp_path / "out"))
    for other in ({"dataset": "torch/image_folder"}, {"class_map": "map.txt"}):
        path = timm_file("other.pth.tar", 4, **other)
        assert ckpt_io.in_sorted_order(mindspore_io.read_any(path), sorted(natural), "x")[1] == ""


def test_a_checkpoint_removed_while_it_is_read_is_said_so_and_convert_does_not_read_it_after_writing(tmp_path,
                                                                                                   monkeypatch):
    """A running train prunes its folder's older checkpoints (helper-285): convert of the run folder read its
    source again after writing the output, so the file written was followed by an error and exit status 1; and
    a file gone between the look and torch.load was said to be one that "cannot be read as a PyTorch checkpoint
    (FileNotFoundError ...)", as a damaged file is."""
    src = tmp_path / "m.pt"
    ckpt_io.atomic_save({"model": trained_looking(4, 0.25).state_dict(),
                         "model_args": {"class_num": 4, "width_mult": 0.25}}, str(src))
    write = mindspore_io.write_checkpoint

    def write_then_prune(*args, **kwargs):
        count = write(*args, **kwargs)
        os.remove(src)
        return count

    monkeypatch.setattr(mindspore_io, "write_checkpoint", write_then_prune)
    out = mindspore_io.convert(str(src), str(tmp_path / "m.ckpt"))
    assert out["source_format"] == "torch" and mindspore_io.detect_format(str(tmp_path / "m.ckpt")) == "mindspore"
    ckpt_io.atomic_save({"model": {}}, str(src))
    load = torch.load

    def pruned_meanwhile(path, *args, **kwargs):
        os.remove(path)
        return load(path, *args, **kwargs)

    monkeypatch.setattr(torch, "load", pruned_meanwhile)
    isfile = os.path.isfile

    def pruned_after_the_look(path):  # read_any looks, then reads the format off the file's first bytes
        found = isfile(path)
        if found and path == str(src):
            os.remove(path)
        return found

    with monkeypatch.context() as m:
        m.setattr(os.path, "isfile", pruned_after_the_look)
        with pytest.raises(ckpt_io.CheckpointError, match=r": removed while it was being read"):
            mindspore_io.read_any(str(src))
    ckpt_io.atomic_save({"model": {}}, str(src))
    with pytest.raises(ckpt_io.CheckpointError, match=rf"^checkpoint {re.escape(str(src))}: removed while it was "
                                                      r"being read \(a running train removes its older checkpoints\)$"):
        ckpt_io.load_torch_file(str(src))


def test_a_classifier_is_left_out_whole_for_another_class_count_and_any_other_shape_is_refused(tmp_path):
    """pre_trained (skip_head_mismatch) decided fc.weight and fc.bias apart, by shape: a weight of the model's class
    count and another width's inputs was left out as "another class count" and its bias loaded, half a classifier
    (helper-342). Another class count leaves out the whole classifier, its bias there or not; any other shape of
    either is refused, naming it."""
    entries = seed_entries(trained_looking(10, 0.25))
    for name, shape in (("fc.weight", (10, 200)), ("fc.bias", (12,))):
        path = write_seed_ckpt(tmp_path / "odd.ckpt", dict(entries, **{name: torch.zeros(shape)}))
        with pytest.raises(ckpt_io.CheckpointError, match=rf"{re.escape(name)}: file {re.escape(str(shape))}"):
            ckpt_io.load_weights(MobileNetV1(class_num=10, width_mult=0.25), ckpt_io.load_file(path)["model"],
                                 path, skip_head_mismatch=True)
    imagenet = seed_entries(trained_looking(1001, 0.25))
    for head in (imagenet, {k: v for k, v in imagenet.items() if k != "fc.bias"}):
        path = write_seed_ckpt(tmp_path / "in1k.ckpt", head)
        model = MobileNetV1(class_num=10, width_mult=0.25)
        fresh = model.fc.bias.clone()
        skipped = ckpt_io.load_weights(model, ckpt_io.load_file(path)["model"], path, skip_head_mismatch=True)
        assert skipped == ["fc.weight", "fc.bias"] and torch.equal(model.fc.bias, fresh)


def test_a_classifier_saved_with_trailing_ones_loads_as_mindspore_takes_it_and_another_rank_is_named(tmp_path):
    """MindSpore's load_param_into_net takes an fc.weight saved (n, in, 1, 1), Ascend GE's 4-D form; here such a
    file was "no fc.weight, not a MobileNetV1 state dict" with 0 of the network's entries missing (helper-342)."""
    model = trained_looking(10, 0.25)
    entries = seed_entries(model)
    flat = write_seed_ckpt(tmp_path / "flat.ckpt", entries)
    four = write_seed_ckpt(tmp_path / "four.ckpt",
                           dict(entries, **{"fc.weight": entries["fc.weight"][..., None, None]}))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(load_model(flat)(x), load_model(four)(x))
    odd = write_seed_ckpt(tmp_path / "odd.ckpt", dict(entries, **{"fc.weight": entries["fc.weight"][..., None]
                                                                  .expand(10, 256, 2).clone()}))
    with pytest.raises(ckpt_io.CheckpointError, match=r"odd\.ckpt: fc\.weight has shape \(10, 256, 2\), not a "
                                                      r"MobileNetV1 classifier's"):
        load_model(odd)


def test_convert_to_a_mindspore_file_says_a_width_the_seeds_network_has_not(tmp_path):
    """The seed's network has no width multiplier: MindSpore's load_param_into_net refuses a width 0.25 file's
    shapes in it, which convert said nothing of (helper-342)."""
    narrow = write_seed_ckpt(tmp_path / "narrow.ckpt", seed_entries(trained_looking(10, 0.25)))
    said = mindspore_io.convert(narrow, str(tmp_path / "out.ckpt"))["warning"]
    assert "has width_mult 0.25, which the seed's MobileNetV1 lacks" in said
    assert said.endswith("build its network at this width, or it will not reproduce this model's outputs there")
    wide = write_seed_ckpt(tmp_path / "wide.ckpt", seed_entries(trained_looking(10, 1.0)))
    assert "width_mult" not in mindspore_io.convert(wide, str(tmp_path / "out1.ckpt"))["warning"]


def test_momentum_buffers_are_left_out_where_momentum_is_0_and_said_so():
    """`--opt momentum --momentum 0` from a file with buffers said they were restored: SGD without momentum reads
    none. They are left out, and the line says why."""
    cfg = load_config(["--opt=momentum", "--momentum=0", "--pretrain_epoch_size=2", "--pre_trained=p.ckpt",
                       "--width_mult=0.25", "--class_num=4"])
    net = MobileNetV1(class_num=4, width_mult=0.25)
    source = {"global_step": 24, "moments": {n: torch.ones_like(p) for n, p in net.named_parameters()}}
    for momentum in (0.0, 0.9):
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=momentum)
        said = []
        train.restore_moments(dataclasses.replace(cfg, momentum=momentum), source, net, opt, [], 12, said.append)
        if momentum:
            assert said[0].startswith(f"pre_trained: momentum buffers of {len(source['moments'])} parameters restored")
            assert len(opt.state) == len(source["moments"])
        else:
            assert said == ["pre_trained: momentum buffers (its global_step 24) left out: momentum is 0, so SGD keeps "
                            "none"]
            assert not opt.state


@pytest.mark.parametrize("opt, momentum", [("adamw", 0.9), ("momentum", 0.0), ("momentum", 0.9)])
def test_a_global_step_off_pretrain_epoch_size_is_noted_whether_or_not_the_buffers_are_restored(opt, momentum):
    """The note that the file's global_step is not pretrain_epoch_size epochs of this run's steps is about where the
    schedule continues: it was said only where the momentum buffers were restored, not for AdamW or momentum 0."""
    cfg = load_config([f"--opt={opt}", f"--momentum={momentum}", "--pretrain_epoch_size=2", "--pre_trained=p.ckpt",
                       "--width_mult=0.25", "--class_num=4"])
    net = MobileNetV1(class_num=4, width_mult=0.25)
    source = {"global_step": 30, "moments": {n: torch.ones_like(p) for n, p in net.named_parameters()}}
    opt_ = torch.optim.SGD(net.parameters(), lr=0.1, momentum=momentum)
    said = []
    train.restore_moments(cfg, source, net, opt_, [], 12, said.append)
    assert said[-1] == ("pre_trained: note: global_step 30 is not pretrain_epoch_size 2 x 12 steps per epoch here; "
                        "the schedule continues at step 24")
    said.clear()
    train.restore_moments(cfg, {**source, "global_step": 24}, net, opt_, [], 12, said.append)
    assert len(said) == 1 and "note" not in said[0]
