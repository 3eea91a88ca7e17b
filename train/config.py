"""Training settings, with no heavy imports: the command line takes its defaults from here."""

from __future__ import annotations

from dataclasses import dataclass, field

from speechcmd.model.config import check_range, known_settings

OPTIMIZERS = ("adam", "adamw", "rmsprop")
SCHEDULES = ("cosine", "step", "constant")


@dataclass(frozen=True)
class AugmentConfig:
    time_shift_ms: float = 100.0  # uniform shift in +-this, zero-filled (0 = off)
    noise_probability: float = 0.8  # share of clips mixed with background noise (0 = off)
    noise_max_volume: float = 0.1  # noise gain drawn uniformly from [0, this]
    silence_noise_max_volume: float = 1.0  # silence examples get louder noise, as in TF's recipe
    time_masks: int = 2  # SpecAugment masks over frames (0 = off)
    time_mask_frames: int = 10
    freq_masks: int = 2  # SpecAugment masks over coefficients (0 = off)
    freq_mask_bins: int = 5
    volume_range: float = 0.0  # gain drawn from [1 - r, 1 + r] (0 = off)
    speed_range: float = 0.0  # one speed factor per batch from [1 - r, 1 + r] (0 = off)
    # A room (train/augment.py `hear_a_room`, on when snr_db_min is set: see ROOM below): levels in
    # dB, dBFS of mean power (train/noise.py). Words get background noise at an SNR relative to the
    # word, uniform in [snr_db_min, snr_db_max]; None: the fixed-gain mixing above.
    snr_db_min: float | None = None
    snr_db_max: float = 30.0
    gain_probability: float = 0.5  # share of clips played back louder or quieter, uniform in dB:
    gain_db_min: float = -40.0
    gain_db_max: float = 6.0
    noise_floor_db_min: float = -95.0  # a microphone's own hiss under everything, uniform in dBFS
    noise_floor_db_max: float = -70.0
    reverb_probability: float = 0.25  # share of clips in a simulated room
    reverb_rt60_max: float = 0.6  # reverberation time, uniform in [0.1, this] seconds
    silence_level_db_min: float = -85.0  # silence examples: background noise at an absolute level
    silence_level_db_max: float = -25.0
    digital_silence_probability: float = 0.1  # share of silence examples that are all zeros (a muted microphone)
    # Word fragments (train/augment.py `word_fragments`): this share of command clips is moved so
    # that the window hears only the start or the end of the word, and becomes `_unknown_`.
    fragment_probability: float = 0.0
    fragment_keep_min: float = 0.15  # share of the word's voiced span left in the window
    fragment_keep_max: float = 0.4
    fragment_noise: bool = True  # fragments hear the room's noise as words do; False: never (a word masked by noise is not a fragment)


    def __post_init__(self):
        check_range("time_shift_ms", self.time_shift_ms, 0.0, 1000.0)
        check_range("noise_probability", self.noise_probability, 0.0, 1.0)
        check_range("noise_max_volume", self.noise_max_volume, 0.0, 10.0)
        check_range("silence_noise_max_volume", self.silence_noise_max_volume, 0.0, 10.0)
        for name in ("time_masks", "time_mask_frames", "freq_masks", "freq_mask_bins"):
            check_range(name, getattr(self, name), 0, 100, integer=True)
        check_range("volume_range", self.volume_range, 0.0, 0.99)
        check_range("speed_range", self.speed_range, 0.0, 0.5)
        if self.snr_db_min is not None:
            check_range("snr_db_min", self.snr_db_min, -30.0, self.snr_db_max)
        check_range("snr_db_max", self.snr_db_max, -30.0, 60.0)
        check_range("fragment_keep_max", self.fragment_keep_max, 0.0, 1.0)
        check_range("fragment_keep_min", self.fragment_keep_min, 0.0, self.fragment_keep_max)
        for name in ("gain_probability", "reverb_probability", "digital_silence_probability", "fragment_probability"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_range("gain_db_min", self.gain_db_min, -80.0, self.gain_db_max)
        check_range("gain_db_max", self.gain_db_max, -80.0, 20.0)
        check_range("noise_floor_db_min", self.noise_floor_db_min, -300.0, self.noise_floor_db_max)
        check_range("noise_floor_db_max", self.noise_floor_db_max, -300.0, 0.0)
        check_range("reverb_rt60_max", self.reverb_rt60_max, 0.1, 3.0)
        check_range("silence_level_db_min", self.silence_level_db_min, -300.0, self.silence_level_db_max)
        check_range("silence_level_db_max", self.silence_level_db_max, -300.0, 0.0)


# The room-robust recipe (for a lived-in room), the AugmentConfig fields it sets. Off by default: it needs
# more epochs than a short run has (tests/test_training.py's 8-epoch run on yes/no stays near
# chance with it). `speechcmd train --room` trains with it.
ROOM = {"snr_db_min": -5.0}


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 60
    batch_size: int = 64
    optimizer: str = "adamw"
    learning_rate: float = 3e-3
    weight_decay: float = 1e-2
    schedule: str = "cosine"
    warmup_epochs: float = 2.0
    step_epochs: int = 20  # "step" schedule: multiply by step_gamma every step_epochs
    step_gamma: float = 0.3
    clip_grad_norm: float = 5.0
    label_smoothing: float = 0.1
    patience: int = 0  # stop after this many epochs without a better validation accuracy (0 = never)
    distillation_weight: float = 0.5  # share of the loss that follows the teachers, when there are any
    temperature: float = 2.0  # softens teacher and student distributions for distillation (Hinton et al. 2015)
    # Teachers predict on the dry clip (its speed, shift and volume changes, without the room's noise,
    # reverberation and level): a teacher that knows clean speech tells a student hearing the noisy
    # copy what was said (teacher-student learning for robust speech, Li et al. 2017).
    distill_clean: bool = False
    # The speech embedding's last convolutions trained with the rest (0: the embedding stays frozen),
    # at this share of the learning rate and without weight decay (it starts from pretrained weights).
    tune_embedding: int = 0
    tune_lr_scale: float = 0.1
    # An exponential moving average of the weights (Polyak averaging), 0 = off: validation, best.pt and
    # the test see the average, which smooths over the last few hundred steps' noise.
    ema_decay: float = 0.0
    seed: int = 0
    device: str = "cpu"
    amp: bool = True  # mixed precision, on CUDA only
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {', '.join(OPTIMIZERS)}.")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}.")
        check_range("epochs", self.epochs, 1, 100_000, integer=True)
        check_range("batch_size", self.batch_size, 1, 65_536, integer=True)
        check_range("learning_rate", self.learning_rate, 1e-12, 1e38)  # a huge one diverges, and says so
        check_range("weight_decay", self.weight_decay, 0.0, 10.0)
        check_range("warmup_epochs", self.warmup_epochs, 0.0, 100_000)
        check_range("step_epochs", self.step_epochs, 1, 100_000, integer=True)
        check_range("step_gamma", self.step_gamma, 0.0, 1.0)
        check_range("clip_grad_norm", self.clip_grad_norm, 0.0, 1e6)
        check_range("label_smoothing", self.label_smoothing, 0.0, 0.99)
        check_range("patience", self.patience, 0, 100_000, integer=True)
        check_range("distillation_weight", self.distillation_weight, 0.0, 1.0)
        check_range("temperature", self.temperature, 0.01, 100.0)
        check_range("tune_embedding", self.tune_embedding, 0, 20, integer=True)
        check_range("tune_lr_scale", self.tune_lr_scale, 0.0, 100.0)
        check_range("ema_decay", self.ema_decay, 0.0, 0.99999)
        check_range("seed", self.seed, 0, 2**31 - 1, integer=True)
        if not isinstance(self.distill_clean, bool):
            raise ValueError(f"distill_clean must be true or false, not {self.distill_clean!r}.")
        if not isinstance(self.augment, AugmentConfig):
            raise ValueError("augment must be an AugmentConfig.")

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        values = known_settings(cls, data, "training")
        augment = known_settings(AugmentConfig, values.get("augment", {}), "training")
        return cls(**{**values, "augment": AugmentConfig(**augment)})


@dataclass(frozen=True)
class SplitConfig:
    """Which words, and which speakers go to validation and test (data without list files)."""

    labels: str = "12"  # 12 (10 commands + silence + unknown), 35 (every word) or a comma list
    validation_fraction: float = 0.1
    test_fraction: float = 0.1
    salt: str = "speechcmd"  # of the speaker hash that assigns splits
    # `_unknown_` is subsampled to about this share of each split when other words far outnumber it
    # (the full Speech Commands); raise it to train on many other words (synthetic negatives).
    unknown_fraction: float = 0.1
