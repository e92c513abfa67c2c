"""Decoding that survives bad utterances: one too short for the encoder's subsampling (a 0.05 s
clip) or whose features cannot be read is skipped with a warning naming it, and counted, instead
of failing the whole test set. Its batch is decoded again utterance by utterance, so the other
utterances of that batch are decoded as usual (results do not depend on batching)."""

import logging

from ee_asr.common.errors import UserError

# what a bad utterance raises: the model's "too short" UserError, kaldiio's and numpy's read errors
BAD_UTTERANCE = (UserError, OSError, ValueError, EOFError, KeyError, RuntimeError)


class SkippingDecoder:
    def __init__(self, decode_batch, where):
        """`decode_batch(utts)` -> list of records; `where` names the data for messages."""
        self.decode_batch, self.where, self.skipped = decode_batch, where, {}

    def __call__(self, utts):
        try:
            return self.decode_batch(utts)
        except BAD_UTTERANCE as e:
            if len(utts) == 1:
                return self._skip(utts[0], e)
        records = []
        for utt in utts:
            try:
                records += self.decode_batch([utt])
            except BAD_UTTERANCE as e:
                self._skip(utt, e)
        return records

    def _skip(self, utt, error):
        reason = " ".join(str(error).split()) or type(error).__name__
        logging.warning("%s: utterance '%s' skipped: %s", self.where, utt, reason)
        self.skipped[utt] = reason
        return []

    def check_some_decoded(self, total):
        if total and len(self.skipped) == total:
            first = next(iter(self.skipped.items()))
            raise UserError(f"{self.where}: every utterance failed to decode (e.g. '{first[0]}': {first[1]})")
