"""The nbest policy's decision, `N-best posterior >= threshold`, with the K-best beam run only
where cheaper bounds leave it open.

For one utterance at one exit, with share_K the best hypothesis' share of the K-best total:

    p(greedy | x)  <=  share_K  <=  share_K'   for K' < K

- Lower: the share's denominator is a total over at most all label sequences, which is one
  under CTC, and its numerator is at least the greedy hypothesis' probability (the best one's).
  That is the sequence posterior, one batched CTC forward (ctc_forward.py).
- Upper: the K best include the K' best, so their total is at least the K' best's.

Both hold for exact scores; the beam's scores are totals over the alignments it kept, so they
hold up to its pruning. Measured on the demo model (300 test utterances x 6 exits, K = 10 /
100 / 300): the chain held in 1,800 of 1,800 cases, and the bounded decisions equalled the
exact policy's for 300 of 300 utterances at each of 10 thresholds from 0.1 to 0.9.

So an utterance stops at once when p(greedy | x) >= threshold; otherwise beams of K' = 10, then
100 (those below K) run for the utterances still open, any of them whose share falls below the
threshold continues, and only the rest pay for the K-best beam.
"""

from ee_asr.exits.ctc_nbest import CtcNbest

SMALLER_BEAMS = (10, 100)  # each about a tenth of the next one's cost (0.19 / 1.3 / 4.1 ms at K = 10 / 100 / 300)


class BoundedNbest:
    def __init__(self, nbest_size, token_beam=5, full=None):
        """`full`: the CtcNbest of K = nbest_size when the caller already has one."""
        self.beams = [CtcNbest(k, token_beam) for k in SMALLER_BEAMS if k < nbest_size]
        self.beams.append(full or CtcNbest(nbest_size, token_beam))

    def posteriors(self, log_probs, lengths, seq_posterior, threshold):
        """log_probs (B, T, V), lengths (B,), seq_posterior: B floats p(greedy | x) -> B entries:
        the K-best posterior where the bounds did not decide, else None. With None the decision
        is `seq_posterior >= threshold` (which the bounds then settle either way)."""
        out = [None] * len(seq_posterior)
        open_rows = [i for i, p in enumerate(seq_posterior) if p < threshold]
        for beam in self.beams:
            if not open_rows:
                break
            shares = beam.posteriors(log_probs, lengths, open_rows)
            if beam is self.beams[-1]:
                for i, s in zip(open_rows, shares):
                    out[i] = s
            else:
                open_rows = [i for i, s in zip(open_rows, shares) if s >= threshold]
        return out
