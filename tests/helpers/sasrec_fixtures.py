"""A small SASRec grid over toy sequences."""

from jointsid_utils.config import BaselineConfig


N_ITEMS = 40


TINY = BaselineConfig(sasrec_losses=("ce", "bce"), sasrec_dims=(8, 16), sasrec_blocks=(1,), sasrec_epochs=(1, 3),
                      sasrec_seeds=(0, 1), sasrec_max_len=12, sasrec_dropout=0.0, sasrec_lr=5e-3, sasrec_batch_size=16)
