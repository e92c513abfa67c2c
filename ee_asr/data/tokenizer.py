"""Sentencepiece tokens and the model's token list.

Model ids: 0 is the CTC blank, 1..V are sentencepiece ids 0..V-1 (0 being <unk>), and the
last id is <sos/eos> for attention decoders. Keeping blank at 0 follows ESPnet.
"""

from pathlib import Path

import sentencepiece as spm

from ee_asr.common.atomic import atomic_path, make_output_dir
from ee_asr.common.errors import UserError

BLANK = "<blank>"
BLANK_ID = 0  # the one definition of the CTC blank's id, for every search and score
SOS_EOS = "<sos/eos>"


def train_sentencepiece(text_file, model_prefix, vocab_size, model_type="unigram", character_coverage=1.0,
                        source=None):
    """Train on `text_file` (one transcript per line, no ids); writes `<prefix>.model` atomically.
    `source`: the file errors name, when `text_file` is a temporary copy of it."""
    model_prefix = Path(model_prefix)
    make_output_dir(model_prefix.parent)
    tmp_prefix = model_prefix.parent / f".tmp_{model_prefix.name}"
    try:
        spm.SentencePieceTrainer.train(
            input=str(text_file), model_prefix=str(tmp_prefix), vocab_size=vocab_size,
            model_type=model_type, character_coverage=character_coverage,
            unk_id=0, bos_id=-1, eos_id=-1, input_sentence_size=10_000_000,
            hard_vocab_limit=False, minloglevel=2)
    except RuntimeError as e:
        raise UserError(f"sentencepiece could not train on {source or text_file}: {e}") from None
    with atomic_path(model_prefix.with_suffix(".vocab")) as tmp:
        Path(f"{tmp_prefix}.vocab").replace(tmp)
    with atomic_path(model_prefix.with_suffix(".model")) as tmp:
        Path(f"{tmp_prefix}.model").replace(tmp)


class Tokenizer:
    def __init__(self, model_path):
        if not Path(model_path).is_file():
            raise UserError(f"sentencepiece model {model_path} does not exist (run stage 3)")
        try:
            self.sp = spm.SentencePieceProcessor(model_file=str(model_path))
        except (RuntimeError, OSError) as e:
            raise UserError(f"sentencepiece model {model_path} cannot be loaded ({e}): the file is damaged or not "
                            "a sentencepiece model; train it again (stage 3)") from None
        self.token_list = [BLANK] + [self.sp.id_to_piece(i) for i in range(self.sp.get_piece_size())] + [SOS_EOS]

    @property
    def vocab_size(self):
        return len(self.token_list)

    @property
    def sos_eos(self):
        return len(self.token_list) - 1

    def encode(self, text):
        return [i + 1 for i in self.sp.encode(text)]

    def decode(self, ids):
        return self.sp.decode([i - 1 for i in ids if 0 < i < self.sos_eos])
