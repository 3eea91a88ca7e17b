"""`speechcmd train` with the room-robust augmentation (`speechcmd.train.config.ROOM`), until the
train command has an option for it: the same arguments, the same run folder and checkpoints; the
checkpoint's `train_config` records every augmentation setting used.

    python scripts/train_room.py --data runs/room-data/merged --validation-fraction 0.08 ... --out runs/room
"""

from __future__ import annotations

import sys
from dataclasses import replace

from speechcmd.app import cli_train
from speechcmd.app.cli import main
from speechcmd.train.config import ROOM

_plain_configs = cli_train.configs_from_args


def configs_with_room(args, root, device):
    dataset, config, model_config = _plain_configs(args, root, device)
    return dataset, replace(config, augment=replace(config.augment, **ROOM)), model_config


if __name__ == "__main__":
    cli_train.configs_from_args = configs_with_room
    sys.exit(main(["train", *sys.argv[1:]]))
