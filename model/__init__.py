"""speechcmd's model: audio loading, MFCC front-end, recurrent network, checkpoints, detection."""

__version__ = "0.1.0"
SAMPLE_RATE = 16_000
SILENCE = "_silence_"  # the label of no speech at all
