"""seiscontrast: self-supervised waveform representation learning and phase picking for seismology.

The package reads like the pipeline:

``data`` (SeisBench / ObsPy windows, synthetic data) → ``masking`` → ``encoder`` → ``context`` (xLSTM U-Net)
→ ``quantizer`` → ``contrastive`` (InfoNCE) → ``pretrain`` → ``heads`` / ``finetune`` → ``evaluate``
→ ``picker`` (a SeisBench ``WaveformModel``) → ``pick`` / ``embed`` → ``cli``.
"""

__version__ = "0.1.0"
