"""An experiment dir with random weights for a training config, for timing a model shape (the
paper's, say) without training it: config.yaml, model.pth and a throw-away sentencepiece model."""

from pathlib import Path

import torch
import yaml

from ee_asr.common.yaml_file import read_yaml_mapping
from ee_asr.data.tokenizer import Tokenizer, train_sentencepiece

WORDS = "the quick brown fox jumps over a lazy dog while early exits save time on small devices".split()


def make_random_exp(train_config, exp_dir, vocab_size=5000, input_size=80, seed=0):
    """Write exp_dir/{config.yaml, model.pth}; the model's vocabulary is `vocab_size` wide."""
    from ee_asr.models.registry import build_model

    exp_dir = Path(exp_dir)
    exp_dir.mkdir(parents=True, exist_ok=True)
    text = exp_dir / "bpe_text.txt"
    text.write_text("\n".join(" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))) + "\n")
    train_sentencepiece(text, exp_dir / "bpe", vocab_size=40)
    config = read_yaml_mapping(train_config)
    tok = Tokenizer(exp_dir / "bpe.model")
    config.update(input_size=input_size, vocab_size=vocab_size, bpemodel=str(exp_dir / "bpe.model"),
                  token_list=tok.token_list + [f"<dummy{i}>" for i in range(vocab_size - tok.vocab_size)])
    config["normalize"], config["specaug"] = None, None  # no statistics to normalise with; eval only
    torch.manual_seed(seed)
    model = build_model(config)
    torch.save(model.state_dict(), exp_dir / "model.pth")
    (exp_dir / "config.yaml").write_text(yaml.safe_dump(config))
    return exp_dir
