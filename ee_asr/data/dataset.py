"""Features, lengths and token ids of one data split, loaded lazily from feats.scp, or computed
from the audio as they are read in a `fbank_online` or `raw_online` dump (data/online_features.py)."""

from pathlib import Path

import kaldiio
import numpy as np
import torch

from ee_asr.common.errors import DataError, UserError
from ee_asr.data.datadir import read_dict, read_lengths
from ee_asr.data.online_features import OnlineFeatures, is_online_dump


class FeatureDataset:
    def __init__(self, dump_dir, tokenizer=None, speed_factors=None, seed=0):
        """`speed_factors`: per-utterance speed perturbation, drawn per epoch (set_epoch); only
        an on-the-fly dump (`fbank_online`, `raw_online`) computes its features from the audio
        and can perturb them."""
        d = Path(dump_dir)
        online = is_online_dump(d)
        for name in ("wav.scp" if online else "feats.scp", "utt2num_frames", "text"):
            if not (d / name).is_file():
                raise DataError(d / name, "is missing: run feature extraction (stage 2) first")
        if speed_factors and not online:
            raise UserError(f"speed_perturb_factors: {d} holds dumped features, which cannot change speed; "
                            f"give a --feats-type fbank_online (for fbank) or raw_online (for raw) dump, or "
                            f"perturb in stage 2 (data/<set>_sp)")
        self.feats = OnlineFeatures(d, speed_factors, seed) if online else kaldiio.load_scp(str(d / "feats.scp"))
        self.lengths = read_lengths(d / "utt2num_frames")
        self.text = read_dict(d / "text")
        self.tokenizer = tokenizer
        missing = sorted(set(self.lengths) - set(self.text))
        if missing:
            raise DataError(d / "text", f"utterance '{missing[0]}' has features but no transcript")

    def __len__(self):
        return len(self.lengths)

    def set_epoch(self, epoch):
        """The epoch whose speed factors the features draw (a no-op for dumped features)."""
        if isinstance(self.feats, OnlineFeatures):
            self.feats.set_epoch(epoch)

    def collate(self, utts):
        """Pad a list of utterances into (ids, feats, feat_lens, tokens, token_lens)."""
        feats = [np.array(self.feats[u]) for u in utts]  # a writable copy: kaldiio may hand out read-only views
        lens = torch.tensor([len(f) for f in feats])
        x = torch.zeros(len(feats), int(lens.max()), feats[0].shape[1])
        for i, f in enumerate(feats):
            x[i, : len(f)] = torch.from_numpy(f)
        if self.tokenizer is None:
            return utts, x, lens, None, None
        toks = [self.tokenizer.encode(self.text[u]) for u in utts]
        tlens = torch.tensor([len(t) for t in toks])
        y = torch.full((len(toks), max(1, int(tlens.max()))), -1, dtype=torch.long)
        for i, t in enumerate(toks):
            y[i, : len(t)] = torch.tensor(t, dtype=torch.long)
        return utts, x, lens, y, tlens
