"""The PyTorch backend of the exit engine (exits/engine.py): a trained model's encoder run exit by
exit with its own start/advance (models/exit_encoder.py), and the engine built around it."""

import torch

from ee_asr.exits.blank_skip import with_blank_skipping
from ee_asr.exits.engine import ExitEngine, GreedySearch
from ee_asr.exits.scores import ExitScorer
from ee_asr.models.exit_encoder import transcribe_min_frames

NBEST_TOKEN_BEAM = 5  # the N-best posterior's: r = 0.999 with 8 on the demo, in 70% of the time


class TorchBackend:
    def __init__(self, model):
        self.model = model
        self.exit_layers = list(model.encoder.exit_layers)
        self._hidden = (None, None)

    def min_input_frames(self):
        return transcribe_min_frames(self.model.encoder)

    @torch.no_grad()
    def start(self, inputs):
        """inputs: (features (B, T, F), lengths (B,)) tensors on the model's device."""
        x, xl = self.model.prepare(*inputs)
        return self.model.encoder.start(x, xl)

    @torch.no_grad()
    def advance(self, state, exit_index):
        return self.model.encoder.advance(state, self.exit_layers[exit_index])

    @torch.no_grad()
    def hidden(self, state):
        """The exit's normalised hidden states (B, T, D) and lengths: what attention decoders read."""
        if self._hidden[0] is not state:
            self._hidden = (state, self.model.encoder.exit_output(state))
        return self._hidden[1], state.lengths

    @torch.no_grad()
    def log_probs(self, state, exit_index):
        hidden, lengths = self.hidden(state)
        logp = self.model.head(exit_index).log_softmax(hidden)
        return logp.float().cpu().numpy(), lengths.cpu().numpy()

    def select(self, state, rows):
        return state.select(torch.as_tensor(rows, dtype=torch.long, device=state.masks.device))

    def keep_frames(self, state, order, lengths):
        """Blank skipping (exits/blank_skip.py): frames `order` (B, T') of each row, `lengths` valid."""
        device = state.masks.device
        return state.keep_frames(torch.as_tensor(order, dtype=torch.long, device=device),
                                 torch.as_tensor(lengths, device=device))


def torch_engine(model, nbest_size=10, token_beam=NBEST_TOKEN_BEAM, classifier=None, nbest_bounds=True, search=None,
                 blank_skip=None):
    """The exit engine over `model`: scores with an N-best of `nbest_size` (K) from a CTC beam
    trying `token_beam` tokens per frame, `classifier` for the learned policy; `search`: greedy CTC
    by default, or a JointBeamSearch (decode/joint_beam.py) or an LMBeamSearch (decode/lm_beam.py);
    `blank_skip`: (after_layers, threshold) to drop blank frames above those exits (exits/blank_skip.py)."""
    scorer = ExitScorer(nbest_size, token_beam, classifier, nbest_bounds)
    backend = with_blank_skipping(TorchBackend(model), *(blank_skip or ((), None)))
    return ExitEngine(backend, scorer, search or GreedySearch())

