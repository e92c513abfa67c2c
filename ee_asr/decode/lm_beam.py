"""CTC beam search with a lexicon and a word n-gram LM at every exit (flashlight-text's
LexiconDecoder + KenLM, the decoder behind torchaudio's `ctc_decoder`).

The lexicon holds the LM's words, each spelled by the sentencepiece model as the training
text was (a word is always encoded on its own, `▁` first), so the beam can only output LM
words. A hypothesis scores  sum log p_ctc + lm_weight * log10 p_lm(words) + word_score * #words.
The sentencepiece model has no silence token: the blank doubles as it. The N-best posterior
(the paper's confidence, from a lexicon + 4-gram beam there) is the top share of the beam's
distinct word sequences.

It reads numpy log-probs and loads no torch.
"""

import logging

import numpy as np

from ee_asr.common.errors import DataError, UserError
from ee_asr.data.arpa import load_kenlm, read_arpa
from ee_asr.data.ngram_lm import BOS, EOS, UNK
from ee_asr.data.tokenizer import BLANK_ID
from ee_asr.exits.nbest_posterior import nbest_posterior

DEFAULT_BEAM_SIZE = 50


def arpa_words(path):
    """The unigrams of an ARPA file (without <s>, </s>, <unk>); DataError when it is no ARPA LM
    KenLM can load (data/arpa.py)."""
    words = [w for w in read_arpa(path)[1] if w not in (BOS, EOS, UNK)]
    if not words:
        raise DataError(path, "has no words in its \\1-grams: section: not an ARPA LM")
    return words


class LMBeamSearch:
    """One flashlight LexiconDecoder over the model's token ids, shared by every exit."""

    def __init__(self, tokenizer, lm_path, lm_weight=1.0, word_score=2.0, beam_size=DEFAULT_BEAM_SIZE,
                 token_beam=20, beam_threshold=20.0, nbest_size=0):
        try:
            from flashlight.lib.text.decoder import (
                CriterionType,
                LexiconDecoder,
                LexiconDecoderOptions,
                SmearingMode,
                Trie,
            )
            from flashlight.lib.text.dictionary import create_word_dict

        except ImportError:
            raise UserError("LM decoding needs flashlight-text (pip install flashlight-text==0.0.7)") from None
        if beam_size < 1:
            raise UserError(f"the LM beam size must be at least 1, not {beam_size}")
        self.tokenizer, self.nbest_size = tokenizer, nbest_size
        words = arpa_words(lm_path)
        lexicon = {w: tokenizer.encode(w) for w in words}
        lexicon = {w: ids for w, ids in lexicon.items() if ids and all(0 < i < tokenizer.sos_eos for i in ids)}
        self.word_dict = create_word_dict({**{w: [[]] for w in lexicon}, UNK: [[]]})
        self.lm = load_kenlm(lm_path, self.word_dict)
        n_tokens = tokenizer.vocab_size
        trie = Trie(n_tokens, BLANK_ID)
        start = self.lm.start(False)
        self.spellings = {}
        for w, ids in lexicon.items():
            index = self.word_dict.get_index(w)
            self.spellings[index] = ids
            trie.insert(ids, index, self.lm.score(start, index)[1])
        trie.smear(SmearingMode.MAX)  # look-ahead: a trie node carries its best word's unigram score
        options = LexiconDecoderOptions(
            beam_size=beam_size, beam_size_token=token_beam or n_tokens, beam_threshold=beam_threshold,
            lm_weight=lm_weight, word_score=word_score, unk_score=float("-inf"), sil_score=0.0,
            log_add=False, criterion_type=CriterionType.CTC)
        self.decoder = LexiconDecoder(options, trie, self.lm, BLANK_ID, BLANK_ID,
                                      self.word_dict.get_index(UNK), [], False)
        self._trie = trie  # the decoder holds a pointer to it
        logging.info("LM beam: %s, %d words in the lexicon, lm_weight %g, word_score %g, beam %d",
                     lm_path, len(lexicon), lm_weight, word_score, beam_size)

    def _ids(self, result):
        # the words' spellings, not the token path: flashlight's path can repeat a token on
        # adjacent frames without the blank CTC needs between them ("e e" in "three")
        return [i for w in result.words if w >= 0 for i in self.spellings[w]]

    def _decode_rows(self, log_probs, lengths, rows=None):
        """(row, the beam's results) for each row (of `rows`, default all) of numpy log_probs (B, T, V):
        the batch is one contiguous float32 buffer, each utterance read in place at its offset."""
        emissions = np.ascontiguousarray(log_probs, dtype=np.float32)
        b, t, v = emissions.shape
        base, step = emissions.ctypes.data, t * v * emissions.itemsize
        lengths = np.asarray(lengths).tolist()
        for i in range(b) if rows is None else rows:
            n = lengths[i]
            yield i, (self.decoder.decode(base + i * step, n, v) if n > 0 else [])

    def search(self, log_probs, lengths, rows=None):
        """log_probs (B, T, V) numpy -> (token-id lists, N-best posteriors or Nones), one per
        utterance (of `rows` only, if given)."""
        ids, posteriors = [], []
        for _, results in self._decode_rows(log_probs, lengths, rows):
            ids.append(self._ids(results[0]) if results else [])
            posteriors.append(self._posterior(results) if self.nbest_size > 0 else None)
        return ids, posteriors

    def nbest_lists(self, log_probs, lengths, n, rows=None):
        """Per utterance (of `rows`, default all): the beam's `n` best distinct word sequences as
        [(token tuple, beam score), ...], best first: the LM-aware N-best attention rescoring reads."""
        out = []
        for _, results in self._decode_rows(log_probs, lengths, rows):
            best = {}
            for r in results:
                key = tuple(w for w in r.words if w >= 0)
                best[key] = max(best.get(key, -np.inf), r.score)
            ranked = sorted(best.items(), key=lambda kv: kv[1], reverse=True)[:n]
            out.append([(tuple(t for w in key for t in self.spellings[w]), float(s)) for key, s in ranked]
                       or [((), 0.0)])
        return out

    def _posterior(self, results):
        # distinct word sequences: several token paths can spell the same words
        best = {}
        for r in results:
            key = tuple(w for w in r.words if w >= 0)
            best[key] = max(best.get(key, -np.inf), r.score)
        scores = sorted(best.values(), reverse=True)[: self.nbest_size]
        return nbest_posterior([(None, s) for s in scores]) if scores else 1.0


    # The exit engine's search interface (exits/engine.py). The policies read the CTC output's
    # scores as without an LM; the N-best posterior is the LM beam's. The beam runs only where
    # its output is read: for the rows that stop, and at every row when the nbest policy asks.
    def nbest(self, view):
        if self.nbest_size < 1:
            raise UserError("the LM beam's N-best posterior needs --nbest-size > 0")
        return self.search(view.log_probs, view.lengths)

    def hypotheses(self, view, rows, greedy=None):
        return self.search(view.log_probs, view.lengths, list(rows))[0]
