"""Run by tests/test_distributed.py under torchrun (not collected by pytest): ``mobilenet-v1 eval`` with the
confusion matrix counted sparse (:data:`engine.DENSE_CONFUSION_CLASSES` lowered below the model's outputs),
as a model of more than 4,096 classes counts it. argv: the options of ``mobilenet-v1 eval``."""
import sys

from mobilenet_v1 import cli, engine

if __name__ == "__main__":
    engine.DENSE_CONFUSION_CLASSES = 2
    sys.exit(cli.main(["eval", *sys.argv[1:]]))
