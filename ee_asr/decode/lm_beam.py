"""CTC beam search with a lexicon and a word n-gram LM at every exit (flashlight-text's
LexiconDecoder + KenLM, the decoder behind torchaudio's `ctc_decoder`).

The lexicon holds the LM's words, each spelled by the sentencepiece model as the training
text was (a word is always encoded on its own, `▁` first), so the beam can only output LM
words. A hypothesis scores  sum log p_ctc + lm_weight * log10 p_lm(words) + word_score * #words.
The sentencepiece model has no silence token: the blank doubles as it. The N-best posterior
(the paper's confidence, from a lexicon + 4-gram beam there) is the top share of the beam's
distinct word sequences.

Importing this module loads no torch: the torch-free tools (transcribe --backend onnx) read its
options.
"""

import logging
import re

import numpy as np

from ee_asr.common.errors import DataError, UserError
from ee_asr.data.ngram_lm import BOS, EOS, UNK
from ee_asr.exits.nbest_posterior import nbest_posterior

DEFAULT_BEAM_SIZE = 50


def arpa_words(path):
    """The unigrams of an ARPA file (without <s>, </s>, <unk>)."""
    words, in_unigrams = [], False
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if line.startswith("\\"):
                    if in_unigrams:
                        break
                    in_unigrams = line == "\\1-grams:"
                elif in_unigrams and line:
                    fields = re.split(r"\s+", line)
                    if len(fields) < 2:
                        raise DataError(path, f"bad unigram line {line!r}")
                    words.append(fields[1])
    except FileNotFoundError:
        raise DataError(path, "file is missing (build it with ee_asr.bin.build_lm)") from None
    words = [w for w in words if w not in (BOS, EOS, UNK)]
    if not words:
        raise DataError(path, "has no \\1-grams: section with words: not an ARPA LM")
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
            from flashlight.lib.text.decoder.kenlm import KenLM
            from flashlight.lib.text.dictionary import create_word_dict

            from ee_asr.models.ctc_greedy import BLANK_ID  # torch: see the module's docstring
        except ImportError:
            raise UserError("LM decoding needs flashlight-text (pip install flashlight-text==0.0.7)") from None
        if beam_size < 1:
            raise UserError(f"the LM beam size must be at least 1, not {beam_size}")
        self.tokenizer, self.nbest_size = tokenizer, nbest_size
        words = arpa_words(lm_path)
        lexicon = {w: tokenizer.encode(w) for w in words}
        lexicon = {w: ids for w, ids in lexicon.items() if ids and all(0 < i < tokenizer.sos_eos for i in ids)}
        self.word_dict = create_word_dict({**{w: [[]] for w in lexicon}, UNK: [[]]})
        self.lm = KenLM(str(lm_path), self.word_dict)
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

    def search(self, log_probs, lengths):
        """log_probs (B, T, V) -> (token-id lists, N-best posteriors or Nones), one per utterance."""
        emissions = log_probs.detach().float().cpu().contiguous()
        ids, posteriors = [], []
        for i, n in enumerate(lengths.tolist()):
            row = emissions[i, :n].contiguous()
            results = self.decoder.decode(row.data_ptr(), n, row.size(1)) if n > 0 else []
            ids.append(self._ids(results[0]) if results else [])
            posteriors.append(self._posterior(results) if self.nbest_size > 0 else None)
        return ids, posteriors

    def nbest_lists(self, log_probs, lengths, n, rows=None):
        """Per utterance (of `rows`, default all): the beam's `n` best distinct word sequences as
        [(token tuple, beam score), ...], best first: the LM-aware N-best attention rescoring reads."""
        emissions = log_probs.detach().float().cpu().contiguous()
        lengths = lengths.tolist()
        out = []
        for i in range(len(lengths)) if rows is None else rows:
            row = emissions[i, :lengths[i]].contiguous()
            results = self.decoder.decode(row.data_ptr(), lengths[i], row.size(1)) if lengths[i] > 0 else []
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


class LMExitSearch:
    """The ExitSearch interface (decode/exit_search.py) with the LM beam's hypotheses. The
    confidence scores stay those of the CTC output and its greedy path (what an exit policy reads
    online; `ctc`, a greedy ExitSearch, computes them, the exit classifier's included), the
    N-best posterior is the LM beam's.

    The beam runs only where its output is read: in `hypotheses`, for the utterances that stop
    at an exit (every exit in decode_all_exits, the chosen one in decode_dynamic), and in `score`
    only when the N-best posterior is asked for (the nbest policy), since that is the beam's."""

    def __init__(self, ctc, lm_search):
        self.ctc, self.lm_search = ctc, lm_search
        self.classifier = ctc.classifier

    def score(self, exit_index, hidden, lengths, with_nbest=False, below=None, with_classifier=False, fields=None,
              nbest_threshold=None):
        # nbest_threshold is unused: the sequence posterior bounds a CTC N-best's share, not the LM-scored beam's
        logp, scores, _, greedy = self.ctc.score(exit_index, hidden, lengths, False, below, with_classifier, fields)
        if not with_nbest:
            return logp, scores, None, greedy
        if self.lm_search.nbest_size < 1:
            raise UserError("the LM beam's N-best posterior needs --nbest-size > 0")
        ids, posteriors = self.lm_search.search(logp, lengths)
        for s, p in zip(scores, posteriors):
            s["nbest_posterior"] = p
        return logp, scores, ids, greedy

    def hypotheses(self, exit_index, hidden, lengths, logp):
        return self.lm_search.search(logp, lengths)[0]
