"""One typed configuration: dataclass defaults, then a YAML file, then ``--key=value`` overrides.

Key names are the seed's (``default_config.yaml``), so a migrating user's files and flags keep working.
The defaults are the seed's CIFAR-10 values; ``--dataset imagenet2012`` starts from the seed's ImageNet
values instead (``DATASET_PRESETS``). Unknown keys are errors.
"""
import argparse
import dataclasses
import difflib
import itertools
import math
import os
import re
import struct
import sys
from dataclasses import dataclass, fields
from numbers import Real
from typing import Any, Callable, Collection, Dict, Iterable, Iterator, List, NoReturn, Optional, Sequence, Set, Tuple

import yaml

from .schedules import LR_BASE_SCALES, SCHEDULES, SIZE_STEP, ramp_length

# The network's layers (model.ARCH, which imports torch; a test checks that they agree).
LAYERS = 27

# autoaugment.POLICIES, spelled out here (tests check they agree): that module loads torchvision.
AUTO_AUGMENT_POLICIES = ("ta_wide", "ra", "imagenet", "cifar10", "svhn", "augmix")

DATASETS = ("cifar10", "cifar100", "imagenet2012")
# The data sets read from CIFAR's binary files: the seed's CIFAR-10 pipeline, CIFAR-100's fine labels alike.
CIFAR_DATASETS = ("cifar10", "cifar100")


def is_cifar(dataset: str) -> bool:
    """Whether ``dataset`` is read from CIFAR binary files (32x32 images, labels in the files)."""
    return dataset in CIFAR_DATASETS


def cifar_name(dataset: str) -> str:
    """CIFAR-10 or CIFAR-100, as messages name them."""
    return "CIFAR-100" if dataset == "cifar100" else "CIFAR-10"


# Inputs are normalised per channel, (pixel / 255 - mean) / std: the seed's constants for each data set
# (transforms re-exports them), unless a run sets its own (--mean/--std, recorded with it and followed by
# everything that reads its files).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2023, 0.1994, 0.2010)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMALISATION_KEYS = ("mean", "std")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # a value of theirs as text ("1_0" is none)

OPTIMIZERS = ("momentum", "rmsprop", "adamw", "lars", "lamb")
ERASE_MODES = ("const", "pixel")


@dataclass
class Config:
    # --- the seed's keys (default_config.yaml) ---
    dataset: str = "cifar10"
    dataset_path: str = ""
    class_num: int = 10
    batch_size: int = 32
    loss_scale: float = 1024.0
    momentum: float = 0.9
    weight_decay: float = 1e-4
    # Beyond the seed: the optimiser, "momentum" (the seed's Momentum, PyTorch's SGD), "rmsprop" (the
    # MobileNet paper's; torchvision's MobileNetV3 recipe), "adamw", or for large global batches "lars"
    # (SGD with a rate per layer) or "lamb" (Adam's, likewise; optimizers.py); opt_eps: its eps, 0 for the
    # recipe's (engine.DEFAULT_EPS).
    opt: str = "momentum"
    opt_eps: float = 0.0
    # Nesterov's momentum for opt momentum or lars (MindSpore Momentum's use_nesterov, PyTorch SGD's
    # nesterov; timm's default "sgd"); False: the seed's plain momentum.
    nesterov: bool = False
    # LARS's trust coefficient (eta: a layer's rate is lr x eta x |w| / (|g| + wd |w|)); with trust_clip
    # (NVIDIA's LARC) the factor on lr is at most 1, so SGD's rates apply.
    trust_coefficient: float = 0.001
    trust_clip: bool = False
    # Weight decay on BatchNorm's gamma and beta and the classifier's bias too: the seed's GPU/CPU path and
    # torchvision's references; False: conv and FC weights only, the seed's Ascend path (SPEC) and timm's.
    decay_norm_bias: bool = False
    epoch_size: int = 90
    pretrain_epoch_size: int = 0
    save_checkpoint: bool = True
    save_checkpoint_epochs: int = 5
    keep_checkpoint_max: int = 10
    # With eval_interval: the N best evaluated epochs' checkpoints (by top-1), kept as mobilenetv1-top-E.ckpt
    # beside the numbered ones (timm's --checkpoint-hist), for `average --best`. 0: none (the seed).
    keep_best_max: int = 0
    save_checkpoint_path: str = "./"
    warmup_epochs: int = 5
    # The seed's steps, poly, cosine (TensorFlow's linear cosine decay) or linear; beyond the seed,
    # exponential (below) and cosine_annealing (the half cosine from lr_max to lr_end of timm and torchvision).
    lr_decay_mode: str = "poly"
    lr_init: float = 0.01
    lr_end: float = 0.00001
    lr_max: float = 0.1
    # Beyond the seed: lr_decay_mode "exponential" multiplies the rate by lr_decay_rate every
    # lr_decay_epochs epochs after the warm-up (torchvision's MobileNetV2 recipe: 0.98 every epoch).
    lr_decay_rate: float = 0.98
    lr_decay_epochs: float = 1.0
    # Beyond the seed: a new rate once an epoch, the one of its first step, as torchvision's references and
    # timm step their schedulers by default; False: a new rate every step (the seed's).
    lr_per_epoch: bool = False
    # Beyond the seed: cosine_annealing and exponential start after the warm-up (timm's --warmup-prefix); False: they
    # count the warm-up epochs in (timm's default): the cosine spans the whole run, the decay periods start at step 0.
    warmup_prefix: bool = True
    # Beyond the seed: the rates (lr_init, lr_max, lr_end) are meant for a global batch of lr_base_size
    # and are scaled to the run's (batch_size x processes x grad_accum_steps), as timm's --lr-base-size:
    # lr_base_scale "linear" (Goyal et al. 2017), "sqrt", or "auto": sqrt for adamw and lamb, linear otherwise
    # (timm's rule). 0: the rates as given, whatever the batch (the seed).
    lr_base_size: int = 0
    lr_base_scale: str = "auto"
    use_label_smooth: bool = False
    label_smooth_factor: float = 0.1
    # Beyond the seed: each class a sigmoid against its one-hot target (binary cross entropy, timm's
    # --bce-loss); False: softmax cross entropy (the seed's).
    bce_loss: bool = False
    # With bce_loss: targets (smoothed, mixed) above it count as 1, the others 0 (timm's
    # --bce-target-thresh); 0: off.
    bce_target_thresh: float = 0.0
    pre_trained: str = ""
    checkpoint_path: str = ""
    run_distribute: bool = False
    device_num: int = 1
    # The seed defaults to Ascend; here "auto" takes the GPU when CUDA is present, else the CPU.
    device_target: str = "auto"
    # export (the seed's export.py)
    ckpt_file: str = ""
    width: int = 224
    height: int = 224
    file_name: str = "mobilenetv1"
    file_format: str = "ONNX"
    # --- beyond the seed ---
    width_mult: float = 1.0
    image_size: int = 224
    # The size the run's evaluations take, and the one it records for eval, export, predict and benchmark;
    # 0: image_size. Training at a smaller size than the model will run at is cheaper and, with image
    # folders' random crops, scores better there (torchvision's --train-crop-size 176 / --val-crop-size 224).
    eval_image_size: int = 0
    # Progressive resizing (FFCV's ResNet recipes, Composer's, EfficientNetV2's progressive learning): the
    # first epoch trains at image_size_start, the size grows linearly over the first image_size_ramp share
    # of the epochs to image_size (rounded down to multiples of 16), and the rest train at image_size. 0: off.
    image_size_start: int = 0
    image_size_ramp: float = 0.75
    # Image folders' evaluation: the shorter side is resized to image_size / crop_pct and the centre
    # image_size square kept (the seed's 256 -> 224 at 0.875; timm's crop_pct); eval_image_size where set.
    crop_pct: float = 0.875
    # Image folders' training: RandomResizedCrop's smallest crop, as a share of the image's area (the
    # seed's 0.08; timm's --scale). The MobileNet paper trained with larger small crops than Inception.
    crop_scale_min: float = 0.08
    # Image folders' training crops: their aspect ratio (width / height) is drawn log-uniform between these
    # (the seed's, torchvision's and timm's 3/4 and 4/3; timm's --ratio).
    crop_ratio_min: float = 0.75
    crop_ratio_max: float = 1.333
    # Image folders: JPEG and PNG photos turned upright by their EXIF orientation tag, as photo viewers show
    # them (train, eval, calibration, predict; export records it). False, the seed's (and PIL's, timm's and
    # torchvision's ImageFolder's): the pixels as stored, which phones often store turned by 90 degrees.
    exif_orientation: bool = False
    # Image folders' resizes (training crops, evaluation's shorter side; calibration and predict too): a
    # downscale averages the pixels it covers, as torchvision's and timm's do. False, the seed's (MindSpore's
    # Resize and RandomCropDecodeResize, OpenCV's bilinear): each output pixel interpolates the four around it,
    # which aliases a downscale; a model trained by the seed scores its own figures with it.
    antialias: bool = True
    # Image folders' resizes (the same ones): bilinear (the seed's, torchvision's recipes') or bicubic, as
    # timm trains and evaluates its weights (their pretrained configurations' interpolation).
    interpolation: str = "bilinear"
    # Per-channel normalisation on the [0, 1] pixel scale, three values (R, G, B) or one for all: "" is the
    # seed's constants for the data set (CIFAR's or ImageNet's; :func:`normalisation`). A run's own, for
    # photos unlike ImageNet's (X-rays, satellite images), as timm's --mean/--std.
    mean: str = ""
    std: str = ""
    padding: str = "same"
    # "auto": bf16 autocast on a GPU, fp32 on the CPU.
    precision: str = "auto"
    seed: int = 1
    num_workers: int = -1  # -1: min(8, CPU count)
    # The seed drops the last partial eval batch (49,920 of 50,000 ImageNet images); we count all.
    eval_drop_last: bool = False
    eval_batch_size: int = 0  # 0: batch_size
    channels_last: bool = True
    compile: bool = False
    # torch.compile's mode for compile True: "default", "reduce-overhead" (CUDA graphs: less launch time
    # per step), "max-autotune" (searches kernels at the start; longer to compile), or
    # "max-autotune-no-cudagraphs".
    compile_mode: str = "default"
    # "auto": the GPU pipeline when CUDA is present (ImageNet folders), else the CPU one.
    data_pipeline: str = "auto"
    random_flip: bool = True
    # Each training image's chance of a vertical flip, after the crop and horizontal flip (timm's --vflip):
    # for images without an up (aerial, satellite, microscope); 0: never, the seed's.
    vflip: float = 0.0
    # Repeated augmentation (timm's --aug-repeats, torchvision's --ra-sampler --ra-reps): each image of an
    # epoch's permutation drawn this many times in a row, each copy augmented anew; the epoch keeps its
    # length (N / aug_repeats images, each aug_repeats times). 1: off (the seed).
    aug_repeats: int = 1
    # Class-balanced sampling for data sets whose classes hold very different numbers of images: an epoch
    # draws its N samples with replacement, each class in proportion to its image count ** (1 -
    # class_balance): 1 every class alike, 0.5 the square root of its count (Mahajan et al. 2018); 0: the
    # data set as it is, each image once an epoch (the seed).
    class_balance: float = 0.0
    # Steps between logged records (metrics.jsonl, TensorBoard, progress lines); 0: once per epoch only.
    # Each one reads the loss back from the device, so it should be tens of steps, not every step.
    log_interval: int = 50
    eval_interval: int = 0  # evaluate every N epochs while training, keep the best by top-1; 0: never (the seed)
    # Early stopping (Keras' and Lightning's EarlyStopping patience): the run stops after this many evaluations
    # in a row without a better top-1, its best checkpoint kept. 0: it trains all epoch_size epochs.
    patience: int = 0
    # What counts as better for patience: a top-1 more than this above the last top-1 that counted as better
    # (Keras' and Lightning's min_delta); a noisy small eval split's one-image gains then do not restart the
    # count. The best checkpoint still follows every gain.
    patience_min_delta: float = 0.0
    # An exponential moving average of the weights, updated after every step (timm's default decay is
    # 0.9998); evaluated, kept as the best and deployed by default. 0: none (the seed).
    ema_decay: float = 0.0
    # eval, export, predict, pre_trained, teacher: a checkpoint's weight average when it holds one; False: its
    # trained weights.
    use_ema: bool = True
    # Batches whose gradients add up to one optimiser step (their mean loss): the step of a global batch
    # batch_size x device count x grad_accum_steps, e.g. the seed's 4 GPUs x 256 on one GPU with 4.
    grad_accum_steps: int = 1
    # Batch augmentations (batch_augment.py), all off by default (the seed has none). Mixup / CutMix:
    # lam ~ Beta(alpha, alpha) per batch; torchvision's references use 0.2 / 1.0; with both, a mixed
    # batch takes one or the other at even odds.
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mix_prob: float = 1.0  # the share of batches mixed
    # Mixup and CutMix stop after this many epochs, the last ones training on unmixed images (timm's
    # --mixup-off-epoch); 0: they never stop.
    mixup_off_epoch: int = 0
    random_erase: float = 0.0  # each sample's chance of a box set to the mean colour (torchvision's 0.1-0.2)
    # What fills an erased box: "const", 0 (the mean colour once normalised; torchvision's), or "pixel",
    # normal noise of each pixel's own (timm's --remode pixel, its default).
    random_erase_mode: str = "const"
    # Per-sample operations after the crop and flip (autoaugment.py): "ta_wide" (TrivialAugment), "ra"
    # (RandAugment: 2 operations at bin ra_magnitude of 31) or one of AutoAugment's policies,
    # "imagenet", "cifar10" or "svhn", or "augmix" (AugMix: 3 chains of 1 to 3 operations below bin
    # augmix_severity of 10, mixed with the image), torchvision's --auto-augment; "": none.
    auto_augment: str = ""
    ra_magnitude: int = 9
    augmix_severity: int = 3
    # Colour jitter without auto_augment (timm's --color-jitter, 0.4 in its recipes; torchvision's
    # ColorJitter), after the crop and flip: each image's brightness, contrast and saturation scaled by
    # factors of its own in [max(0, 1 - color_jitter), 1 + color_jitter], its hue turned by up to
    # color_jitter_hue of the circle (0 to 0.5), in an order of its own; 0: off (the seed).
    color_jitter: float = 0.0
    color_jitter_hue: float = 0.0
    # Scale each step's gradients down to this global L2 norm when above it; 0: off (the seed).
    clip_grad_norm: float = 0.0
    # Dropout on the pooled features before the classifier, in training (timm's --drop; torchvision's
    # MobileNetV2/V3 use 0.2); 0: none (the seed).
    drop_rate: float = 0.0
    # BatchNorm's running statistics: the share of each training batch's mean and variance taken in (PyTorch's
    # convention and timm's --bn-momentum; 0.1 is the seed's, MindSpore's momentum 0.9; TF-slim's MobileNet
    # decay 0.9997 is 0.0003). Smaller: steadier statistics over more batches, for small batches or fine-tuning.
    bn_momentum: float = 0.1
    # Fine-tuning: the first N of the 27 layers keep their (pre-trained) weights and BatchNorm
    # statistics; 27 trains the classifier only (a linear probe); 0: every layer trains.
    freeze_layers: int = 0
    # Knowledge distillation: a trained model's checkpoint (or run folder) whose outputs the training
    # loss also follows, (1 - distill_alpha) x the loss + distill_alpha x T^2 KL at distill_temperature
    # T (Hinton et al.'s, the KL averaged over the batch); "": none.
    teacher: str = ""
    distill_alpha: float = 0.5
    distill_temperature: float = 1.0
    # An image folder without an evaluation split (val/, validation_preprocess/): hold out this share of
    # each class's images (chosen by file name) to evaluate on, and train on the rest; 0: none.
    val_split: float = 0.0
    # An evaluation split whose images are not in class folders (ImageNet's validation images as they
    # come): a file of their labels (data.read_image_labels: Kaggle's LOC_val_solution.csv, a
    # "<file> <label>" list as Caffe's val.txt, or one label a line in the images' order as TF's
    # imagenet_2012_validation_synset_labels.txt); "": the split has class folders.
    eval_labels: str = ""
    # Quantization-aware training (fine-tuning a trained model for INT8): the forward pass rounds
    # weights and activations as the INT8 file export then writes does, BatchNorm frozen (see qat.py);
    # qat_reduce_range: 7-bit weights, for x86 CPUs without VNNI (quantize's --reduce_range).
    qat: bool = False
    qat_reduce_range: bool = False
    # qat_range_epochs: the epochs whose batches move the activation ranges; after them the ranges stay
    # fixed and the weights fine-tune against them (torchvision's --num-observer-update-epochs). 0: all.
    qat_range_epochs: int = 0
    # --- crash safety ---
    # "auto": continue from the newest valid checkpoint in save_checkpoint_path (its ckpt_0/ in a
    # distributed run; none: start afresh); chosen by itself when torchrun restarts the workers;
    # a file path: continue from that checkpoint; "": start afresh.
    resume: str = ""
    # Also save every N global steps, mid-epoch included; 0: only every save_checkpoint_epochs (the seed).
    save_checkpoint_steps: int = 0
    # Unreadable image files tolerated before the run stops; -1: 0.1% of the data set.
    max_bad_samples: int = -1
    # Steps in a row with a non-finite loss or gradient (each one skipped) before the run stops.
    max_nonfinite_steps: int = 10
    # BatchNorm statistics over the global batch in a distributed run (off, as in the seed).
    sync_bn: bool = False

    @property
    def normalisation(self) -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
        """The (mean, std) this run's inputs are normalised by (:func:`normalisation`)."""
        return normalisation(self.dataset, self.mean, self.std)

    @property
    def eval_size(self) -> int:
        """The size the run's evaluations take: ``eval_image_size``, else ``image_size``."""
        return self.eval_image_size or self.image_size


DEVICE_TARGETS = ("auto", "CPU", "GPU")  # where a model runs: auto takes CUDA where present
CHOICES: Dict[str, Tuple[Any, ...]] = {
    "dataset": DATASETS,
    "lr_decay_mode": SCHEDULES,
    "device_target": DEVICE_TARGETS + ("Ascend",),  # Ascend taken from the seed's files, refused where it is used
    "file_format": ("ONNX", "PT2", "PTE", "TFLITE", "AIR", "MINDIR"),  # export.FORMATS + MINDSPORE_FORMATS
    "padding": ("same", "symmetric"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "data_pipeline": ("auto", "cpu", "gpu"),
    "auto_augment": ("",) + AUTO_AUGMENT_POLICIES,
    "opt": OPTIMIZERS,
    "lr_base_scale": LR_BASE_SCALES,
    "random_erase_mode": ERASE_MODES,
    "compile_mode": ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
    "interpolation": ("bilinear", "bicubic"),  # transforms.INTERPOLATIONS
}

# One line of `train --help` / `eval --help` for each key (tests/test_config.py checks none is missing).
KEY_HELP: Dict[str, str] = {
    "dataset": "CIFAR-10 or CIFAR-100 .bin files (or their Python version's pickles), or an ImageNet-style folder "
               "of class folders (or WebDataset shards)",
    "dataset_path": "the data: CIFAR-10's or CIFAR-100's binaries' folder (or cifar-10-batches-py, "
                    "cifar-100-python), or an image folder (train/ + val/, "
                    "or class folders; a split may be a .tar of them: train.tar, val.tar, or this path itself; or "
                    "WebDataset shards: a folder of them, *-train-*.tar beside *-val-*.tar, or a pattern "
                    "x-{000..009}.tar)",
    "class_num": "classifier outputs",
    "batch_size": "images per step and process",
    "loss_scale": "fp16's initial loss scale (dynamic)",
    "momentum": "SGD's, RMSprop's and LARS's momentum",
    "weight_decay": "L2 decay of conv and FC weights (AdamW, LAMB: in the update, apart from the gradient)",
    "opt": "optimiser (momentum: the seed's, SGD; lars, lamb: a rate per layer, for large batches)",
    "opt_eps": "RMSprop's, AdamW's or LAMB's eps; 0: the recipe's",
    "nesterov": "opt momentum or lars: Nesterov's momentum (timm's sgd); False: the seed's",
    "trust_coefficient": "opt lars: eta, the layer rate's factor on |w| / (|g| + wd |w|)",
    "trust_clip": "opt lars: a layer's rate at most lr (NVIDIA's LARC)",
    "decay_norm_bias": "weight decay on BatchNorm gamma/beta and the FC bias too (the seed's GPU/CPU path, "
                       "torchvision's); False: conv and FC weights only (the seed's Ascend path, timm's)",
    "epoch_size": "epochs to train",
    "pretrain_epoch_size": "epochs a pre_trained seed checkpoint already trained (the schedule goes on)",
    "save_checkpoint": "write checkpoints, config.yaml, log.txt and metrics",
    "save_checkpoint_epochs": "save every N epochs",
    "keep_checkpoint_max": "numbered checkpoints kept (oldest removed; at least 2)",
    "keep_best_max": "the best N evaluated epochs' checkpoints kept as mobilenetv1-top-E.ckpt (0: none)",
    "save_checkpoint_path": "the run folder",
    "warmup_epochs": "epochs of linear warm-up from lr_init",
    "lr_decay_mode": "learning-rate schedule",
    "lr_init": "learning rate at the warm-up's start",
    "lr_end": "final learning rate (linear and cosine_annealing schedules)",
    "lr_max": "peak learning rate",
    "lr_decay_rate": "exponential schedule: the factor every lr_decay_epochs",
    "lr_decay_epochs": "exponential schedule: epochs between decays",
    "lr_per_epoch": "the rate changes once an epoch (torchvision's and timm's default); False: every step",
    "warmup_prefix": "cosine_annealing and exponential start after the warm-up (timm's --warmup-prefix, whose run is "
                     "--epochs plus the warm-up: epoch_size here counts it in); False: the warm-up counts in their "
                     "span (timm's default)",
    "lr_base_size": "the global batch the rates are meant for, scaled to the run's; 0: as given",
    "lr_base_scale": "lr_base_size's scaling: linear, sqrt, or auto (sqrt for adamw and lamb, else linear)",
    "use_label_smooth": "label smoothing",
    "label_smooth_factor": "label smoothing's share",
    "bce_loss": "binary cross entropy: a sigmoid per class (timm's --bce-loss); False: softmax cross entropy",
    "bce_target_thresh": "bce_loss: targets above it become 1, the rest 0 (timm's --bce-target-thresh); 0: off",
    "pre_trained": "checkpoint (ours, MindSpore .ckpt, .safetensors, timm's weights or train.py checkpoint, "
                   "TF-slim's TensorFlow checkpoint; a run folder: its newest) to start from; another classifier "
                   "size is left out; not needed where --resume finds a checkpoint",
    "checkpoint_path": "eval: checkpoint, run folder (its newest), .onnx, .pte, .pt2 or .tflite file",
    "run_distribute": "expect torchrun (an error without it)",
    "device_num": "processes (torchrun's count wins)",
    "device_target": "where to run (auto: the GPU when CUDA is present)",
    "ckpt_file": "export (seed's export.py): the checkpoint",
    "width": "export: input width",
    "height": "export: input height",
    "file_name": "export: output file name",
    "file_format": "export: ONNX, PT2 (a torch.export program), PTE (ExecuTorch) or TFLITE (TensorFlow Lite); MINDIR "
                   "and AIR need MindSpore",
    "width_mult": "the paper's width multiplier alpha",
    "image_size": "input resolution",
    "eval_image_size": "the evaluations' resolution, recorded for eval, export, predict and the rest; 0: image_size",
    "image_size_start": "progressive resizing: the first epoch's training resolution, growing to image_size; 0: off",
    "image_size_ramp": "progressive resizing: the share of the epochs over which the resolution grows",
    "crop_pct": "image folders' evaluation: centre crop's share of the resized shorter side",
    "crop_scale_min": "image folders' training: the smallest random crop's share of the image's area",
    "crop_ratio_min": "image folders' training: the narrowest random crop's aspect ratio (width / height)",
    "crop_ratio_max": "image folders' training: the widest random crop's aspect ratio (width / height)",
    "exif_orientation": "image folders: photos turned upright by their EXIF orientation (False: as stored, the seed's)",
    "antialias": "image folders: resizes antialiased (False: plain bilinear and the centre crop placed, the seed's)",
    "interpolation": "image folders' resizes: bilinear (the seed's) or bicubic (timm's)",
    "mean": "per-channel mean the inputs are normalised by, on the [0, 1] scale: R,G,B or one value; '' the "
            "data set's (the seed's constants)",
    "std": "per-channel standard deviation the inputs are divided by (as mean); '' the data set's",
    "padding": "same (the seed's, TensorFlow's SAME) or symmetric (PyTorch's padding=1)",
    "precision": "auto: bf16 on a GPU, fp32 on the CPU",
    "seed": "random seed: weights, data order, augmentation",
    "num_workers": "loader processes of image folders (CIFAR, held in memory, starts none); -1: min(8, CPU count)",
    "eval_drop_last": "drop the last partial eval batch (the seed's count)",
    "eval_batch_size": "evaluation batch; 0: batch_size",
    "channels_last": "NHWC memory format",
    "compile": "torch.compile the training step",
    "compile_mode": "compile True: torch.compile's mode (default, reduce-overhead, max-autotune, ...)",
    "data_pipeline": "image folders: cpu (workers decode) or gpu (batched decode on the device); auto: gpu with CUDA",
    "random_flip": "horizontal flips in training",
    "vflip": "each training image's chance of a vertical flip (timm's --vflip: aerial, satellite, microscope images); "
             "0: never",
    "aug_repeats": "training: each image drawn this many times in a row, augmented anew (1: off)",
    "class_balance": "training: classes drawn in proportion to their image count ** (1 - this), with replacement; "
                     "1: alike, 0: as they are",
    "log_interval": "steps between logged records; 0: epochs only",
    "eval_interval": "evaluate every N epochs and keep the best; 0: never",
    "patience": "early stopping: stop after N evaluations in a row without a better top-1; 0: never",
    "patience_min_delta": "patience: a better top-1 is more than this above the last that counted as better "
                          "(0.005: half a point)",
    "ema_decay": "weight average's decay (timm: 0.9998); 0: none",
    "use_ema": "eval/export/predict/pre_trained/teacher: a checkpoint's weight average when it has one",
    "grad_accum_steps": "batches whose gradients make one step",
    "mixup_alpha": "Mixup's Beta alpha; 0: off",
    "cutmix_alpha": "CutMix's Beta alpha; 0: off",
    "mix_prob": "share of batches mixed",
    "mixup_off_epoch": "Mixup and CutMix stop after this many epochs (timm's --mixup-off-epoch); 0: never",
    "random_erase": "each image's chance of an erased box; 0: off",
    "random_erase_mode": "what fills an erased box: const (0, the mean colour; torchvision's) or pixel (normal "
                         "noise per pixel; timm's default)",
    "auto_augment": "per-image policy: TrivialAugment, RandAugment, an AutoAugment policy or AugMix; '': none",
    "ra_magnitude": "RandAugment's magnitude bin (of 31)",
    "augmix_severity": "AugMix's operations take bins below this (of 10)",
    "color_jitter": "brightness, contrast and saturation factors of each image in [max(0, 1 - this), 1 + this] "
                    "(timm's 0.4); 0: off",
    "color_jitter_hue": "each image's hue turned by up to this share of the circle (at most 0.5); 0: off",
    "clip_grad_norm": "clip gradients to this global L2 norm; 0: off",
    "drop_rate": "dropout before the classifier, in training; 0: none",
    "bn_momentum": "BatchNorm running statistics' momentum, PyTorch's convention (0.1: the seed's MindSpore 0.9)",
    "freeze_layers": "fine-tuning: the first N of the 27 layers keep their weights and BatchNorm statistics; 27: classifier only",
    "teacher": "knowledge distillation: a trained checkpoint, run folder or torch.export .pt2 program (any "
               "network) whose outputs the loss also follows",
    "distill_alpha": "distillation: the teacher divergence's share of the loss",
    "distill_temperature": "distillation: softmax temperature of both models' outputs",
    "val_split": "image folder without an eval split: share of each class held out",
    "eval_labels": "labels of an eval split without class folders (LOC_val_solution.csv, val.txt, a label a line)",
    "qat": "quantization-aware training: weights and activations rounded as in the INT8 file export writes; BatchNorm frozen",
    "qat_reduce_range": "qat: 7-bit weights, for x86 CPUs without VNNI (quantize's --reduce_range)",
    "qat_range_epochs": "qat: epochs whose batches move the activation ranges, which then stay fixed; 0: all",
    "resume": "auto (the run folder's newest valid checkpoint), a checkpoint or folder, or '' (afresh)",
    "save_checkpoint_steps": "also save every N steps, mid-epoch included; 0: epochs only",
    "max_bad_samples": "unreadable images tolerated; -1: 0.1% of the data",
    "max_nonfinite_steps": "non-finite steps in a row (each skipped) before the run stops",
    "sync_bn": "BatchNorm statistics over the global batch (distributed)",
}

# Keys of the seed's YAML files (values and help documents) that mean nothing here: Huawei cloud paths
# (ModelArts/OBS), Ascend device and rank ids, profiling, the parameter server, the Ascend 310 inference
# pre/post-processing. A seed file (or flag) holding them loads; they are listed in one line, not used.
SEED_IGNORED_KEYS: Tuple[str, ...] = (
    "enable_modelarts", "data_url", "train_url", "checkpoint_url", "data_path", "output_path", "load_path",
    "checkpoint_file", "checkpoint_file_path", "device_id", "rank_id", "enable_profiling", "parameter_server",
    "only_create_dataset", "do_train", "do_eval", "result_dir", "label_dir", "dataset_name", "result_path",
)

# Seed keys above that name a path: typed on the command line (not held by a seed file), they are meant as the
# key here that reads or writes that path, and are refused with its name rather than ignored.
TYPED_PATH_KEYS: Dict[str, str] = {
    "data_path": "the data is --dataset_path (torchvision's --data-path)",
    "output_path": "train's run folder, where checkpoints and logs go, is --save_checkpoint_path",
    "checkpoint_file_path": "the checkpoint eval reads is --checkpoint_path (export's: --ckpt_file)",
    "load_path": "a checkpoint to start training from is --pre_trained (the one eval reads: --checkpoint_path)"}

# The seed's export keys (export.py's): its config files carry them, and export reads them from one; train takes
# them there, records them in its config.yaml and uses none. Typed on train's command line they are named.
EXPORT_KEYS: Tuple[str, ...] = ("ckpt_file", "width", "height", "file_name", "file_format")

# Values we add to a seed key's choices; accepted where a seed file's choice list does not name them.
CHOICE_EXTENSIONS: Dict[str, Tuple[Any, ...]] = {"device_target": ("auto",), "file_format": ("PT2", "PTE", "TFLITE"),
                                                  "dataset": ("cifar100",),
                                                  "lr_decay_mode": ("exponential", "cosine_annealing")}

# The seed's ImageNet values (default_config_imagenet.yaml) that differ from its CIFAR-10 ones.
DATASET_PRESETS: Dict[str, Dict[str, Any]] = {
    "cifar10": {},
    "cifar100": {"class_num": 100},  # beyond the seed: its CIFAR-10 values, for CIFAR-100's 100 fine labels
    "imagenet2012": {
        "class_num": 1001, "batch_size": 256, "warmup_epochs": 0, "lr_decay_mode": "linear",
        "lr_init": 0.0, "lr_max": 0.8, "lr_end": 0.0, "use_label_smooth": True,
        "label_smooth_factor": 0.1,
    },
}


class ConfigError(ValueError):
    """A configuration file or option that cannot be used; the message names it."""


class OptionError(ConfigError):
    """A ConfigError of the options and configuration files themselves (this module's), which every process of
    a torchrun job, given the same command line, raises alike (cli says it once a machine)."""


def _field_types() -> Dict[str, type]:
    return {f.name: type(f.default) for f in fields(Config)}


def _parse_bool(text: str, key: str) -> bool:
    low = text.strip().lower()
    if low in ("true", "1", "yes", "on"):
        return True
    if low in ("false", "0", "no", "off"):
        return False
    raise OptionError(f"option --{key}: expected True or False, got {text!r}")


def bool_option(text: str) -> bool:
    """An argparse ``type`` for ``--flag True|False`` options, spelled as the configuration keys are."""
    low = text.strip().lower()
    if low in ("true", "1", "yes", "on", "false", "0", "no", "off"):
        return low in ("true", "1", "yes", "on")
    raise ValueError(text)


bool_option.__name__ = "True or False"  # argparse names the expected type by it: "invalid True or False value"


# Names the seed's README uses for keys its code (and this toolkit) spells otherwise.
SEED_README_NAMES = {"platform": "--device_target",
                     "pretrain_ckpt": "--checkpoint_path in eval, --pre_trained in train"}


# timm's and torchvision's cosine schedule against the seed's of that name.
COSINE_NOTE = "their cosine is cosine_annealing; cosine is the seed's, TensorFlow's linear-cosine decay, lower"

# How the seed's label smoothing differs from PyTorch's, timm's and torchvision's.
SMOOTHING_NOTE = ("the seed's smoothing: 1 - e on the true class and e / (class_num - 1) on each other, where "
                  "PyTorch's label_smoothing puts e / class_num on every class")

# torchvision's classification reference train.py options (its names, dashes as underscores) spelt otherwise here.
TORCHVISION_NAMES = {"label_smoothing": f"label_smooth_factor, with use_label_smooth True ({SMOOTHING_NOTE})",
                     "lr_warmup_epochs": "warmup_epochs",
                     "lr_scheduler": f"lr_decay_mode ({COSINE_NOTE}; steplr is exponential)",
                     "lr_min": "lr_end", "lr_warmup_decay": "lr_init, a rate (lr_max times that factor)",
                     "lr_gamma": "lr_decay_rate", "lr_step_size": "lr_decay_epochs",
                     "norm_weight_decay": "decay_norm_bias", "bias_weight_decay": "decay_norm_bias",
                     "wd": "weight_decay", "data_path": "dataset_path", "output_dir": "save_checkpoint_path",
                     "train_crop_size": "image_size", "val_crop_size": "eval_image_size",
                     "val_resize_size": "crop_pct (the resize is eval_image_size / crop_pct)",
                     "ra_sampler": "aug_repeats", "ra_reps": "aug_repeats"}

# What other tools call this project's optimisers (a refused --opt says which it is here).
OPT_NAMES_ELSEWHERE = {
    "sgd": "SGD with momentum is opt momentum (the seed's name; torchvision's --opt sgd), with --nesterov True for "
           "timm's sgd",
    "nesterov": "Nesterov's momentum is opt momentum with --nesterov True (timm's nesterov and sgd)",
    "rmsproptf": "timm's rmsproptf (TensorFlow's RMSProp) is not offered: opt rmsprop is PyTorch's RMSprop, with "
                 "its eps outside the square root (the README's Optimisers)",
}
# What timm's --aa rand-mN-... is here: said for --aa, and for that value given as --auto_augment.
RAND_AUGMENT_NOTE = ("timm's rand-mN is about ra with ra_magnitude 3N (torchvision's 31 bins, each op always "
                     "applied, black fill: timm's p 0.5, noise and grey fill are not taken)")

# timm's train.py options (its names, dashes as underscores) that a key here stands for.
TIMM_NAMES = {"device": "device_target (CPU or GPU; torchvision's --device too)",
              "checkpoint": "checkpoint_path (timm's validate.py; a checkpoint to start training from is pre_trained)",
              "model": "width_mult (the network is MobileNetV1 alone: timm's mobilenetv1_100 is width_mult 1.0)",
              "epochs": "epoch_size", "lr": "lr_max", "num_classes": "class_num", "drop": "drop_rate",
              "smoothing": f"label_smooth_factor, with use_label_smooth True ({SMOOTHING_NOTE})",
              "sched": f"lr_decay_mode ({COSINE_NOTE})",
              "warmup_lr": "lr_init", "min_lr": "lr_end", "decay_epochs": "lr_decay_epochs",
              "decay_rate": "lr_decay_rate", "model_ema": "ema_decay", "model_ema_decay": "ema_decay",
              "mixup": "mixup_alpha", "cutmix": "cutmix_alpha", "reprob": "random_erase",
              "aa": f"auto_augment, where {RAND_AUGMENT_NOTE}",
              "remode": "random_erase_mode", "clip_grad": "clip_grad_norm", "amp": "precision",
              "torchcompile": "compile", "data_dir": "dataset_path",
              "output": "save_checkpoint_path", "initial_checkpoint": "pre_trained",
              "pretrained": "pre_trained, a file (no weights are downloaded)", "mixup_prob": "mix_prob",
              "amp_dtype": "precision",
              "img_size": "image_size", "input_size": "image_size", "train_interpolation": "interpolation",
              "workers": "num_workers", "hflip": "random_flip, on or off",
              "scale": "crop_scale_min (timm's --scale S 1 is --crop_scale_min S: a crop's largest share is the whole "
                       "image)",
              "ratio": "crop_ratio_min and crop_ratio_max (timm's --ratio R1 R2 is --crop_ratio_min R1 "
                       "--crop_ratio_max R2)",
              "checkpoint_hist": "keep_best_max (timm's keeps the best; keep_checkpoint_max, the newest)"}

# timm's and torchvision's train.py short options, refused naming the key (this toolkit takes --key value alone).
SHORT_OPTION_NAMES = {"-b": "batch_size", "-j": "num_workers"}

# TF-slim's train_image_classifier.py flags (the MobileNet paper's training) that a key here stands for: the README's
# Weight averaging and Optimisers sections name them (--moving_average_decay, its exponential decay).
TF_SLIM_NAMES = {"moving_average_decay": "ema_decay (warmed up as TensorFlow's ExponentialMovingAverage with "
                                         "num_updates)",
                 "num_epochs_per_decay": "lr_decay_epochs, with lr_decay_mode exponential",
                 "learning_rate_decay_factor": "lr_decay_rate, with lr_decay_mode exponential",
                 "learning_rate_decay_type": "lr_decay_mode (its exponential is exponential here; its polynomial, of "
                                             "power 1, linear)",
                 "learning_rate": "lr_max", "end_learning_rate": "lr_end", "opt_epsilon": "opt_eps",
                 "optimizer": "opt (momentum and rmsprop by those names)",
                 "train_image_size": "image_size",
                 "max_number_of_steps": "epoch_size, counted in epochs, not steps: its steps divided by the steps "
                                        "per epoch (the training images over batch_size x device_num x "
                                        "grad_accum_steps)"}


def _misspelt(key: str, known: str) -> bool:
    """Whether ``key`` reads as ``known`` misspelt (batchsize, lr_mx, class_nums, pretrain) or cut short
    (keep_checkpoint, grad_accum), not as another key with a word in common (lr_decay_step is not lr_decay_rate,
    dataset_dir not dataset): same words each alike, or the words run together alike."""
    ours, theirs = key.split("_"), known.split("_")
    if len(ours) < len(theirs) and theirs[:len(ours)] == ours:
        return True
    if len(ours) == len(theirs) and all(difflib.SequenceMatcher(None, a, b).ratio() >= 0.55
                                        for a, b in zip(ours, theirs)):
        return True
    return difflib.SequenceMatcher(None, key.replace("_", ""), known.replace("_", "")).ratio() >= 0.85


def close_name(name: str, known: Iterable[str]) -> str:
    """The name of ``known`` that ``name`` reads as misspelt or cut short (:func:`_misspelt`), the closest of them;
    "" where none does."""
    close = [c for c in difflib.get_close_matches(name, list(known), n=3, cutoff=0.75) if _misspelt(name, c)]
    return close[0] if close else ""


def unknown_key(key: str, source: str, own: Sequence[str] = ()) -> OptionError:
    """The refusal of ``key`` (from ``source``), with the key it reads as misspelt. ``own``: the command's options
    that are not configuration keys (lr-schedule's ``--steps_per_epoch``), suggested as options."""
    other = SEED_README_NAMES.get(key)
    hint = (f" (a name from the seed's README: here it is {other})" if other else
            f" (timm's name: here it is {TIMM_NAMES[key]})" if key in TIMM_NAMES else
            f" (torchvision's reference scripts' name: here it is {TORCHVISION_NAMES[key]})"
            if key in TORCHVISION_NAMES else
            f" (TF-slim's name: here it is {TF_SLIM_NAMES[key]})" if key in TF_SLIM_NAMES else "")
    if key == "config_path" and source.startswith("config file"):
        return OptionError(f"{source}: config_path names a config file on the command line; a file cannot name "
                           f"another (one file is read): put the keys in this one")
    if not hint and isinstance(key, str) and key != key.lower() and key.lower() in _field_types():
        hint = f" (did you mean {key.lower()}? keys are lower case)"
    if not hint and isinstance(key, str):
        options = [name[2:] for name in own]
        close = close_name(key, [*_field_types(), "config_path", *options])
        hint = f" (did you mean {'--' if close in options else ''}{close}?)" if close else ""
    return OptionError(f"{source}: unknown key {key!r}{hint}")


def channel_values(key: str, value: Any, source: str) -> str:
    """``mean`` or ``std`` given as three numbers (R, G, B; a YAML list, or text split by commas or spaces,
    in brackets or not) or one for every channel, on the [0, 1] pixel scale: the text the configuration
    holds, three values as they read back exactly ("" stays "": the data set's)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return ""
    if isinstance(value, (list, tuple)):
        items = list(value)
    else:
        text = str(value).strip()
        if text[:1] + text[-1:] in ("[]", "()"):
            text = text[1:-1].strip()
        items = re.split(r"\s*,\s*|\s+", text)  # "0.5," is an item short, not one value
    numbers = []
    for v in items:
        if isinstance(v, Real) and not isinstance(v, bool):  # a YAML number, numpy's too
            numbers.append(float(v))
        elif isinstance(v, str) and NUMBER.fullmatch(v):
            numbers.append(float(v))
    if len(numbers) != len(items) or len(numbers) not in (1, 3) or not all(map(math.isfinite, numbers)):
        raise OptionError(f"{source}: {key} must be three numbers (R,G,B) or one for every channel, got {value!r}")
    numbers = numbers * 3 if len(numbers) == 1 else numbers
    low = 0.0 if key == "mean" else math.ulp(0.0)
    bad = [v for v in numbers if not low <= v <= 1]
    if bad:
        scale = " (the 0-255 scale? divide by 255)" if any(v > 1 for v in bad) else ""
        what = "in [0, 1]" if key == "mean" else "in (0, 1]"
        raise OptionError(f"{source}: {key} {', '.join(f'{v:g}' for v in numbers)}: each value must be {what}, on "
                          f"the [0, 1] pixel scale{scale}")
    return ",".join(repr(v) for v in numbers)


def normalisation(dataset: str, mean: Any = "", std: Any = "") -> Tuple[Tuple[float, ...], Tuple[float, ...]]:
    """The per-channel (mean, std) inputs of ``dataset`` are normalised by: the seed's constants for the data
    set (CIFAR's for CIFAR-10 and CIFAR-100, ImageNet's for image folders), each replaced by ``mean`` or
    ``std`` where set (a configuration's text: :func:`channel_values`). A recorded value that does not read
    raises :class:`ConfigError`."""
    seed_mean, seed_std = (CIFAR_MEAN, CIFAR_STD) if is_cifar(dataset) else (IMAGENET_MEAN, IMAGENET_STD)
    mean, std = channel_values("mean", mean, "mean"), channel_values("std", std, "std")
    return (tuple(float(v) for v in mean.split(",")) if mean else seed_mean,
            tuple(float(v) for v in std.split(",")) if std else seed_std)


def normalisation_keys(dataset: str, norm: Tuple[Sequence[float], Sequence[float]]) -> Dict[str, str]:
    """The ``mean`` and ``std`` keys a configuration records for the normalisation ``norm`` of ``dataset``
    (each "" where it is the data set's constants)."""
    return {key: "" if tuple(values) == own else channel_values(key, list(values), key)
            for key, values, own in zip(NORMALISATION_KEYS, norm, normalisation(dataset))}


def crop_pct_problem(value: Any) -> str:
    """What is wrong with ``value`` as a ``crop_pct`` (a number in (0, 1]), or "" (the configuration's check and
    ``load_predictor``'s, a Python caller's)."""
    if isinstance(value, Real) and not isinstance(value, bool) and 0 < value <= 1:
        return ""
    return f"crop_pct must be in (0, 1] (the centre crop's share of the resized shorter side), got {value!r}"


# Above this, float32 cannot tell the softened outputs apart: T^2 x KL is rounding noise times T^2 (with
# logits of spread 4 over 1000 classes it is 0.1% off at T 1000, 12% at 1e4, negative at 1e5; at 1e20,
# 0 x inf: NaN). Hinton et al. used T up to 20.
MAX_DISTILL_TEMPERATURE = 1000.0
# The largest float32: GradScaler keeps its scale in one, and a larger loss_scale becomes inf there; the
# optimisers take their settings (weight_decay, eps, ...) in float32 too, where a larger one fails deep in a step.
MAX_LOSS_SCALE = MAX_FLOAT32 = 3.4028234663852886e38
# Sizes past any use, refused before they fail deep in the run with a traceback (an int64 overflow in torch)
# or an out-of-memory error naming other keys: a 65536x65536 image's first layer alone is 137 GB of float32
# activations; no labelled data set has 10 million classes (ImageNet-21k: 21,841; the largest face sets, a few
# million identities), whose classifier would be 10 billion weights; info counts widths up to MAX_WIDTH_MULT.
MAX_IMAGE_SIZE = 65536
MAX_CLASS_NUM = 10 ** 7
MAX_WIDTH_MULT = 1e6
# A batch as an exported file's largest too (export); loader processes past any machine's cores (torch
# started them one by one: --num_workers 1e30, a whole number to YAML and argparse alike, hung); any other whole
# number past int32, which no count or step of a run reaches (islice and range said the limit, not the key).
MAX_BATCH_SIZE = 2 ** 20
MAX_NUM_WORKERS = 1024
MAX_WHOLE_NUMBER = 2 ** 31 - 1
MAX_SEED = 2 ** 32 - 1  # NumPy's seeds: a run seeds its generators from it
SEED_RULE = "seed must be in [0, 2**32 - 1]"
_LONG_NUMBER = re.compile(r"(?<![\w./\\-])(-?\d{6})(\d{19,})(?![\w./\\])")  # a path's part is left whole


def long_numbers_cut(message: str) -> str:
    """``message`` with each whole number of 25 digits or more shown by its first six and its count of digits:
    ``--batch_size 1e300`` was refused with all 301 digits of the float the text reads as."""
    return _LONG_NUMBER.sub(lambda m: f"{m[1]}... ({len(m[1].lstrip('-')) + len(m[2])} digits)", message)


def temperature_problem(value: float) -> str:
    """What is wrong with ``value`` as a distillation temperature, or "" (the configuration's check and
    :class:`losses.Distiller`'s, a Python caller's)."""
    if 0 < value <= MAX_DISTILL_TEMPERATURE:  # NaN fails too
        return ""
    return (f"distill_temperature must be in (0, {MAX_DISTILL_TEMPERATURE:g}] (above that float32 cannot tell the "
            f"softened outputs apart and T^2 x KL is rounding noise, or NaN), got {value}")


def mix_prob_problem(cfg: Config) -> str:
    """What is wrong with ``mix_prob`` 0 beside ``mixup_alpha`` or ``cutmix_alpha`` (no batch mixed: the alphas taken,
    recorded and ignored), or "" (the configuration's check; train's, where a ``--resume`` finds nothing to resume)."""
    mixing = [f"{key} {getattr(cfg, key):g}" for key in ("mixup_alpha", "cutmix_alpha") if getattr(cfg, key)]
    if cfg.mix_prob != 0 or not mixing:
        return ""
    # mix_prob 0 without an alpha is itself refused (a key nothing uses): the way out sets both
    return (f"mix_prob 0 mixes no batch, so {' and '.join(mixing)} would do nothing: give the share of batches to "
            f"mix (1, the default, mixes every one), or train without Mixup and CutMix: mixup_alpha 0 and "
            f"cutmix_alpha 0, with mix_prob left at its default (--mix_prob 1 where a config file sets it)")


def _float32(value: float) -> float:
    """``value`` rounded to float32, as a float32 tensor holds it (and as torch compares one with a Python number)."""
    return struct.unpack("f", struct.pack("f", value))[0]


def bce_threshold_problem(threshold: float, smooth_factor: float, num_classes: int) -> str:
    """What is wrong with ``threshold`` (``bce_target_thresh``, above 0) beside the seed's label smoothing of
    ``smooth_factor`` over ``num_classes``, or "" (the configuration's check and :class:`losses.BinaryCrossEntropy`'s,
    a Python caller's). Every target, smoothed and mixed, lies between each other class's ``e / (C - 1)`` and the
    true class's ``1 - e`` (float32, as the loss builds them): a threshold not below the true class's makes every
    target 0, one below the others' makes every target 1; either way the loss no longer says which class it is."""
    if not threshold or not smooth_factor or num_classes < 2:
        return ""
    on, off, t = _float32(1.0 - smooth_factor), _float32(smooth_factor / (num_classes - 1)), _float32(threshold)
    if not on > off:  # a factor at or past (C - 1) / C (train warns of it): the bounds below cross, each to the other
        return (f"bce_target_thresh {threshold:g} beside label_smooth_factor {smooth_factor:g}: each other class's "
                f"smoothed target, {off:.6g}, is no lower than the true class's, {on:.6g} (the factor is at or above "
                f"{num_classes - 1}/{num_classes}, its limit for class_num {num_classes}), so no threshold keeps the "
                f"label: give a label_smooth_factor below {(num_classes - 1) / num_classes:.6g}")
    if not on > t:
        return (f"bce_target_thresh {threshold:g} is not below the true class's smoothed target, {on:.6g} (1 - "
                f"label_smooth_factor {smooth_factor:g}): every target would count as 0, and the run would learn no "
                f"class; give a threshold below {on:.6g} (timm's recipes use 0.2) or a smaller label_smooth_factor")
    if off > t:
        return (f"bce_target_thresh {threshold:g} is below each other class's smoothed target, {off:.6g} "
                f"(label_smooth_factor {smooth_factor:g} / (class_num {num_classes} - 1)): every target would count "
                f"as 1, and the run would learn no class; give a threshold above {off:.6g} or a smaller "
                f"label_smooth_factor")
    return ""


# Other tools' option names for what the argparse commands take under another: command -> name -> what does it here.
_MODEL_FILE = {"export": "--ckpt_file", "predict": "--ckpt_file",
               "quantize": "--onnx F, --program F.pt2 or --tflite F.tflite",
               "benchmark": "the files themselves, FILE... (no option)", "info": "the file itself, FILE (no option)",
               "average": "the checkpoints themselves (no option)", "convert": "SRC (no option)",
               "recalibrate-bn": "CKPT (no option)"}
_OUTPUT = {"export": "--file_name (its extension follows --file_format)", "predict": "--out F.csv|F.json",
           "quantize": "--out", "average": "--out", "recalibrate-bn": "--out", "plot": "--out",
           "convert": "DST (no option)"}
_IMAGE_SIZE = {"export": "--width and --height (default: the size the checkpoint records)", "predict": "--image_size",
               "recalibrate-bn": "--image_size", "benchmark": "--image_size", "info": "--image_size"}
FOREIGN_OPTIONS: Dict[str, Dict[str, str]] = {}
for _names, _table in ((("--model", "--checkpoint", "--weights", "--input", "-m", "-i"), _MODEL_FILE),
                       (("--output", "--output_path", "--save", "-o"), _OUTPUT),
                       (("--img_size", "--input_size", "--size", "--resolution"), _IMAGE_SIZE)):
    for _command, _ours in _table.items():
        FOREIGN_OPTIONS.setdefault(_command, {}).update(dict.fromkeys(_names, _ours))
FOREIGN_OPTIONS["export"].update(dict.fromkeys(("--opset", "--opset_version"), (
    "none, export writes one opset, the lowest of torch.onnx's dynamo exporter, which ONNX Runtime 1.17+ reads")))
FOREIGN_OPTIONS["export"].update({"--dynamic": "none, the batch is dynamic unless --static_batch",
                                  "--format": "--file_format"})
FOREIGN_OPTIONS["predict"].update({"--topk": "--top_k", "--k": "--top_k", "--class_map": "--labels"})
FOREIGN_OPTIONS["quantize"].update({"--calibration_data": "--calib_data", "--calib_dir": "--calib_data",
                                    "--calib_size": "--calib_images", "--num_calib": "--calib_images"})
FOREIGN_OPTIONS["average"]["-n"] = "--last N"
del FOREIGN_OPTIONS["convert"]["--weights"]  # argparse reads it as short for --weights_only


def switch_given_a_word(name: str, word: str) -> str:
    """The refusal of a switch (``--json``, ``--static_batch``) given ``True`` or ``False`` after it, as train's keys
    take the word (the seed's way); "" for any other word."""
    if word.lower() not in ("true", "false"):
        return ""
    return f"{name} {word}: {name} is a switch, taking no value: give {name} alone for True, leave it out for False"


class CommandParser(argparse.ArgumentParser):
    """The argparse commands' parser: an option another tool spells so (:data:`FOREIGN_OPTIONS`: timm's and the
    ONNX exporters' --model, -o, --img-size, --opset; none of them an option of the command's, nor short for one)
    is named in the error with what does it here; argparse said "unrecognized arguments", or only the required
    options it missed (quantize --input x.onnx: "required: --calib_data, --out")."""

    _given: Sequence[str] = ()

    def parse_known_args(self, args: Optional[Sequence[str]] = None, namespace: Any = None) -> Any:
        self._given = list(sys.argv[1:] if args is None else args)
        switches = {name for action in self._actions if isinstance(action, argparse._StoreTrueAction)
                    for name in action.option_strings}
        options = [name for action in self._actions for name in action.option_strings]
        for token, after in zip(self._given, self._given[1:]):
            if token == "--":
                break
            # argparse takes a switch by a prefix of its name too (export --static True: "unrecognized arguments")
            hits = [name for name in options if name.startswith(token)] if self.allow_abbrev and \
                token.startswith("--") and token not in options else [token]
            if len(hits) == 1 and hits[0] in switches and switch_given_a_word(token, after):
                # The word was "unrecognized" (export --static_batch True) or taken as an image (predict
                # --background_class False x.jpg: "image False: no such file")
                self.error(switch_given_a_word(token, after))
        return super().parse_known_args(args, namespace)

    def _print_message(self, message: str, file: Any = None) -> None:
        """argparse's, but a --help that cannot be written (`> /dev/full`) is an error, as any output's, where
        argparse passed it over and exited 0."""
        if file is not None and file is sys.stdout and message:
            file.write(message)
            file.flush()
            return
        super()._print_message(message, file)

    def error(self, message: str) -> NoReturn:
        misspelt = self._misspelt_hint(message)
        message += self._dash_path_hint()
        foreign = FOREIGN_OPTIONS.get(self.prog.rpartition(" ")[2], {})
        for token in self._given:
            if token == "--":
                break
            name = token.partition("=")[0]
            if name in foreign:
                message += f" ({name} is another tool's option; here: {foreign[name]})"
                break
        else:
            message += misspelt or self._several_values_hint(message)
        switch = re.match(r"argument (--\w+): ignored explicit argument '(\w+)'$", message)
        if switch and switch.group(2).lower() in ("true", "false"):  # --static_batch=True
            name = switch.group(1)
            message += f" ({name} is a switch: give {name} alone for True, leave it out for False)"
        super().error(long_numbers_cut(message))

    def _several_values_hint(self, message: str) -> str:
        """timm's ``--mean 0.5 0.4 0.3`` given to predict, export or recalibrate-bn: the comma-separated form,
        as train's and eval's keys answer it; argparse said only "unrecognized arguments: 0.4 0.3"."""
        if not message.startswith("unrecognized arguments: "):
            return ""
        for k, token in enumerate(self._given):
            if token == "--":
                break
            name, eq, value = token.partition("=")
            name = name[2:].replace("-", "_") if name.startswith("--") else ""
            rest = self._given[k + 1:] if eq else self._given[k + 2:]
            value = value if eq else (self._given[k + 1] if k + 1 < len(self._given) else "")
            if name not in NORMALISATION_KEYS or not NUMBER.fullmatch(value):
                continue
            extra = list(itertools.takewhile(NUMBER.fullmatch, rest))
            if extra:
                return f" (several values in one: --{name} {','.join([value, *extra])})"
        return ""

    def _misspelt_hint(self, message: str) -> str:
        """An unrecognized ``--option`` that reads as one of the command's misspelt (``--iamge_size``,
        ``--calib_imgaes``): "did you mean", as train's and eval's unknown keys say (:func:`unknown_key`); argparse
        said only "unrecognized arguments"."""
        if not message.startswith("unrecognized arguments: "):
            return ""
        unknown = message[len("unrecognized arguments: "):].split(" ")
        ours = [name[2:] for action in self._actions for name in action.option_strings
                if name.startswith("--") and name != "--help"]
        for token in unknown:
            name = token.partition("=")[0]
            if not name.startswith("--") or len(name) < 4 or name[2:] in ours:
                continue
            close = close_name(name[2:], ours)
            if close:
                return f" (did you mean --{close}?)"
        return ""

    def _dash_path_hint(self) -> str:
        """Where a path given starts with a dash (`predict -x.jpg`, `--out -o.csv`), which argparse takes for an
        option: how to name it. argparse said only "required: IMAGE", "unrecognized arguments: -x.jpg" or
        "argument --out: expected one argument", naming no way through. A token is such a path where a file of
        that name is there, or where it follows an option that takes a value (an output not written yet)."""
        from .runtime import shell_path

        options = {name: action.nargs != 0 for action in self._actions for name in action.option_strings}
        before = ""
        for token in self._given:
            if token == "--":
                break
            # argparse reads a token with a space as a value (`--out "-my out.csv"`), not as an option
            if token.startswith("-") and len(token) > 1 and not self._negative_number_matcher.match(token) \
                    and " " not in token and token.partition("=")[0] not in options \
                    and not (self.allow_abbrev and any(name.startswith(token) for name in options)) \
                    and (os.path.lexists(token) or options.get(before) and not token.startswith("--")):
                how = (f"give {before}={token}" if options.get(before) and _is_number(token) else
                       f"give {before} {shell_path(token)}" if options.get(before) else
                       f"name it {shell_path(token)}, or put it after --")
                return f" ({token} starts with a dash, which reads as an option: {how})"
            before = token
        return ""


def _is_number(token: str) -> bool:
    """Whether ``token`` reads as a float, or a comma list of them: `-1e-3`, `-inf`, `-0.25,0.5` (benchmark
    --width_mult), which argparse's negative-number pattern (digits and a point only) takes for an option; a value
    of an option, given as `--seconds=-1e-3`, not a path (`./-1e-3`)."""
    try:
        for part in token.split(","):
            float(part)
    except ValueError:
        return False
    return True


def add_max_bad_samples_option(parser: Any) -> None:
    """``--max_bad_samples`` of a command that reads training images outside training (quantize,
    recalibrate-bn): the key's meaning and check as training has them."""
    import argparse

    def limit(text: str) -> int:
        value = whole_number(text)
        if max_bad_samples_problem(value):
            raise argparse.ArgumentTypeError(max_bad_samples_problem(value))
        return value

    parser.add_argument("--max_bad_samples", type=limit, default=-1,
                        help=KEY_HELP["max_bad_samples"].replace("%", "%%") + ", as in training (default -1)")


def max_bad_samples_problem(value: int) -> str:
    """max_bad_samples' one rule, for the configuration (validate) and the commands with an option of their own
    (add_max_bad_samples_option): what is wrong with ``value``, or ""."""
    return f"max_bad_samples must be >= 0, or -1 for 0.1% of the data set, got {value}" if value < -1 else ""


def num_workers_problem(value: int) -> str:
    """num_workers' one rule, for the configuration (validate) and the commands with a --num_workers of their own:
    what is wrong with ``value``, or ""."""
    if value < -1:  # -1 alone means the default: -2 read as it too hid a typo
        return f"num_workers must be >= 0, or -1 for the default (min(8, CPU count)), got {value}"
    if value > MAX_NUM_WORKERS:
        return f"num_workers {value} is above {MAX_NUM_WORKERS:,} loader processes"
    return ""


def _integer(text: str) -> int:
    """``text`` as int() reads it, or as a float with no fraction (``97.0``, ``1e3``), as the configuration's keys
    and train's options take it; else argparse's error for a value that is no whole number (argparse's own named
    the type function: "invalid whole_number value")."""
    import argparse

    try:
        return int(text)
    except ValueError:
        pass
    try:
        number = float(text)
    except ValueError:
        number = math.nan
    if not number.is_integer():  # also inf and nan
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}")
    return int(number)


def whole_number(text: str) -> int:
    """An argparse type: a whole number of the commands' own options (a batch, a count, a size), at most
    :data:`MAX_WHOLE_NUMBER` either way: past int64, torch and NumPy failed with a traceback ("Overflow when
    unpacking long long") or a message naming no option, and none of those counts reaches int32's end."""
    import argparse

    value = _integer(text)
    if abs(value) > MAX_WHOLE_NUMBER:
        raise argparse.ArgumentTypeError(f"{value} is past {'-' if value < 0 else ''}{MAX_WHOLE_NUMBER:,} (2**31 - 1)")
    return value


def image_size_number(text: str) -> int:
    """An argparse type: a command's own ``--image_size`` (predict, recalibrate-bn), at most :data:`MAX_IMAGE_SIZE`
    as the configuration's (past it torch's storage size overflowed, a traceback, or tens of GB were asked for)."""
    import argparse

    value = whole_number(text)
    if value > MAX_IMAGE_SIZE:
        raise argparse.ArgumentTypeError(f"{value} is above {MAX_IMAGE_SIZE} pixels a side")
    return value


def seed_number(text: str) -> int:
    """An argparse type: a command's own ``--seed`` (quantize's and recalibrate-bn's draw of training images),
    in the configuration's range: past int64 NumPy's seeding failed naming no option, and below 0 it was taken."""
    import argparse

    value = _integer(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{SEED_RULE}, got {value}")
    return value


def add_num_workers_option(parser: Any, help: str) -> None:
    """``--num_workers`` of a command outside the configuration (predict, quantize, recalibrate-bn), checked as
    the configuration's key is (-2 and below were read as the default, a typo run as -1)."""
    import argparse

    def workers(text: str) -> int:
        value = whole_number(text)
        if num_workers_problem(value):
            raise argparse.ArgumentTypeError(num_workers_problem(value))
        return value

    parser.add_argument("--num_workers", type=workers, default=-1, help=help)


# The seed's device (its configuration files' and its export.py's default), refused alike by train and eval
# (engine.resolve_device) and by the --device_target of predict, benchmark and recalibrate-bn
# (add_device_target_option); export takes it, unused.
ASCEND = ("device_target Ascend: this toolkit runs on CUDA GPUs and CPUs; pass --device_target GPU, CPU or auto "
          "(the GPU where there is one)")
# train's and eval's, whose configuration files say it too
ASCEND_REFUSAL = ASCEND + ", or set one of them in a configuration file that says Ascend (the seed's do)"
NO_CUDA_REFUSAL = "device_target GPU: no CUDA device is visible; use --device_target CPU"  # one process's or torchrun's


def add_device_target_option(parser: Any, default: Optional[str], help: str) -> None:
    """``--device_target`` of a command outside the configuration (predict, benchmark, recalibrate-bn): auto, CPU
    or GPU; the seed's Ascend refused in train's words (:data:`ASCEND`), another value as argparse
    refuses a choice, exit status 2 both (argparse's ``choices`` would refuse Ascend after its usage block)."""
    import argparse

    class Target(argparse.Action):
        def __call__(self, parser: Any, namespace: Any, values: Any, option_string: Optional[str] = None) -> None:
            if values == "Ascend":
                parser.exit(2, f"{parser.prog}: error: {ASCEND}\n")
            if values not in DEVICE_TARGETS:
                parser.error(f"argument --device_target: invalid choice: {values!r} (choose from "
                             f"{', '.join(map(repr, DEVICE_TARGETS))})")
            setattr(namespace, self.dest, values)

    parser.add_argument("--device_target", action=Target, default=default, metavar="{%s}" % ",".join(DEVICE_TARGETS),
                        help=help)


def add_normalisation_options(parser: Any, what: str) -> None:
    """``--mean`` and ``--std`` of a command that reads a model file (``what``: what they are for), each
    replacing the file's record (:func:`checkpoint.trained_normalisation`)."""
    for key in NORMALISATION_KEYS:
        parser.add_argument(f"--{key}", default=None, metavar="R,G,B",
                            help=f"the per-channel {'mean' if key == 'mean' else 'standard deviation'} {what} "
                                 f"(0-1 scale; one value for all; default: what the file records, else the data "
                                 f"set's constants: a MindSpore .ckpt records none)")


def names_text(names: Sequence[str]) -> str:
    """A list of class names as messages show it: the first five, then "..." where there are more."""
    return ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")


def channels_text(values: Sequence[float]) -> str:
    """Per-channel values as messages show them: "0.5,0.5,0.5"."""
    return ",".join(f"{v:g}" for v in values)


def normalisation_text(norm: Tuple[Sequence[float], Sequence[float]]) -> str:
    """A (mean, std) pair as messages show it: "mean 0.5,0.5,0.5, std 0.25,0.25,0.25"."""
    return f"mean {channels_text(norm[0])}, std {channels_text(norm[1])}"


def coerce(key: str, value: Any, source: str) -> Any:
    """Convert ``value`` to the type of ``Config.<key>``; ``source`` names where it came from."""
    types = _field_types()
    if key not in types:
        raise unknown_key(key, source)
    if key in NORMALISATION_KEYS:
        return channel_values(key, value, source)
    want = types[key]
    if value is None and (want is not str or "" not in CHOICES.get(key, ("",))):
        wanted = f"one of {list(CHOICES[key])}" if key in CHOICES else f"a value ({want.__name__})"
        raise OptionError(f"{source}: {key} is empty (a YAML null: `{key}:` with nothing after it); leave the key out "
                          f"for its default, or give {wanted}")
    try:
        if want is bool:
            if isinstance(value, bool):
                return value
            return _parse_bool(str(value), key)
        if want is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, int):  # a YAML int, exactly: through a float, 99999999999999999999 was 1e20
                return value
            if isinstance(value, str):
                try:  # exactly, however many digits (a float would round 99999999999999999999), with the digit
                    return int(value)  # groups of the seed's argparse int() and YAML 1.1 (1_000_000)
                except ValueError:
                    pass
            number = float(value)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if want is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if value is None:
            return ""
        if isinstance(value, (list, tuple, dict, set)):  # `dataset_path: [a, b]`: not the path "['a', 'b']"
            raise ValueError
        if key == "file_format":  # export takes `onnx` as ONNX: train and eval refused the file it read
            return str(value).upper()
        return str(value)
    except OverflowError:  # a YAML int of over 308 digits for a float key: float() of it raised, a traceback
        raise OptionError(f"{source}: {key} {str(value)[:12]}... ({len(str(value))} digits) is beyond any float"
                          ) from None
    except (TypeError, ValueError):
        # timm's --val-split names a split (validation); this one is a share of the training folder's images
        hint = ("; a share of each class held out to evaluate on (0.1), not a split's name: a dataset_path with "
                "train/ and val/ (or validation/) folders is evaluated on its own" if key == "val_split" and
                isinstance(value, str) else "")
        raise OptionError(f"{source}: {key} must be {want.__name__}, got {value!r}{hint}") from None


# YAML 1.1's tags of plain scalars that are not text: `yes`, `0123` (octal 83), `1.10`, `1:30` (90), dates.
_TYPED_SCALARS = ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                  "tag:yaml.org,2002:timestamp")
_NUMBER_SCALARS = _TYPED_SCALARS[1:3]
# YAML 1.1's numbers that are not the decimal one their digits read as: octal (a leading 0) and base 60 (1:30).
# Hexadecimal (0x10) and binary (0b101) say what they are, and are kept.
_NOT_DECIMAL = re.compile(r"^[-+]?(0[0-7_]+|[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?)$")


class _OnceEach(yaml.SafeLoader):
    """YAML's safe loader, with a key given twice in one mapping an error: the last one silently won. A key
    whose value is text (a path, a name) takes a plain scalar as written: `save_checkpoint_path: 007` was
    the folder 7, `resume: no` the checkpoint False."""

    documents = 0

    def construct_document(self, node):
        self.documents += 1  # the values are the first; a second is help texts, checked to be no values
        if isinstance(node, yaml.MappingNode) and self.documents != 2:  # the help texts' are said as they are
            for key_node, _ in node.value:
                # YAML 1.1 reads a plain `on:`, `yes:`, `no:`, `true:`, `1:`, `~:` or `2026-01-01:` as a bool, a
                # number, a null or a date, not a name: such a key stopped every command with a TypeError.
                if (isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:str"
                        and key_node.tag != "tag:yaml.org,2002:merge"):
                    raise OptionError(f"line {key_node.start_mark.line + 1}: key {key_node.value!r} is not a name "
                                      f"(YAML reads it as {key_node.tag.rsplit(':', 1)[-1]}): a key is a "
                                      f"configuration key's name, such as lr_max")
        return super().construct_document(node)

    def construct_mapping(self, node, deep=False):
        seen: Dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: merged, and overridden, by YAML's rule
                self._merged_as_written(value_node)
                continue
            key = self._as_written(key_node, value_node)
            line = key_node.start_mark.line + 1
            if isinstance(key, str) and key in seen:
                raise OptionError(f"{key} is set twice, on lines {seen[key]} and {line}: keep one")
            if isinstance(key, str):
                seen[key] = line
        return super().construct_mapping(node, deep)

    def _as_written(self, key_node, value_node) -> Any:
        """The key of ``key_node``; its value's plain scalar taken as text where the key's value is text, and a
        number's as the command line reads it where the key's value is a number: YAML 1.1 read `epoch_size: 010`
        as octal 8 and `1:30` as 90, where --epoch_size 010 is 10 and 1:30 refused."""
        key = self.construct_object(key_node, deep=True)
        kind = _field_types().get(key) if isinstance(key, str) else None
        if (self.documents == 1 and isinstance(value_node, yaml.ScalarNode) and value_node.style is None
                and (kind is str and value_node.tag in _TYPED_SCALARS
                     or kind in (int, float) and value_node.tag in _NUMBER_SCALARS
                     and _NOT_DECIMAL.match(value_node.value))):
            value_node.tag = "tag:yaml.org,2002:str"  # coerce reads it as int() and float() read an option's text
        return key

    def _merged_as_written(self, node) -> None:
        """:meth:`_as_written` for the mappings a merge key (``<<: *anchor``, or a list of them) brings in, which
        YAML merges after this loader sees the mapping: `<<: {resume: no}` was the checkpoint False."""
        for mapping in node.value if isinstance(node, yaml.SequenceNode) else [node]:
            if isinstance(mapping, yaml.MappingNode):
                for key_node, value_node in mapping.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        self._merged_as_written(value_node)
                    else:
                        self._as_written(key_node, value_node)


# The keys train's config.yaml holds at the least: it writes every key of its version, 43 in its first (2026-11-28),
# 108 by 2026-12-06; a file written by hand holds a few, and the seed's its own keys beside about 30 of ours.
RUN_CONFIG_KEYS = 40


def is_run_config(values: Dict[str, Any], choices: Dict[str, Any]) -> bool:
    """Whether a config file's ``values`` (and the seed's allowed ``choices``: :func:`read_yaml`) are a run's
    config.yaml, of this version or an earlier one (whose keys are fewer: every key of this version's was asked
    for, and one of a day before was taken for a file written by hand)."""
    return (not choices and not any(k in SEED_IGNORED_KEYS for k in values)
            and len(set(values) & set(_field_types())) >= RUN_CONFIG_KEYS)


def refuse_unknown_keys(values: Dict[str, Any], choices: Dict[str, Any], path: Optional[str]) -> None:
    """A config file's key (of its values, or of the seed's allowed values: :func:`read_yaml`) that is no key of a
    configuration nor one of the seed's ignored ones, refused: it went unused without a word (`file_fromat`)."""
    types = _field_types()
    for key in [*values, *choices]:
        if key not in types and key not in SEED_IGNORED_KEYS:
            raise unknown_key(key, f"config file {path}")


# The most items (list entries, mapping entries and scalars, counted through aliases) one key's value may hold:
# a config value is a scalar or a list of a few; a billion-laughs file (aliases of aliases) made its error message
# repr billions of them (351 MB printed, 1.6 GB, from 369 bytes; 36 s and a MemoryError from 455).
MAX_CONFIG_ITEMS = 10_000


def _too_big(value: Any, limit: int = MAX_CONFIG_ITEMS) -> bool:
    """Whether ``value`` (a loaded YAML value) holds more than ``limit`` items, aliases counted each time they
    are used; stops counting past the limit (linear in ``limit``, whatever the file expands to)."""
    count, stack = 0, [value]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            return True
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set)):
            stack.extend(item)
    return False


def read_yaml(path: str) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """Values and allowed choices of a config file.

    A file is either one YAML mapping, or the seed's three documents: values, help texts, choices.
    """
    try:
        with open(path, "r", encoding="utf-8") as f:
            docs = [d for d in yaml.load_all(f, Loader=_OnceEach)]
    except ConfigError as e:
        raise OptionError(f"config file {path}: {e}") from None
    except FileNotFoundError:  # named by its option, as every path given that is not there
        from .checkpoint import unexpanded_home  # --config_path=~/a.yaml: no shell expands a ~ after `=`

        home = unexpanded_home(path, read=True)
        hint = f" (it {home})" if home else ""
        if path == "-":  # many tools' name for standard input, not this one's: the path that reads it said
            hint = " (standard input is read with --config_path /dev/stdin)"
        raise OptionError(f"--config_path {path}: no such file{hint}") from None
    except IsADirectoryError:  # a run folder given for its config.yaml
        from .runtime import shell_path  # the options suggested are pasted into a shell: "runs/my run" quoted

        run_config = os.path.join(path, "config.yaml")
        hint = (f": --config_path {shell_path(run_config)} is its run's configuration" if os.path.isfile(run_config)
                else "")
        raise OptionError(f"config file {path}: a folder, not a YAML file{hint}") from None
    except RecursionError:  # `lr_max: [[[[...]]]]` a few thousand deep: a traceback
        raise OptionError(f"config file {path}: nested too deep; a key takes a value or a short list") from None
    except OSError as e:
        raise OptionError(f"config file {path}: {e.strerror or e}") from None
    except yaml.YAMLError as e:
        # PyYAML's words for a tab say nothing of tabs to a reader who cannot see one ("found character '\t'
        # that cannot start any token"): the way out said too.
        tab = " (a tab: YAML takes spaces, in indents and after the colon)" if "'\\t'" in str(e) else ""
        raise OptionError(f"config file {path}: not valid YAML{tab}: {e}") from None
    except UnicodeDecodeError as e:
        raise OptionError(f"config file {path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    # Empty documents (comments alone) before the values and after the last are none; one between others keeps
    # their places: a seed file whose help texts were deleted, its `---` lines kept, had its allowed values read
    # as help texts, and was refused for giving them values.
    while docs and docs[-1] is None:
        docs.pop()
    while docs and docs[0] is None:
        docs.pop(0)
    if not docs:  # a file cut to nothing, or not the one meant: run on the defaults instead, without a word
        what = "the file is empty" if not os.path.getsize(path) else "nothing but comments, blank lines or nulls"
        raise OptionError(f"config file {path}: sets no key ({what}); give a YAML file of key: value lines")
    if not all(d is None or isinstance(d, dict) for d in docs):
        raise OptionError(f"config file {path}: each YAML document must be a mapping of key: value")
    docs = [{} if d is None else d for d in docs]
    for d in docs:
        for key, value in d.items():
            if _too_big(value):
                raise OptionError(f"config file {path}: {key} holds over {MAX_CONFIG_ITEMS:,} items (YAML aliases, "
                                  f"*name, repeat what an anchor holds: nested, a few hundred bytes stand for "
                                  f"billions); a key takes a value or a short list")
    values = docs[0]
    helps = docs[1] if len(docs) >= 2 else {}
    given = [k for k, v in helps.items() if not isinstance(v, str)]
    if given and all(isinstance(helps[k], list) for k in given) and len(docs) == 2:
        # The seed's allowed values with its help texts deleted, `---` and all: told to move them to the first
        # document, which would have made them the keys' values.
        raise OptionError(f"config file {path}: its second YAML document (after `---`) gives "
                          f"{', '.join(map(str, given[:4]))} lists, as the seed's allowed values do, but the seed's "
                          f"second document is its help texts (a line of text a key): put an empty document (a `---` "
                          f"line) before the allowed values")
    if given:  # a second document of values (after a `---`) would be read as help texts, and left unused
        raise OptionError(f"config file {path}: its second YAML document (after `---`) is read as the seed's help "
                          f"texts (a line of text a key), and it gives {', '.join(map(str, given[:4]))} a value: put "
                          f"every value in the first document")
    choices = docs[2] if len(docs) >= 3 else {}
    # Values in the third document (read as the allowed values: a list a key) or in a fourth (read as nothing),
    # such as `--- batch_size: 64` added at the end of a seed file, were left unused without a word.
    given = [k for k, v in choices.items() if not isinstance(v, list)]
    if given:
        raise OptionError(f"config file {path}: its third YAML document (after the second `---`) is read as the "
                          f"seed's allowed values (a list a key), and it gives {', '.join(map(str, given[:4]))} a "
                          f"value: put every value in the first document")
    given = [k for d in docs[3:] for k in d]
    if given:
        raise OptionError(f"config file {path}: a YAML document after the seed's three (values, help texts, allowed "
                          f"values) gives {', '.join(map(str, given[:4]))}, which nothing reads: put every value in "
                          f"the first document")
    return values, choices


def _unused_settings(cfg: Config) -> Iterator[Tuple[str, str]]:
    """(key, refusal) for each key that only one setting of another key uses, set while that key is another:
    it would be ignored silently."""
    cifar = cifar_name(cfg.dataset)
    # (keys, whether this configuration uses them, whose they are, why not here)
    blank = "''"  # auto_augment's empty value, as a config file writes it
    owned = (
        (("ra_magnitude",), cfg.auto_augment == "ra", "RandAugment's",
         f"auto_augment {cfg.auto_augment or blank} does not use it (--auto_augment ra)"),
        (("augmix_severity",), cfg.auto_augment == "augmix", "AugMix's",
         f"auto_augment {cfg.auto_augment or blank} does not use it (--auto_augment augmix)"),
        (("color_jitter", "color_jitter_hue"), not cfg.auto_augment, "for runs without an auto-augment policy",
         f"auto_augment {cfg.auto_augment} takes its place (timm turns colour jitter off under one): choose one"),
        (("random_erase_mode",), cfg.random_erase > 0, "random erasing's", "random_erase is 0, so nothing is erased"),
        (("mix_prob",), bool(cfg.mixup_alpha or cfg.cutmix_alpha), "the share of batches mixed by Mixup or CutMix",
         "mixup_alpha and cutmix_alpha are 0, so none is"),
        (("mixup_off_epoch",), bool(cfg.mixup_alpha or cfg.cutmix_alpha), "when Mixup and CutMix stop",
         "mixup_alpha and cutmix_alpha are 0, so none runs"),
        (("lr_decay_rate", "lr_decay_epochs"), cfg.lr_decay_mode == "exponential", "lr_decay_mode exponential's",
         f"lr_decay_mode {cfg.lr_decay_mode} does not use it"),
        (("warmup_prefix",), cfg.lr_decay_mode in ("cosine_annealing", "exponential"),
         "lr_decay_mode cosine_annealing's and exponential's", f"lr_decay_mode {cfg.lr_decay_mode} does not use it"),
        (("opt_eps",), cfg.opt in ("rmsprop", "adamw", "lamb"), "RMSprop's, AdamW's and LAMB's",
         f"opt {cfg.opt} has none" + (" (SGD)" if cfg.opt == "momentum" else "")),
        (("nesterov",), cfg.opt in ("momentum", "lars"), "SGD's and LARS's (opt momentum, lars)",
         f"opt {cfg.opt} has no such variant"),
        (("momentum",), cfg.opt not in ("adamw", "lamb"), "SGD's, RMSprop's and LARS's",
         f"opt {cfg.opt} has none (its betas are 0.9, 0.999)"),
        (("trust_coefficient", "trust_clip"), cfg.opt == "lars", "LARS's (opt lars)",
         f"opt {cfg.opt} has no such setting" + (" (LAMB's ratio is |w| / |update|)" if cfg.opt == "lamb" else "")),
        (("keep_best_max", "patience"), cfg.eval_interval > 0, "a setting of evaluation's (the best evaluated epochs)",
         "eval_interval is 0, so no epoch is evaluated (--eval_interval N)"),
        (("keep_best_max", "save_checkpoint_steps"), cfg.save_checkpoint, "a setting of the checkpoints written",
         "save_checkpoint is False, so none is written"),
        (("patience_min_delta",), cfg.patience > 0, "a setting of early stopping's",
         "patience is 0, so the run never stops early (--patience N)"),
        (("decay_norm_bias",), cfg.weight_decay > 0, "a setting of weight decay's",
         "weight_decay is 0 (--decay_norm_bias False with it)"),
        (("distill_alpha", "distill_temperature"), bool(cfg.teacher), "knowledge distillation's",
         "no teacher is set (--teacher CKPT)"),
        (("crop_pct",), not is_cifar(cfg.dataset), "for image folders' evaluation",
         f"{cifar}'s resizes the whole 32x32 image"),
        (("crop_scale_min", "crop_ratio_min", "crop_ratio_max"), not is_cifar(cfg.dataset),
         "for image folders' training crops",
         f"{cifar}'s is the seed's 32x32 crop of the image padded by 4 pixels"),
        (("exif_orientation",), not is_cifar(cfg.dataset), "for image folders' photos",
         f"{cifar}'s binary files hold pixels, with no EXIF tags"),
        (("data_pipeline",), not is_cifar(cfg.dataset), "for image folders' decoding",
         f"{cifar}'s records are pixels, which with CUDA live on the GPU whole and are augmented there"),
        (("compile_mode",), cfg.compile, "torch.compile's", "compile is False (--compile True)"),
        (("image_size_ramp",), cfg.image_size_start > 0, "progressive resizing's",
         "image_size_start is 0, so every epoch trains at image_size (--image_size_start N)"),
        (("bce_target_thresh",), cfg.bce_loss, "binary cross entropy's", "bce_loss is False (--bce_loss True)"),
        (("antialias", "interpolation"), not is_cifar(cfg.dataset), "for image folders' resizes",
         f"{cifar}'s enlarges its 32x32 images bilinearly, as the seed does (antialiasing changes nothing there)"),
        (("lr_base_scale",), cfg.lr_base_size > 0, "how the rates follow the global batch",
         "lr_base_size is 0, so they are used as given (--lr_base_size N: the batch they are meant for)"),
        (("qat_reduce_range", "qat_range_epochs"), cfg.qat, "quantization-aware training's", "qat is False (--qat True)"),
        (("label_smooth_factor",), cfg.use_label_smooth, "label smoothing's",
         "use_label_smooth is False (--use_label_smooth True)"),
        (("loss_scale",), cfg.precision == "fp16", "fp16's dynamic loss scaling's first scale",
         f"precision {cfg.precision} scales no loss (bf16 and fp32 need none)"),
        (("bn_momentum",), not cfg.qat and cfg.freeze_layers < LAYERS, "how BatchNorm's running statistics update",
         "qat is True, which folds BatchNorm at statistics that no longer update" if cfg.qat else
         f"freeze_layers {LAYERS} freezes every BatchNorm layer, whose statistics no longer update"),
    )
    for keys, used, whose, why in owned:
        for key in keys:
            if not used and getattr(cfg, key) != getattr(Config, key):
                value = getattr(cfg, key)
                shown = value if isinstance(value, (str, bool)) else format(value, "g")
                yield key, f"{key} {shown} is {whose}; {why}"


def _validate(cfg: Config, extra_choices: Dict[str, Any], origin: Callable[[str], str], choices_from: str = "",
              reads: Optional[Collection[str]] = None) -> None:
    """Refuse values no run can use; each message names where the value came from (``origin(key)``:
    the option, the config file or the default), and ``choices_from`` (the config file) where ``extra_choices``
    (its allowed values) refuse it. ``reads``: the keys a command that does not train reads (eval, data-stats);
    a combination of training's keys it leaves unread is training's to refuse."""
    def fail(key: str, what: str) -> None:
        raise OptionError(long_numbers_cut(f"{origin(key)}: {what}"))

    def fail_read(key: str, what: str) -> None:
        # A file shared with training (`qat: True`, `opt_eps` for an --opt adamw typed to train) stopped eval and
        # data-stats, which read neither, with train's advice (`give --pre_trained CKPT`).
        if reads is None or key in reads:
            fail(key, what)

    for key, allowed, listed_by in ([(k, v, "") for k, v in CHOICES.items()]
                                    + [(k, v, choices_from) for k, v in extra_choices.items()]):
        if not hasattr(cfg, key) or not isinstance(allowed, (list, tuple)):
            continue
        value = getattr(cfg, key)
        if value not in allowed and value not in CHOICE_EXTENSIONS.get(key, ()):
            timm = key == "auto_augment" and isinstance(value, str) and value.lower().startswith("rand")
            hint = OPT_NAMES_ELSEWHERE.get(value.lower()) if key == "opt" and isinstance(value, str) else None
            taken = list(allowed) + [v for v in CHOICE_EXTENSIONS.get(key, ()) if v not in allowed]
            fail(key, f"{key}={value!r} is not one of {taken}" + (f" (the allowed values of {listed_by})"
                                                                    if listed_by else "")
                 + (f"; {RAND_AUGMENT_NOTE}" if timm else "") + (f"; {hint}" if hint else ""))
    for f in fields(Config):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and not math.isfinite(value):
            fail(f.name, f"{f.name} must be a finite number, got {value}")
    positive = ("batch_size", "epoch_size", "save_checkpoint_epochs", "keep_checkpoint_max",
                "image_size", "device_num", "grad_accum_steps", "aug_repeats")
    for key in positive:
        if getattr(cfg, key) < 1:
            fail(key, f"{key} must be at least 1, got {getattr(cfg, key)}")
    if not cfg.save_checkpoint_path.strip():
        fail("save_checkpoint_path", "save_checkpoint_path is empty (the run folder; the seed's default is ./)")
    if cfg.class_num < 2:
        fail("class_num", f"class_num must be at least 2 (a classifier tells classes apart), got {cfg.class_num}")
    if cfg.class_num > MAX_CLASS_NUM:
        fail("class_num", f"class_num {cfg.class_num} is above {MAX_CLASS_NUM:,}: no labelled data set has as many "
                          f"classes, and the classifier alone would hold billions of weights")
    for key in ("image_size", "eval_image_size"):
        if getattr(cfg, key) > MAX_IMAGE_SIZE:
            fail(key, f"{key} {getattr(cfg, key)} is above {MAX_IMAGE_SIZE} pixels a side: no device holds one "
                      f"image's activations at that size")
    for key in ("log_interval", "eval_interval", "patience", "keep_best_max"):
        if getattr(cfg, key) < 0:
            fail(key, f"{key} must be >= 0 (0: off), got {getattr(cfg, key)}")
    if not 0 <= cfg.patience_min_delta < 1:
        fail("patience_min_delta", f"patience_min_delta must be in [0, 1) (a share of the images, as top-1), got "
                                   f"{cfg.patience_min_delta}")
    if cfg.image_size_start and not SIZE_STEP <= cfg.image_size_start < cfg.image_size:
        # eval --image_size 128 with the config file of a run that ramps from 160 to 224: eval reads no
        # image_size_start, and its --image_size is the size it evaluates at, not the one training ramps to
        refuse = fail if cfg.image_size_start < SIZE_STEP else fail_read
        refuse("image_size_start", f"image_size_start must be 0 (off) or from {SIZE_STEP} up to below image_size "
                                   f"{cfg.image_size}, got {cfg.image_size_start}")
    if not 0 < cfg.image_size_ramp <= 1:
        fail("image_size_ramp", f"image_size_ramp must be in (0, 1] (a share of the epochs), got {cfg.image_size_ramp}")
    elif cfg.image_size_start and ramp_length(cfg.image_size_ramp, cfg.epoch_size) <= 1:
        ramp = ramp_length(cfg.image_size_ramp, cfg.epoch_size)
        fail("image_size_ramp", f"image_size_ramp {cfg.image_size_ramp:g} of epoch_size {cfg.epoch_size} is {ramp:g} "
                                f"epoch(s): every epoch would train at image_size; more than one epoch is needed for "
                                f"image_size_start to be used")
    if cfg.image_size_start and cfg.qat:
        fail("image_size_start", "quantization-aware training fine-tunes at image_size, its BatchNorm statistics "
                                 "frozen at the float run's: progressive resizing is for training from the start")
    if cfg.eval_image_size < 0:
        fail("eval_image_size", f"eval_image_size must be >= 0 (0: image_size), got {cfg.eval_image_size}")
    if cfg.eval_batch_size < 0:
        fail("eval_batch_size", f"eval_batch_size must be >= 0 (0: batch_size), got {cfg.eval_batch_size}")
    if not 0 < cfg.width_mult <= MAX_WIDTH_MULT:
        fail("width_mult", f"width_mult must be in (0, {MAX_WIDTH_MULT:g}] (the paper's alpha: 0.25 to 1), got "
                           f"{cfg.width_mult:g}")
    if not 0 < cfg.loss_scale <= MAX_LOSS_SCALE:
        fail("loss_scale", f"loss_scale must be positive, got {cfg.loss_scale}" if cfg.loss_scale <= 0 else
             f"loss_scale {cfg.loss_scale:g} is above float32's largest number, {MAX_LOSS_SCALE:g}: the scaler "
             f"would hold it as inf (the seed's is 1024)")
    if not 0 <= cfg.pretrain_epoch_size < cfg.epoch_size:
        fail("pretrain_epoch_size", f"pretrain_epoch_size must be in [0, epoch_size), got "
                                    f"{cfg.pretrain_epoch_size} with epoch_size {cfg.epoch_size}")
    if cfg.warmup_epochs < 0:
        fail("warmup_epochs", f"warmup_epochs must be >= 0, got {cfg.warmup_epochs}")
    if cfg.save_checkpoint_steps < 0:
        fail("save_checkpoint_steps", f"save_checkpoint_steps must be >= 0, got {cfg.save_checkpoint_steps}")
    if num_workers_problem(cfg.num_workers):
        fail("num_workers", num_workers_problem(cfg.num_workers))
    for key in ("batch_size", "eval_batch_size"):
        if getattr(cfg, key) > MAX_BATCH_SIZE:
            fail(key, f"{key} {getattr(cfg, key)} is above {MAX_BATCH_SIZE:,} images a batch")
    for key, kind in _field_types().items():
        if kind is int and key != "seed" and getattr(cfg, key) > MAX_WHOLE_NUMBER:
            fail(key, f"{key} {getattr(cfg, key)} is above {MAX_WHOLE_NUMBER:,} (2**31 - 1)")
    if max_bad_samples_problem(cfg.max_bad_samples):
        fail("max_bad_samples", max_bad_samples_problem(cfg.max_bad_samples))
    if cfg.max_nonfinite_steps < 1:
        fail("max_nonfinite_steps", f"max_nonfinite_steps must be at least 1, got {cfg.max_nonfinite_steps}")
    if not 0 <= cfg.ema_decay < 1:
        fail("ema_decay", f"ema_decay must be in [0, 1) (0: no weight average), got {cfg.ema_decay}")
    for key in ("mixup_alpha", "cutmix_alpha", "clip_grad_norm", "opt_eps", "weight_decay", "momentum"):
        if getattr(cfg, key) < 0:
            zero = "the recipe's eps" if key == "opt_eps" else "off"
            fail(key, f"{key} must be >= 0 (0: {zero}), got {getattr(cfg, key)}")
    if cfg.momentum >= 1:  # the update is the gradient plus momentum x the last one: at 1 or more it never fades
        fail("momentum", f"momentum must be below 1 (the share of the last update each step keeps; at 1 or more the "
                         f"updates grow without end; the seed's 0.9), got {cfg.momentum:g}")
    for key in ("lr_init", "lr_max", "lr_end"):
        if getattr(cfg, key) < 0:  # a negative rate climbs the loss
            fail(key, f"{key} must be >= 0, got {getattr(cfg, key)}")
    if not 0 <= cfg.ra_magnitude <= 30:
        fail("ra_magnitude", f"ra_magnitude must be in [0, 30] (a bin of 31), got {cfg.ra_magnitude}")
    for key in ("mix_prob", "random_erase", "vflip"):
        if not 0 <= getattr(cfg, key) <= 1:
            fail(key, f"{key} must be in [0, 1], got {getattr(cfg, key)}")
    # (without either alpha, mix_prob 0 is refused as a key nothing uses). Not with --resume: a run started before
    # the refusal, its config.yaml so, must resume as it was; train refuses it where nothing is resumed.
    if mix_prob_problem(cfg) and not cfg.resume:
        fail_read("mix_prob", mix_prob_problem(cfg))
    if cfg.mixup_off_epoch < 0:
        fail("mixup_off_epoch", f"mixup_off_epoch must be >= 0 (0: mixing never stops), got {cfg.mixup_off_epoch}")
    if cfg.mixup_off_epoch >= cfg.epoch_size > 0 and (cfg.mixup_alpha or cfg.cutmix_alpha):
        fail("mixup_off_epoch", f"mixup_off_epoch {cfg.mixup_off_epoch} is not below epoch_size {cfg.epoch_size}: "
                                f"mixing would never stop")
    if not 0 <= cfg.freeze_layers <= LAYERS:
        fail("freeze_layers", f"freeze_layers must be in [0, {LAYERS}] (layers of the network, from the input; "
                              f"{LAYERS}: all but the classifier), got {cfg.freeze_layers}")
    if not 0 < cfg.distill_alpha <= 1:
        fail("distill_alpha", f"distill_alpha must be in (0, 1] (the teacher's share of the loss), got {cfg.distill_alpha}")
    if temperature_problem(cfg.distill_temperature):
        fail("distill_temperature", temperature_problem(cfg.distill_temperature))
    if not 0 <= cfg.drop_rate < 1:
        fail("drop_rate", f"drop_rate must be in [0, 1) (the share of features dropped; 0: none), got {cfg.drop_rate}")
    if not 0 < cfg.bn_momentum <= 1:
        fail("bn_momentum", f"bn_momentum must be in (0, 1], the share of each batch's statistics taken in "
                            f"(PyTorch's convention), got {cfg.bn_momentum:g}")
    if not 0 <= cfg.class_balance <= 1:
        fail("class_balance", f"class_balance must be in [0, 1] (0: the classes as the data set holds them, 1: "
                              f"alike), got {cfg.class_balance}")
    if not 0 <= cfg.color_jitter <= 10:  # autoaugment.MAX_JITTER
        fail("color_jitter", f"color_jitter must be in [0, 10] (the factors' spread about 1; timm's 0.4), got "
                             f"{cfg.color_jitter}")
    if not 0 <= cfg.color_jitter_hue <= 0.5:
        fail("color_jitter_hue", f"color_jitter_hue must be in [0, 0.5] (a share of the hue circle; 0: off), got "
                                 f"{cfg.color_jitter_hue}")
    if not 1 <= cfg.augmix_severity <= 10:
        fail("augmix_severity", f"augmix_severity must be in [1, 10], got {cfg.augmix_severity}")
    if crop_pct_problem(cfg.crop_pct):
        fail("crop_pct", crop_pct_problem(cfg.crop_pct))
    if not 0 < cfg.crop_ratio_min <= cfg.crop_ratio_max:
        fail("crop_ratio_min" if cfg.crop_ratio_min <= 0 else "crop_ratio_max",
             f"crop_ratio_min and crop_ratio_max must satisfy 0 < crop_ratio_min <= crop_ratio_max (the training "
             f"crops' aspect ratios, width / height), got {cfg.crop_ratio_min:g} and {cfg.crop_ratio_max:g}")
    if not 0 < cfg.crop_scale_min <= 1:
        fail("crop_scale_min", f"crop_scale_min must be in (0, 1] (the smallest training crop's share of the "
                               f"image's area; 1: the whole image), got {cfg.crop_scale_min}")
    if not 0 < cfg.lr_decay_rate <= 1:
        fail("lr_decay_rate", f"lr_decay_rate must be in (0, 1], got {cfg.lr_decay_rate}")
    if cfg.trust_coefficient <= 0:
        fail("trust_coefficient", f"trust_coefficient must be above 0, got {cfg.trust_coefficient}")
    if cfg.nesterov and cfg.opt in ("momentum", "lars") and cfg.momentum <= 0:
        fail("nesterov", f"nesterov needs a momentum above 0, got momentum {cfg.momentum:g}")
    if cfg.lr_base_size < 0:
        fail("lr_base_size", f"lr_base_size must be >= 0 (0: the rates as given), got {cfg.lr_base_size}")
    if cfg.lr_decay_epochs <= 0:
        fail("lr_decay_epochs", f"lr_decay_epochs must be positive, got {cfg.lr_decay_epochs}")
    if not 0 <= cfg.val_split < 1:
        fail("val_split", f"val_split must be in [0, 1) (0: none), got {cfg.val_split}")
    cifar = cifar_name(cfg.dataset)
    if cfg.val_split and is_cifar(cfg.dataset):
        fail("val_split", f"val_split {cfg.val_split:g} holds out images of an image folder (dataset "
                          f"imagenet2012); {cifar} evaluates on its "
                          f"{'test.bin' if cfg.dataset == 'cifar100' else 'test_batch.bin'} (the Python version's "
                          f"{'test' if cfg.dataset == 'cifar100' else 'test_batch'})")
    if cfg.eval_labels:
        if is_cifar(cfg.dataset):
            fail("eval_labels", f"eval_labels labels an image folder's evaluation images (dataset imagenet2012); "
                                f"{cifar}'s labels are in its data files")
        elif cfg.val_split:
            fail("eval_labels", f"eval_labels labels an evaluation split of its own; val_split {cfg.val_split:g} "
                                f"evaluates on images held out of training, labelled by their class folders: "
                                f"give one of them")
        elif not os.path.isfile(cfg.eval_labels):
            # Named once, as every path given that is not there (checkpoint.check_given): "--eval_labels F: no
            # such file", not "option --eval_labels: eval_labels F"; a config file's, "config file C: eval_labels F".
            where = origin("eval_labels")
            if where.startswith("config file "):  # by its origin, not its end: a file may be named "eval_labels"
                where += ": eval_labels"
            else:  # the option's, or a Python Config's (validate)
                where = where.replace("option ", "", 1)
            from .checkpoint import not_a_file, unexpanded_home  # --eval_labels=~/val.txt: no shell expands a ~

            home = unexpanded_home(cfg.eval_labels, read=True)
            why = not_a_file(cfg.eval_labels)
            # A pipe (<(zcat val.txt.gz), /dev/stdin) was "no such file"; it is not read, as predict's and eval's
            # images are not: each evaluation's listing, and each process of a torchrun job, reads the file anew.
            if why.endswith("not a regular file"):
                why += ": save its lines to a file and give that"
            raise OptionError(f"{where} {cfg.eval_labels}: {why}" + (f" (it {home})" if home else ""))
    if cfg.qat_range_epochs < 0:
        fail("qat_range_epochs", f"qat_range_epochs must be >= 0 (0: the ranges follow every epoch), got "
                                 f"{cfg.qat_range_epochs}")
    if not 0 <= cfg.seed <= MAX_SEED:
        fail("seed", f"{SEED_RULE}, got {cfg.seed}")
    if cfg.qat:
        if not cfg.pre_trained and not cfg.resume:
            fail_read("qat", "qat fine-tunes a trained model for INT8, with BatchNorm frozen at its statistics: "
                             "give --pre_trained CKPT (a float run's checkpoint), or --resume to continue such a run")
        # Each of these would run something the INT8 file does not compute, or is not built for it yet.
        for key, on, why in (
                ("precision", cfg.precision in ("bf16", "fp16"),
                 "the simulated INT8 arithmetic runs in float32 (precision auto or fp32)"),
                ("compile", cfg.compile, "the quantization-aware forward pass is not compiled yet"),
                ("ema_decay", cfg.ema_decay > 0, "an average of weights would not be the weights whose rounding "
                                                 "was learned; average the float run before (mobilenet-v1 average)")):
            # Training's combinations: eval's --precision bf16 or --compile True beside a shared file's `qat: true`,
            # which eval does not read (it evaluates the model file as it is), is eval's to take.
            if on and (reads is None or "qat" in reads):
                fail(key, f"{key} {getattr(cfg, key)} with qat: {why}")
    if not 0 <= cfg.bce_target_thresh < 1:
        fail("bce_target_thresh", f"bce_target_thresh must be in [0, 1) (0: off), got {cfg.bce_target_thresh}")
    if not 0 <= cfg.label_smooth_factor < 1:
        fail("label_smooth_factor", f"label_smooth_factor must be in [0, 1), got {cfg.label_smooth_factor}")
    if cfg.bce_loss and cfg.use_label_smooth and cfg.class_num >= 2:
        problem = bce_threshold_problem(cfg.bce_target_thresh, cfg.label_smooth_factor, cfg.class_num)
        if problem:
            fail_read("bce_target_thresh", problem)
    # After the keys' own ranges (color_jitter 1e39 is told its [0, 10]): the rest computed in float32.
    for f in fields(Config):
        value = getattr(cfg, f.name)
        if isinstance(value, float) and abs(value) > MAX_FLOAT32:  # weight_decay 1e39: a traceback in the step
            fail(f.name, f"{f.name} {value:g} is above float32's largest number, {MAX_FLOAT32:g}, in which the run "
                         f"computes")
    for key, what in _unused_settings(cfg):
        fail_read(key, what)


def _config_file_hint(arg: str) -> str:
    """Where an argument given without an option is a configuration file, or a run folder that holds one (timm's
    and other tools' positional config; `lr-schedule runs/a`): the --config_path that reads it; else ""."""
    from .runtime import shell_path  # the options suggested are pasted into a shell: "runs/my run" quoted

    run_config = os.path.join(arg, "config.yaml")  # checkpoint.RUN_CONFIG, what a run writes into its folder
    if os.path.isdir(arg) and os.path.isfile(run_config):
        # train --resume FOLDER alone takes none of the run's configuration (nor its folder: it saves into ./)
        config, folder = shell_path(run_config), shell_path(arg)
        return (f" (a run folder: --config_path {config} reads its configuration, eval --checkpoint_path {folder} "
                f"its newest checkpoint, train --config_path {config} --resume auto continues it)")
    if arg.lower().endswith((".yaml", ".yml")) and os.path.isfile(arg):
        return f" (a configuration file is read with --config_path {shell_path(arg)})"
    return ""


def parse_overrides(argv: Sequence[str], own: Sequence[str] = ()) -> List[Tuple[str, str]]:
    """``--key=value`` and ``--key value`` pairs, in order. Anything else is an error. ``argv`` is a list of
    strings, as the command line's (a str was read a character at a time, a number raised an AttributeError).
    ``own``: the command's other options, taken out of ``argv`` already, for an unknown key's "did you mean"."""
    pairs, i = [], 0
    if isinstance(argv, (str, bytes)):
        raise TypeError(f"the options are a list of strings, as on the command line (['--config_path', 'f.yaml', "
                        f"'--epoch_size=3']), got a {type(argv).__name__}: {argv!r}")
    argv = list(argv)
    odd = [f"{a!r} ({type(a).__name__})" for a in argv if not isinstance(a, str)]
    if odd:
        raise TypeError(f"the options are strings, as on the command line ('--width_mult', '0.25'), got "
                        f"{', '.join(odd)}")
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--") or len(arg) == 2:
            last = pairs[-1][0] if pairs and not argv[i - 1].startswith("--") else ""
            if last and last not in _field_types() and last not in SEED_IGNORED_KEYS and last != "config_path":
                raise unknown_key(last, f"option {argv[i - 2]}", own)  # timm's --input_size 3 224 224: the key first
            several = (pairs and pairs[-1][0] in NORMALISATION_KEYS and i >= 1 and not argv[i - 1].startswith("--")
                       and all(NUMBER.fullmatch(v) for v in (arg, pairs[-1][1])))
            short = SHORT_OPTION_NAMES.get(arg)
            raise OptionError(f"unexpected argument {arg!r}: options are --key=value or --key value"
                              + (f" (several values in one: --{pairs[-1][0]} {pairs[-1][1]},{arg},...)"
                                 if several else f" (timm's and torchvision's {arg}: here it is --{short})"
                                 if short else _config_file_hint(arg)))
        body = arg[2:]
        if "=" in body:
            key, value = body.split("=", 1)
        else:
            if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
                key = body.replace("-", "_")
                if key not in _field_types() and key not in SEED_IGNORED_KEYS and key != "config_path":
                    raise unknown_key(key, f"option --{body}", own)  # not a key that wants a value
                flag = _field_types().get(key) is bool  # timm's --bce-loss, --channels-last: flags without one
                raise OptionError(f"option --{body} needs a value" + (f": --{key} True" if flag else ""))
            key, value = body, argv[i + 1]
            i += 1
        pairs.append((key.replace("-", "_"), value))
        i += 1
    return pairs


def load_config(argv: Sequence[str] = (), config_path: Optional[str] = None) -> Config:
    """Resolve the configuration: defaults -> dataset preset -> YAML file -> command line."""
    return load_config_and_given(argv, config_path)[0]


class Given(set):
    """The keys a user set (a set), and where each came from: ``origin[key]``, ``option --key`` or
    ``config file F``."""

    def __init__(self, origin: Dict[str, str]):
        super().__init__(origin)
        self.origin = dict(origin)

    def discard(self, key: str) -> None:
        super().discard(key)
        self.origin.pop(key, None)

    def __reduce__(self):  # copies and pickles keep the origins
        return Given, (self.origin,)


def set_in_config_file(given: Any, key: str) -> str:
    """``config file F`` where ``given`` (:class:`Given`) says a config file F set ``key``; else "" (an option set
    it, it is at its default, or ``given`` is a plain set or None, as a Python caller passes)."""
    origin = getattr(given, "origin", {}).get(key, "")
    return origin if origin.startswith("config file") else ""


def config_paths_problem(paths: Sequence[str]) -> str:
    """The refusal of --config_path given more than once (train's, eval's and export's): the last alone was read,
    the others dropped without a word (other tools layer them)."""
    return (f"option --config_path is given {len(paths)} times ({', '.join(paths)}): one file is read; put the keys "
            f"in one, or give some of them as options")


def load_config_and_given(argv: Sequence[str] = (), config_path: Optional[str] = None,
                          dataset_of: Optional[Callable[[Dict[str, Any]], Optional[str]]] = None,
                          unused: Sequence[str] = (), reads: Optional[Collection[str]] = None,
                          own: Sequence[str] = ()) -> Tuple[Config, Set[str]]:
    """:func:`load_config`, and the keys the user set (on the command line or in the config file),
    as opposed to those left at their defaults. Where neither names the data set, ``dataset_of(values)``
    (the values given) may, in place of the default (a command that reads a model file: the one the file
    records), so that the data set's presets and checks apply; it is still not among the keys set.
    ``unused``: keys the command takes and does not use (train: :data:`EXPORT_KEYS`); given on the command line,
    they join the line naming the seed's keys with no meaning here (a config file holds them without a word).
    ``own``: the command's options that are not keys (lr-schedule's ``--steps_per_epoch``, ``--out``), taken out of
    ``argv`` already: an unknown key that reads as one misspelt is refused with "did you mean" it."""
    overrides = parse_overrides(argv, own)
    paths = [value for key, value in overrides if key == "config_path"]
    for value in paths:
        if not value.strip():  # `--config_path=$CONFIG` with CONFIG unset: not the defaults without a word
            raise OptionError("option --config_path is empty: give a YAML file")
        config_path = value
    if len(paths) > 1:
        raise OptionError(config_paths_problem(paths))
    overrides = [(k, v) for k, v in overrides if k != "config_path"]
    file_values, file_choices = read_yaml(config_path) if config_path else ({}, {})
    types = _field_types()
    refuse_unknown_keys(file_values, file_choices, config_path)
    ignored = {k: v for k, v in file_values.items() if k not in types}
    typed = {k: v for k, v in overrides if k in SEED_IGNORED_KEYS and k not in types}
    for key in typed:
        if key in TYPED_PATH_KEYS:
            # Typed, it is a path the user means to be read or written (torchvision's --data-path); ignored, as a
            # seed file's, it left the run reading the configuration's data (or writing into ./) after one note.
            raise OptionError(f"option --{key}: the seed's ModelArts key, not used here: {TYPED_PATH_KEYS[key]}")
    from .runtime import is_rank0, launcher_number

    if str(typed.get("device_id", "0")).strip() not in ("", "0") and is_rank0():
        # The seed's --device_id chose the card; here the process takes the first visible one, which may be
        # another job's.
        if launcher_number("WORLD_SIZE") > 1:  # torchrun: each process takes GPU LOCAL_RANK
            print(f"note: --device_id {typed['device_id']} does not choose the GPUs here: each process takes the "
                  f"visible one of its LOCAL_RANK, and CUDA_VISIBLE_DEVICES before torchrun chooses which are visible",
                  file=sys.stderr, flush=True)
        else:
            print(f"note: --device_id {typed['device_id']} does not choose the GPU here (the first visible one is "
                  f"used): CUDA_VISIBLE_DEVICES={typed['device_id']} before the command does", file=sys.stderr,
                  flush=True)
    ignored.update(typed)
    check_ignored(ignored, file_choices, config_path, [k for k, _ in overrides if k in unused], typed)
    file_values = {k: v for k, v in file_values.items() if k not in ignored}
    overrides = [(k, v) for k, v in overrides if k not in ignored]

    dataset = file_values.get("dataset")
    for key, value in overrides:
        if key == "dataset":
            dataset = value
    if dataset is None:
        dataset = (dataset_of({**file_values, **dict(overrides)}) if dataset_of else None) or "cifar10"
    if dataset not in DATASETS:
        where = "option --dataset" if any(key == "dataset" for key, _ in overrides) else f"config file {config_path}"
        raise OptionError(f"{where}: dataset={dataset!r} is not one of {list(DATASETS)}")

    values: Dict[str, Any] = {**DATASET_PRESETS[dataset], "dataset": dataset}
    for key, value in file_values.items():
        values[key] = coerce(key, value, f"config file {config_path}")
    for key, value in overrides:
        if key not in types:  # lr-schedule --setps_per_epoch: "unknown key" alone
            raise unknown_key(key, f"option --{key}", own)
        values[key] = coerce(key, value, f"option --{key}")
    # The data set's own constants given as values are the default: "" (one spelling for one normalisation).
    for key, own in zip(NORMALISATION_KEYS, normalisation(dataset)):
        if values.get(key) and normalisation(dataset, **{key: values[key]})[key == "std"] == own:
            values[key] = ""
    cfg = Config(**values)
    given = {key: f"option --{key}" for key, _ in overrides}

    def origin(key: str) -> str:  # where a value came from, for its error message
        if key in given:
            return given[key]
        if key in file_values:
            return f"config file {config_path}"
        return f"the default of {key}"

    _validate(cfg, file_choices, origin, f"config file {config_path}", reads)
    if is_cifar(cfg.dataset) and cfg.num_workers > 0 and is_rank0():  # taken without a word (helper-386)
        print(f"note: {origin('num_workers')}: num_workers {cfg.num_workers} starts no loader processes for "
              f"{cifar_name(cfg.dataset)}, held whole in memory and cropped in batches; it is image folders' key",
              file=sys.stderr, flush=True)
    return cfg, Given({**{key: f"config file {config_path}" for key in file_values}, **given})


def validate(cfg: Config, reads: Optional[Collection[str]] = None) -> None:
    """The checks :func:`load_config` makes, for a :class:`Config` built or changed in Python (``train.run`` and
    ``evaluate.run`` make them): each value of its key's type (an int where a float is: as the command line
    takes it), ``mean`` and ``std`` as the command line reads them, then the ranges and combinations; an
    :class:`OptionError` naming ``Config.key`` otherwise."""
    if not isinstance(cfg, Config):
        raise OptionError(f"a Config is needed (mobilenet_v1.config.load_config builds one), got {type(cfg).__name__}")
    for key, kind in _field_types().items():
        value = getattr(cfg, key)
        fits = isinstance(value, kind) and (kind is bool or not isinstance(value, bool))
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            fits = True
        if not fits:
            raise OptionError(f"Config.{key}: {key} must be {'an' if kind is int else 'a'} {kind.__name__}, got "
                              f"{value!r} ({type(value).__name__})")
    # The command line's mean and std are read by coerce (channel_values), which a Python value skipped: a mean of
    # "2,2,2" or a std of "0,0,0" got through, to fail deep in the run under the key's bare name.
    for key in NORMALISATION_KEYS:
        channel_values(key, getattr(cfg, key), f"Config.{key}")
    _validate(cfg, {}, lambda key: f"Config.{key}", reads=reads)


def check_ignored(ignored: Dict[str, Any], file_choices: Dict[str, Any], config_path: Optional[str],
                  also: Sequence[str] = (), typed: Collection[str] = ()) -> None:
    """Seed keys with no meaning here still obey the file's choices; then they are named in one line, with
    ``also`` (keys of the configuration that the command leaves unused, given on its command line). ``typed``:
    those given as options, whose refusal names the option (it named the file, which set another value)."""
    for key, value in ignored.items():
        allowed = file_choices.get(key)
        if isinstance(allowed, (list, tuple)) and str(value) not in [str(a) for a in allowed]:
            if key in typed:
                raise OptionError(f"option --{key}: {key}={value!r} is not one of {list(allowed)} (the allowed "
                                  f"values of config file {config_path})")
            raise OptionError(f"config file {config_path}: {key}={value!r} is not one of {list(allowed)}")
    say_ignored(list(dict.fromkeys([*ignored, *also])))


def say_ignored(keys: Sequence[str]) -> None:
    """The one line naming seed keys given that mean nothing here (rank 0 alone; none for no keys)."""
    from .runtime import is_rank0

    if keys and is_rank0():
        # stderr: lr-schedule writes its table to stdout.
        print(f"ignored seed keys with no meaning here: {', '.join(keys)}", file=sys.stderr, flush=True)


def to_dict(cfg: Config) -> Dict[str, Any]:
    """The keys and values, each of its key's own type: a subclass a Python caller set that :func:`validate`
    takes (NumPy's float64 is a float, its str_ a str) made the plain one, as config.yaml (YAML's safe dumper
    stopped the run with a traceback at its first line) and a checkpoint (read back with weights_only) record
    them."""
    types = _field_types()
    return {key: types[key](value) if type(value) is not types[key] and isinstance(value, types[key]) else value
            for key, value in dataclasses.asdict(cfg).items()}


def dump_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
