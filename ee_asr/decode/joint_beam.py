"""Joint CTC/attention beam search at one exit of an early-exit AED model (espnet's BatchBeamSearch
with a CTCPrefixScorer), and the N-best posterior taken from that beam."""

import logging
from contextlib import contextmanager

import torch
from espnet.nets.batch_beam_search import BatchBeamSearch
from espnet.nets.scorers.ctc import CTCPrefixScorer
from espnet.nets.scorers.length_bonus import LengthBonus

from ee_asr.common.errors import UserError
from ee_asr.exits.nbest_posterior import nbest_posterior


@contextmanager
def _quiet():
    # espnet's beam search logs every hypothesis at INFO on the root logger
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


class JointBeamSearch:
    """One BatchBeamSearch per exit, built once and reused for every utterance: a search of the
    exit engine (exits/engine.py) whose beam also gives the N-best posterior."""

    def __init__(self, model, beam_size=5, ctc_weight=0.3, penalty=0.0, maxlenratio=0.0, nbest=None,
                 pre_beam_ratio=1.5):
        """`pre_beam_ratio`: the CTC prefix scorer only scores the decoder's likeliest
        pre_beam_ratio * beam_size next tokens (espnet's default, 1.5); 0 scores every token, so
        CTC can bring back a word the decoder ruled out, at ~2-3x the time."""
        if not hasattr(model, "decoders"):
            raise UserError("joint CTC/attention beam search needs a model with decoders (model: aed_ee)")
        if not 0.0 <= ctc_weight < 1.0:
            raise UserError(f"ctc_weight must be in [0, 1) (for pure CTC decode greedily: beam size 0), "
                            f"not {ctc_weight}")
        if not (pre_beam_ratio == 0 or pre_beam_ratio >= 1):
            raise UserError(f"pre_beam_ratio must be 0 (no pre-beam) or at least 1, not {pre_beam_ratio}")
        self.beam_size, self.maxlenratio, self.eos = beam_size, maxlenratio, model.eos
        self.nbest_size = nbest or beam_size
        self.searches = []
        for i, _ in enumerate(model.exit_layers):
            scorers = {"decoder": model.decoder(i), "ctc": CTCPrefixScorer(model.head(i), model.eos),
                       "length_bonus": LengthBonus(model.vocab_size)}
            weights = {"decoder": 1.0 - ctc_weight, "ctc": ctc_weight, "length_bonus": penalty}
            search = BatchBeamSearch(scorers, weights, beam_size, model.vocab_size, model.sos, model.eos,
                                     pre_beam_score_key="full" if pre_beam_ratio > 0 else None,
                                     pre_beam_ratio=pre_beam_ratio or 1.0)
            self.searches.append(search.to(next(model.parameters()).device).eval())

    @torch.no_grad()
    def __call__(self, exit_index, hidden, lengths):
        """hidden (B, T, D) of one exit -> (token-id lists, N-best posteriors), one per utterance."""
        ids, posteriors = [], []
        with _quiet():
            for h, n in zip(hidden, lengths.tolist()):
                hyps = self.searches[exit_index](h[:n], maxlenratio=self.maxlenratio)
                # yseq is <sos> ... <eos>; an untrained decoder can also emit the CTC blank (id 0)
                ids.append([int(t) for t in hyps[0].yseq[1:] if 0 < int(t) < self.eos])
                top = hyps[: self.nbest_size]
                posteriors.append(nbest_posterior([(None, float(h.score)) for h in top]))
        return ids, posteriors

    def nbest(self, view):
        """Every row's best hypothesis and N-best posterior at this exit."""
        hidden, lengths = view.backend.hidden(view.state)
        return self(view.exit_index, hidden, lengths)

    def hypotheses(self, view, rows, greedy=None):
        hidden, lengths = view.backend.hidden(view.state)
        index = torch.as_tensor(rows, dtype=torch.long, device=hidden.device)
        return self(view.exit_index, hidden[index], lengths[index])[0]
