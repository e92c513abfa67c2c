"""Components chosen by name in the YAML config (`encoder: conformer_ee` + `encoder_conf:`).

Each name maps to "module:class", imported only when chosen: a Conformer model never pays for
importing transformers (seconds), nor a CTC model for espnet's decoders.
"""

import importlib
import inspect

from ee_asr.common.errors import UserError

ENCODERS = {"conformer_ee": "ee_asr.models.conformer_ee:ConformerEEEncoder",
            "wav2vec2_ee": "ee_asr.models.wav2vec2_ee:Wav2Vec2EEEncoder"}
NORMALIZERS = {"global_mvn": "espnet2.layers.global_mvn:GlobalMVN",
               "utterance_mvn": "ee_asr.models.utterance_norm:UtteranceNorm"}
SPECAUGS = {"specaug": "espnet2.asr.specaug.specaug:SpecAug"}
MODELS = {"ctc_ee": "ee_asr.models.ctc_ee:EarlyExitCTC", "aed_ee": "ee_asr.models.aed_ee:EarlyExitAED"}


def component(registry, name):
    """The class registered as `name`: given directly, or as "module:class" to import now."""
    entry = registry[name]
    if not isinstance(entry, str):
        return entry
    module, _, cls = entry.partition(":")
    return getattr(importlib.import_module(module), cls)


def check_keys(kind, name, cls, conf, fixed=()):
    """Fail naming the key when `<kind>_conf` has a key that `cls` does not take."""
    params = inspect.signature(cls).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    known = [p for p in params if p not in fixed and p != "self"]
    for key in conf:
        if key not in known:
            raise UserError(f"{kind}_conf: unknown key '{key}' for {kind} '{name}' (known: {', '.join(known)})")


def check_choice(kind, registry, name, conf, fixed=()):
    """Fail naming the choice or key when `<kind>: name` / `<kind>_conf` cannot be built."""
    if name is None:
        return
    if name not in registry:
        raise UserError(f"{kind}: unknown choice '{name}' (choices: {', '.join(sorted(registry))})")
    if not isinstance(conf or {}, dict):
        raise UserError(f"{kind}_conf must be a mapping")
    check_keys(kind, name, component(registry, name), conf or {}, fixed)


def choose(kind, registry, name, conf, **fixed):
    check_choice(kind, registry, name, conf, fixed)
    return None if name is None else component(registry, name)(**fixed, **dict(conf or {}))


def check_model_config(config):
    """Check every model component's name and keys without building anything."""
    check_choice("encoder", ENCODERS, config["encoder"], config.get("encoder_conf"), ("input_size",))
    check_choice("normalize", NORMALIZERS, config.get("normalize"), config.get("normalize_conf"))
    check_choice("specaug", SPECAUGS, config.get("specaug"), config.get("specaug_conf"))
    check_choice("model", MODELS, config["model"], config.get("model_conf"),
                 ("vocab_size", "encoder", "normalize", "specaug"))


def build_model(config):
    """Build the model from a resolved config (which holds input_size and vocab_size)."""
    encoder = choose("encoder", ENCODERS, config["encoder"], config.get("encoder_conf"),
                     input_size=config["input_size"])
    normalize = choose("normalize", NORMALIZERS, config.get("normalize"), config.get("normalize_conf"))
    specaug = choose("specaug", SPECAUGS, config.get("specaug"), config.get("specaug_conf"))
    return choose("model", MODELS, config["model"], config.get("model_conf"),
                  vocab_size=config["vocab_size"], encoder=encoder, normalize=normalize, specaug=specaug)

