"""The early-exit loop, written once for every backend.

The encoder runs exit by exit; after each exit the scores its policy reads are computed (only
those: exits/scores.py), the policy (exits/policies.py) decides which utterances stop, their
hypotheses are searched for, and they leave the batch, so the layers above an utterance's exit
are never computed for it.

A backend is the model, in whatever runs it (decode/torch_backend.py: PyTorch;
deploy/onnx_backend.py: ONNX Runtime segments). It has `exit_layers` and:

    start(inputs) -> state                  the front end, before the first layer
    advance(state, exit_index) -> state     the layers up to that exit
    log_probs(state, exit_index) -> (log_probs (B, T, V) numpy float32, lengths (B,) numpy)
    select(state, rows) -> state            keep these batch rows (numpy int array)

A search turns an exit into hypotheses: `hypotheses(view, rows, greedy)` for the rows that stop
(`greedy`: the greedy ids when the scores needed them, else None). A search with a beam of its
own (joint CTC/attention, word LM) also has `nbest(view) -> (ids, N-best posteriors)`, which
then gives the nbest policy its score; without it (`nbest = None`) the CTC N-best does.
"""

import time
from dataclasses import dataclass

import numpy as np

from ee_asr.exits.ctc_greedy import greedy_ids
from ee_asr.exits.policies import Policy
from ee_asr.exits.scores import BASIC, ExitScorer


@dataclass
class ExitView:
    """What a search sees of one exit: the backend and its state (for searches that read hidden
    states, e.g. an attention decoder), the exit's index and its CTC log-probs."""

    backend: object
    state: object
    exit_index: int
    log_probs: np.ndarray
    lengths: np.ndarray


class GreedySearch:
    """Greedy CTC: the best token per frame."""

    nbest = None

    def hypotheses(self, view, rows, greedy=None):
        if greedy is not None:
            return [greedy[r] for r in rows]
        return greedy_ids(view.log_probs[rows], view.lengths[rows])


class ExitEngine:
    def __init__(self, backend, scorer=None, search=None):
        self.backend = backend
        self.scorer = scorer or ExitScorer()
        self.search = search or GreedySearch()

    @property
    def exit_layers(self):
        return self.backend.exit_layers

    def _score_exit(self, state, exit_index, fields, below, nbest_threshold=None):
        """The exit's view, its `fields` scores and greedy ids (or None), and the search's own
        hypotheses where its beam gave the N-best posterior (else None)."""
        view = ExitView(self.backend, state, exit_index, *self.backend.log_probs(state, exit_index))
        own = self.search.nbest is not None and "nbest_posterior" in fields
        ids, posteriors = self.search.nbest(view) if own else (None, None)
        scores, greedy = self.scorer.score(view.log_probs, view.lengths, fields, self.exit_layers[exit_index], below,
                                           posteriors, nbest_threshold)
        return view, scores, greedy, ids

    def decode(self, inputs, policy):
        """Decode a batch with `policy` (a Policy). Return one dict per utterance, in input order:
        exit, layers_computed, ids, the scores of every exit it passed (nothing is scored at the
        last exit, which answers anyway) and seconds from the start to its exit."""
        if not isinstance(policy, Policy):
            raise TypeError(f"policy must be a Policy, not {type(policy).__name__}")
        start = time.perf_counter()
        state = self.backend.start(inputs)
        last = policy.last_exit(self.exit_layers)
        active, results, below = None, None, None  # below: the active rows' greedy ids at the exit below
        for i, layer in enumerate(self.exit_layers):
            state = self.backend.advance(state, i)
            fields = policy.scores if layer < last else set()
            view, scores, greedy, ids = self._score_exit(state, i, fields, below,
                                                         policy.threshold if policy.name == "nbest" else None)
            if results is None:
                active = np.arange(len(view.lengths))
                results = [{"scores": {}} for _ in active]
            stop = np.array([policy.stops(layer, s, last) for s in scores])
            rows = np.flatnonzero(stop)
            hyps = [ids[r] for r in rows] if ids is not None else (
                self.search.hypotheses(view, rows, greedy) if len(rows) else [])
            now = time.perf_counter() - start
            for row, utt in enumerate(active.tolist()):
                results[utt]["scores"][layer] = scores[row]
            for row, hyp in zip(rows.tolist(), hyps):
                results[active[row]].update(exit=layer, layers_computed=layer, ids=hyp, seconds=now)
            if stop.all():
                break
            keep = np.flatnonzero(~stop)
            active = active[keep]
            below = None if greedy is None else [greedy[r] for r in keep]
            state = self.backend.select(state, keep)
        return results

    def decode_every_exit(self, inputs, fields=None):
        """Every exit for every utterance, no stopping: [{layer: {"ids", "scores"}}, ...]. `fields`:
        the scores to compute (default: every one, the N-best posterior when the scorer's K > 0
        and p_as_good when it has a classifier; () for hypotheses alone)."""
        if fields is None:
            fields = set(BASIC) | ({"nbest_posterior"} if self.scorer.nbest_size > 0 else set()) | (
                {"p_as_good"} if self.scorer.classifier is not None else set())
        state = self.backend.start(inputs)
        out, below = None, None
        for i, layer in enumerate(self.exit_layers):
            state = self.backend.advance(state, i)
            view, scores, greedy, ids = self._score_exit(state, i, fields, below)
            out = out or [{} for _ in view.lengths]
            below = greedy if greedy is not None else below
            rows = np.arange(len(view.lengths))
            ids = ids if ids is not None else self.search.hypotheses(view, rows, greedy)
            for row in rows.tolist():
                out[row][layer] = {"ids": ids[row], "scores": scores[row]}
        return out
