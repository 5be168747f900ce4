"""mobilenet-v1 benchmark: model files timed in turns in one process, each on its own runtime and input."""
import json
import os
import tempfile

import pytest

import torch

from mobilenet_v1 import benchmark, cli
from mobilenet_v1 import checkpoint as ckpt_io
from mobilenet_v1.benchmark import Subject, load_subject, measure, round_ratios
from mobilenet_v1.model import MobileNetV1

from test_deploy import named_classes_checkpoint

# The exporter runs once per model and size (conftest.exported_once); export itself runs in every test.
pytestmark = pytest.mark.usefixtures("exported_once")


def test_turns_give_every_file_its_calls_in_each_round_and_ratios_are_taken_within_rounds():
    """measure: in each round every entry in turn makes its untimed settling calls, then its timed ones;
    round_ratios: each round's median over the reference's in the same round, then the median of those."""
    order = []
    calls = {name: (lambda name=name: order.append(name)) for name in ("a", "b")}
    times = measure(calls, rounds=3, per_round={"a": 2, "b": 4}, settle=1)
    assert order == (["a"] * 3 + ["b"] * 5) * 3
    assert [len(r) for r in times["a"]] == [2, 2, 2] and [len(r) for r in times["b"]] == [4, 4, 4]
    assert all(t >= 0 for rounds in times.values() for r in rounds for t in r)
    # b is twice a's time in a slow round and four times it in fast ones: 4, not the ratio of overall medians.
    made_up = {"a": [[1.0, 1.0], [9.0, 9.0], [1.0, 1.0]], "b": [[4.0], [18.0], [4.0]]}
    assert round_ratios(made_up, "a") == {"a": 1.0, "b": 4.0}


def test_files_of_other_batches_are_compared_per_image(monkeypatch):
    """A .pte's batch is fixed and may differ from the others': a call of 8 images taking 3x a call of one
    is 0.375x the time an image, which is what vs_first says, while images/s is the batch over the median."""
    monkeypatch.setattr(benchmark, "measure", lambda calls, rounds, per_round, settle: {
        "one": [[2.0, 2.0], [4.0, 4.0]], "eight": [[6.0], [12.0]]})
    subjects = [Subject(name, "made up", "fp32", "", batch, None, 0.0, lambda: None, None)
                for name, batch in (("one", 1), ("eight", 8))]
    rows = benchmark.run(subjects, seconds=0.01, rounds=2, warmup=1)
    assert [r["vs_first"] for r in rows] == [1.0, 0.375]
    assert [r["images_per_s"] for r in rows] == [pytest.approx(1000 / 3), pytest.approx(8000 / 9)]
    assert [r["calls"] for r in rows] == [4, 2]


def test_a_files_figures_are_the_median_and_percentiles_of_its_timed_calls(monkeypatch):
    """An outlying call (a page fault, another process) moves the mean, not the median the row gives; p10 and
    p90 are the 10th and 90th percentiles, interpolated between calls, worked out here by hand; images/s is
    the batch over the median."""
    monkeypatch.setattr(benchmark, "measure", lambda calls, rounds, per_round, settle: {
        "one": [[4.0, 1.0, 100.0], [3.0, 2.0]]})
    subject = Subject("one", "made up", "fp32", "", 2, None, 0.0, lambda: None, None)
    row = benchmark.run([subject], seconds=0.01, rounds=2, warmup=1)[0]
    # sorted 1, 2, 3, 4, 100: the median is the third; p10 lies at place 0.4 (1 + 0.4 x 1), p90 at 3.6 (4 + 0.6 x 96)
    assert (row["calls"], row["median_ms"]) == (5, 3.0)
    assert row["p10_ms"] == pytest.approx(1.4) and row["p90_ms"] == pytest.approx(61.6)
    assert row["images_per_s"] == pytest.approx(2 * 1000 / 3.0)


def test_a_call_slower_than_a_rounds_share_of_the_seconds_is_still_timed_once_a_round():
    """However short --seconds is against a call, each round times one call of each file: a row of no timed
    call has no median."""
    subject = Subject("one", "made up", "fp32", "", 1, None, 0.0, lambda: None, None)
    row = benchmark.run([subject], seconds=1e-9, rounds=3, warmup=1)[0]
    assert row["calls"] == 3 and row["median_ms"] >= 0


def test_the_table_gives_multiply_adds_in_millions_and_a_width_that_is_no_number_is_refused(capsys):
    """MMACs: MobileNetV1's 568,740,352 multiply-adds at 224 read 568.7, a row without them "-"; --width_mult
    inf is no width, refused as 0 is."""
    row = {"file": "m.onnx", "runtime": "ONNX Runtime, CPU", "weights": "fp32", "input": "float (1, 3, 224, 224)",
           "bytes": 2_500_000, "macs": 568_740_352, "load_s": 0.5, "first_call_ms": 9.0, "median_ms": 4.0,
           "p10_ms": 3.5, "p90_ms": 5.0, "images_per_s": 250.0, "vs_first": 1.0}
    lines = benchmark.table([row, {**row, "macs": None}]).splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert [cells[2][cells[0].index("MMACs")], cells[3][cells[0].index("MMACs")]] == ["568.7", "-"]
    assert cells[2][cells[0].index("MB")] == "2.50"
    # The ratio to the first file keeps three digits where files are far faster than it (an eager checkpoint
    # first, under load): 0.309 and 0.159 ms against 193 ms both read 0.001, ranking nothing.
    ratios = [1.0, 0.25, 0.309 / 192.8, 0.159 / 192.8]
    lines = benchmark.table([{**row, "vs_first": r} for r in ratios]).splitlines()
    at = lines[0].strip("|").split("|").index(" per image / first's ")
    assert [line.strip("|").split("|")[at].strip() for line in lines[2:]] == ["1.000", "0.250", "0.0016", "0.000825"]
    for value in ("inf", "0.5,inf", "nan"):
        with pytest.raises(SystemExit):
            cli.main(["benchmark", "--width_mult", value])
        assert f"--width_mult {value!r}: needs numbers above 0" in capsys.readouterr().err


def test_a_checkpoint_and_its_exported_files_are_timed_each_on_its_own_input(tmp_path, capsys, one_thread,
                                                                            monkeypatch):
    """A checkpoint (as its run folder), its ONNX file with a dynamic batch and its image-input ONNX file,
    batch 4: each row says its runtime and input, timed calls in every round, medians inside their
    spread, images/s from the median, the first file the reference. The table names every file. A
    file named twice (a run folder and its newest checkpoint, a path spelt two ways) is timed once; ONNX Runtime takes --threads."""
    _, ckpt = named_classes_checkpoint(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    os.replace(ckpt, run / "mobilenetv1-1_10.ckpt")
    ckpt = str(run / "mobilenetv1-1_10.ckpt")
    for name, extra in (("m", []), ("pixels", ["--image_input", "True", "--pixel_format", "RGBA"])):
        assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / name), *extra]) == 0
    onnx, pixels = str(tmp_path / "m.onnx"), str(tmp_path / "pixels.onnx")
    capsys.readouterr()
    timing = ["--seconds", "0.3", "--rounds", "3", "--warmup", "2", "--threads", "2"]
    again = os.path.join(str(tmp_path), "run", "..", "m.onnx")
    assert cli.main(["benchmark", str(run), ckpt, onnx, pixels, again, "--batch_size", "4", *timing, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    rows = got["results"]
    assert [r["file"] for r in rows] == [ckpt, onnx, pixels]
    assert rows[0]["runtime"] == "PyTorch, CPU, fp32, channels_last" and rows[1]["runtime"] == "ONNX Runtime, CPU"
    assert [r["input"] for r in rows] == ["float (4, 3, 40, 40)", "float (4, 3, 40, 40)", "uint8 RGBA (4, 40, 40, 4)"]
    for r in rows:
        assert r["batch"] == 4 and r["calls"] >= 3 and r["calls"] % 3 == 0, r
        assert 0 < r["p10_ms"] <= r["median_ms"] <= r["p90_ms"] and r["first_call_ms"] > 0
        assert r["images_per_s"] == pytest.approx(4 * 1000 / r["median_ms"])
        assert r["bytes"] == os.path.getsize(r["file"]) and r["weights"] == "fp32"
    assert rows[0]["vs_first"] == 1.0 and rows[1]["vs_first"] > 0
    assert got["machine"]["threads"] == 2 and "onnxruntime" in got["machine"]
    assert torch.get_num_threads() == 1  # the caller's count (one_thread's) is put back

    subject = load_subject(onnx, threads=3)
    assert subject.batch == 1 and subject.model.session.get_session_options().intra_op_num_threads == 3
    assert cli.main(["benchmark", onnx, *timing]) == 0
    out = capsys.readouterr().out
    assert "2 threads" in out and f"| {onnx} " in out and "images/s" in out
    # One thread (OMP_NUM_THREADS=1, the default count on such a machine) in the header: "1 thread", not "1 threads".
    assert cli.main(["benchmark", onnx, *timing[:-1], "1"]) == 0
    assert ", 1 thread; torch " in capsys.readouterr().out
    # More threads than the CPUs the process may run on: timed all the same, with a warning (64 on 2 cores took a
    # minute of waits).
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert cli.main(["benchmark", onnx, *timing]) == 0
    assert ("benchmark: warning: --threads 2: this process may run on 1 CPU; threads past them wait for each other, "
            "and the times measure that") in capsys.readouterr().err
    # A recorded size that is not a positive int is not one, as in eval: the default 224.
    for recorded in ("40", -1, 40.0):
        odd = str(tmp_path / "odd.ckpt")
        ckpt_io.atomic_save({**ckpt_io.load_file(ckpt), "config": {"dataset": "cifar10", "image_size": recorded}}, odd)
        assert load_subject(odd).input == "float (1, 3, 224, 224)"
    ckpt_io.atomic_save({**ckpt_io.load_file(ckpt), "config": ["not", "a", "dict"]}, odd)
    assert load_subject(odd, image_size=40).input == "float (1, 3, 40, 40)"


def test_memory_is_measured_per_file_in_a_process_of_its_own(tmp_path, capsys, one_thread, monkeypatch):
    """--memory: each file's resident memory, loaded and at its peak over the calls, over a process with
    its runtime imported (Linux: the peak reset before loading): an ONNX file holds at least its weights
    (the width-1.0 file's 17 MB against the width-0.25 one's 1 MB), the peak is no lower than after
    loading, and the table gets its columns. A child that fails is named with its reason; the timing of
    the others stands (exit 1)."""
    small = str(tmp_path / "small.onnx")
    big = str(tmp_path / "big.onnx")
    for path, width in ((small, 0.25), (big, 1.0)):
        ckpt = str(tmp_path / f"w{width}.ckpt")
        ckpt_io.atomic_save({"model": MobileNetV1(class_num=10, width_mult=width).state_dict(),
                             "config": {"dataset": "cifar10", "image_size": 32}}, ckpt)
        assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", path]) == 0
    capsys.readouterr()
    timing = ["--seconds", "0.1", "--rounds", "1", "--warmup", "2"]
    assert cli.main(["benchmark", small, big, *timing, "--memory", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    for r in rows:
        m = r["memory"]
        assert m["method"] == "VmHWM reset before loading, less the RssFile added" and m["baseline_mb"] > 0
        assert 0 <= m["init_mb"] <= m["peak_mb"] and m["peak_mb"] * 2 ** 20 >= r["bytes"], r
    assert rows[1]["memory"]["peak_mb"] > rows[0]["memory"]["peak_mb"] + 10
    assert "| init MB | peak MB |" in benchmark.table(rows)
    # a child that fails (here one made to, without importing torch: a loading child costs seconds)
    monkeypatch.setattr(benchmark, "_CHILD", "import sys; print('other output'); sys.exit('made to fail')")
    with pytest.raises(ValueError, match=f"--memory: {small} could not be measured in a process of its own: "
                                         f"made to fail"):
        benchmark.memory_footprint(small, 1, 1, False)

    def fails(path, *args, **kwargs):
        raise ValueError(f"--memory: {path} could not be measured in a process of its own: made up")

    monkeypatch.setattr(benchmark, "memory_footprint", fails)
    assert cli.main(["benchmark", small, *timing, "--memory", "--json"]) == 1
    captured = capsys.readouterr()
    row = json.loads(captured.out)["results"][0]
    assert row["memory"] is None and row["median_ms"] > 0 and f"{small} could not be measured" in captured.err
    assert "| -       | -       |" in benchmark.table([row])


def test_files_that_do_not_fit_the_options_are_refused_naming_them(tmp_path, capsys, one_thread):
    """A static-batch file asked for another batch, a fixed-size one for another size, an exported file on
    the GPU, junk, a missing file: exit 1 with the file and the reason. The checkpoint's options given for
    exported files alone are named as unused."""
    _, ckpt = named_classes_checkpoint(tmp_path)
    assert cli.main(["export", "--ckpt_file", ckpt, "--file_name", str(tmp_path / "static"), "--batch_size", "2",
                     "--static_batch"]) == 0
    static = str(tmp_path / "static.onnx")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"\x00" * 64)
    capsys.readouterr()
    timing = ["--seconds", "0.1", "--rounds", "1", "--warmup", "1"]
    for args, said in (([static, "--batch_size", "3"], f"--batch_size 3: {static} takes batches of 2 only"),
                       ([static, "--image_size", "32"], f"--image_size 32: {static} takes 40x40 inputs only"),
                       ([static, "--device_target", "GPU"], f"--device_target GPU: {static} is an exported file"),
                       ([str(junk)], str(junk)),
                       ([str(tmp_path / "gone.onnx")], "gone.onnx")):
        assert cli.main(["benchmark", *args, *timing]) == 1
        assert said in capsys.readouterr().err, args
    for bad, said in ((["--rounds", "0"], "--rounds must be at least 1"),
                      (["--seconds", "inf"], "--seconds must be a number above 0"),
                      (["--warmup", "0"], "--warmup at least 1")):
        with pytest.raises(SystemExit):
            cli.main(["benchmark", static, *timing, *bad])
        assert said in capsys.readouterr().err, bad
    assert cli.main(["benchmark", static, "--precision", "fp16", "--compile", *timing, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["results"][0]["batch"] == 2
    assert "benchmark: not used here: --precision, --compile" in err


def test_use_ema_false_for_a_file_holding_only_a_moving_average_is_named_as_not_used(tmp_path, capsys, one_thread):
    """benchmark --use_ema False of a file convert wrote from a run's weight average (its only weights) timed them
    without a word, where eval, predict and average name the option as not used: so does benchmark, once. A file
    holding both is timed on its trained weights, its row says so, and nothing more is said."""
    from mobilenet_v1 import mindspore_io
    from test_average import random_model, save

    both = save(tmp_path / "a.pt", random_model(1), ema=random_model(2))
    taken = str(tmp_path / "a_ema.pt")
    mindspore_io.convert(both, taken)
    capsys.readouterr()
    timing = ["--seconds", "0.05", "--rounds", "1", "--warmup", "1", "--use_ema", "False", "--json"]
    assert cli.main(["benchmark", taken, both, *timing]) == 0
    out, err = capsys.readouterr()
    assert err == (f"benchmark: {taken}: weights: not used here: --use_ema False (convert wrote this file's only "
                   f"weights from the exponential moving average of {both}; it holds no trained weights)\n")
    assert [r["weights"] for r in json.loads(out)["results"]] == ["fp32 (ema)", "fp32 (trained)"]


def test_a_file_whose_only_weights_are_an_average_is_named_so_in_the_weights_column(tmp_path, capsys, one_thread):
    """convert of a run checkpoint with a weight average writes that average as the file's only weights: benchmark's
    weights column said a bare "fp32" of it, where the run checkpoint's row says "fp32 (ema)" of the same weights.
    A file without any average stays a bare "fp32"."""
    from mobilenet_v1 import mindspore_io
    from test_average import random_model, save

    both = save(tmp_path / "a.pt", random_model(1), ema=random_model(2))
    plain = save(tmp_path / "b.pt", random_model(3))
    taken = str(tmp_path / "a_ema.pt")
    mindspore_io.convert(both, taken)
    capsys.readouterr()
    timing = ["--seconds", "0.05", "--rounds", "1", "--warmup", "1", "--json"]
    assert cli.main(["benchmark", taken, both, plain, *timing]) == 0
    out, err = capsys.readouterr()
    assert [r["weights"] for r in json.loads(out)["results"]] == ["fp32 (ema)", "fp32 (ema)", "fp32"]
    assert err == ""


def test_the_cpu_is_named_from_proc_cpuinfo_on_x86_and_on_arm_boards(tmp_path):
    """x86's "model name" and a Raspberry Pi's "Model" line name the CPU in the report."""
    for text, want in (("processor\t: 0\nmodel name\t: AMD EPYC 9B14\n", "AMD EPYC 9B14"),
                       ("processor\t: 0\nBogoMIPS\t: 108.00\nModel\t\t: Raspberry Pi 5 Model B Rev 1.0\n",
                        "Raspberry Pi 5 Model B Rev 1.0")):
        fake = tmp_path / "cpuinfo"
        fake.write_text(text)
        assert benchmark.cpu_name(str(fake)) == want


def test_widths_and_sizes_are_made_timed_and_removed_and_wrong_requests_refused(tmp_path, tmp_path_factory,
                                                                               monkeypatch, capsys, one_thread):
    """--width_mult: MobileNetV1 at each width and size, random weights, made as export and quantize make
    files, in a temporary folder that is gone afterwards; each row names the network and gives its
    multiply-adds. Giving FILEs too, a format that does not exist, or the variants' options without
    --width_mult, is refused."""
    from mobilenet_v1.info import count_macs

    # PyTorch's compiler makes its cache folder in the temporary folder where no earlier test of the process had
    # it made (the file run alone): kept out of the folder this test watches.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path_factory.mktemp("inductor")))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    timing = ["--seconds", "0.1", "--rounds", "1", "--warmup", "1"]
    seed = torch.initial_seed()
    assert cli.main(["benchmark", "--width_mult", "0.25,0.5,0.5000001", "--image_size", "32", "--formats",
                     "pytorch,onnx_int8", "--class_num", "10", *timing, "--json"]) == 0
    assert torch.initial_seed() == seed  # the networks' seeding leaves the caller's random state alone
    out, err = capsys.readouterr()
    rows = json.loads(out)["results"]
    assert [r["file"] for r in rows] == ["mobilenet_v1_0.25_32.ckpt", "mobilenet_v1_0.25_32_int8.onnx",
                                         "mobilenet_v1_0.5_32.ckpt", "mobilenet_v1_0.5_32_int8.onnx",
                                         "mobilenet_v1_0.5000001_32.ckpt", "mobilenet_v1_0.5000001_32_int8.onnx"]
    rows = rows[:4]
    assert [r["macs"] for r in rows] == [count_macs(w, 32, 10) for w in (0.25, 0.25, 0.5, 0.5)]
    assert rows[0]["macs"] < rows[2]["macs"] and rows[1]["bytes"] < rows[0]["bytes"] / 2
    assert [r["weights"] for r in rows] == ["fp32", "INT8 static"] * 2
    assert all(r["input"] == "float (1, 3, 32, 32)" and r["median_ms"] > 0 for r in rows)
    assert "benchmark: made mobilenet_v1_0.5_32 (pytorch, onnx_int8) in" in err
    assert os.listdir(tmp_path) == []

    for args, said in ((["m.onnx", "--width_mult", "0.5"], "give FILEs or --width_mult, not both"),
                       (["--width_mult", "0.5", "--formats", "onnx,coreml"], "--formats onnx,coreml: each one of"),
                       (["--width_mult", "0.5,-1"], "--width_mult '0.5,-1': needs numbers above 0"),
                       (["m.onnx", "--formats", "onnx"], "--formats: for --width_mult only"),
                       (["m.onnx", "--image_size", "128,160"], "one size for FILEs"),
                       ([], "give model FILEs to time, or --width_mult"),
                       # networks past torch's int64 (a traceback: "Overflow when unpacking long long")
                       (["--width_mult", "1e30"], "--width_mult '1e30': needs numbers above 0 and at most 1e+06"),
                       (["--width_mult", "0.25", "--class_num", "2.5"], "--class_num: not a whole number: '2.5'"),
                       (["--width_mult", "0.25", "--class_num", "20000000"],
                        "--class_num must be at most 10,000,000, got 20000000"),
                       (["--width_mult", "0.25", "--image_size", "70000"], "and at most 65536"),
                       (["m.onnx", "--batch_size", "99999999999999999999"],
                        "argument --batch_size: 99999999999999999999 is past 2,147,483,647"),
                       (["m.onnx", "--threads", "1.5"], "argument --threads: not a whole number: '1.5'")):
        with pytest.raises(SystemExit):
            cli.main(["benchmark", *args])
        assert said in capsys.readouterr().err, args


def test_a_width_or_size_given_twice_is_made_once_and_one_of_0_is_refused_naming_the_option(capsys, monkeypatch):
    """--width_mult 0.25,0.5,0.25 --image_size 32,32: two networks made (and timed), once each, not the first
    twice; a width or size of 0 is no network: refused before anything is made, naming the option."""
    asked = []

    class Made(Exception):
        pass

    def capture(folder, widths, sizes, *rest):
        asked.append((widths, sizes))
        raise Made

    monkeypatch.setattr(benchmark, "make_variants", capture)
    with pytest.raises(Made):
        benchmark.main(["--width_mult", "0.25,0.5,0.25", "--image_size", "32,32", "--formats", "pytorch"])
    assert asked == [([0.25, 0.5], [32])]
    for args, said in ((["--width_mult", "0.25,0"], "--width_mult '0.25,0': needs numbers above 0"),
                       (["--width_mult", "0.25", "--image_size", "0"], "--image_size '0': needs numbers above 0")):
        with pytest.raises(SystemExit):
            cli.main(["benchmark", *args])
        assert said in capsys.readouterr().err, args
    assert len(asked) == 1


def test_seconds_too_large_to_count_calls_for_is_refused_naming_the_option(capsys):
    """--seconds 1e308 is finite, but the calls a round it asks for are not: refused as a NaN is, naming
    the option, not an OverflowError after loading and warming up every file."""
    for seconds in ("1e308", "86401"):
        with pytest.raises(SystemExit):
            cli.main(["benchmark", "m.onnx", "--seconds", seconds])
        assert "--seconds must be a number above 0 (at most 86400, a day)" in capsys.readouterr().err, seconds


def test_executorch_thread_pool_notes_stay_off_stderr_in_a_fresh_process():
    """The first query of ExecuTorch's pool size (set_threads, before the reset) makes the pool, which logs
    its notes on the CPU (cpuinfo_utils) to file descriptor 2: in a process of the command's own, nothing
    of them reaches stderr."""
    import subprocess
    import sys

    pytest.importorskip("executorch")
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    code = ("from mobilenet_v1.benchmark import executorch_threads, resize_pool, set_threads\n"
            "before = set_threads(1, executorch=True, asked=False)\n"
            "assert executorch_threads() == 1\n"
            "resize_pool(before)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr
    assert "cpuinfo" not in done.stderr and done.stderr.strip() == "", done.stderr


def test_timing_files_makes_no_temporary_folder(tmp_path, monkeypatch):
    """Only --width_mult makes files, in a temporary folder; timing FILEs makes none, so a benchmark killed
    (`timeout`, SIGTERM: no clean-up runs) leaves no empty mobilenet_v1_benchmark-* folder behind."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = []
    monkeypatch.setattr(benchmark, "_time", lambda a, files, size, short_names=False: seen.append(os.listdir(tmp_path)))
    benchmark.main(["m.onnx"])
    assert seen == [[]]


def test_a_sigterm_while_timing_made_files_removes_them_and_ends_by_the_signal(tmp_path):
    """`timeout` (a scheduler) ends a --width_mult benchmark with SIGTERM: the files it made, megabytes each
    and never read again, are removed as on Ctrl-C, and the process still ends by that signal."""
    import signal
    import subprocess
    import sys
    import time

    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    proc = subprocess.Popen([sys.executable, "-m", "mobilenet_v1", "benchmark", "--width_mult", "0.25", "--image_size",
                             "32", "--formats", "pytorch", "--class_num", "10", "--seconds", "600", "--warmup", "1"],
                            env=dict(os.environ, PYTHONPATH=src, OMP_NUM_THREADS="1", TMPDIR=str(tmp_path)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    made = []
    while not made and time.monotonic() < deadline and proc.poll() is None:
        made = [f for folder in tmp_path.glob("mobilenet_v1_benchmark-*") for f in folder.glob("*.ckpt")]
        time.sleep(0.2)
    assert made, proc.communicate()[1]
    time.sleep(1)  # timing it now
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGTERM, err
    assert list(tmp_path.iterdir()) == [], err
