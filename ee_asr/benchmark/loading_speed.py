"""How long training waits for its batches: passes of real training steps over the same planned
batches of a dump, with batches collated on the training thread or in loader workers, from
dumped features or computed on the fly (a fbank_online dump of the same utterances)."""

import logging

import torch

from ee_asr.benchmark.train_speed import time_loading
from ee_asr.common.errors import UserError
from ee_asr.data.batching import epoch_batches
from ee_asr.data.dataset import FeatureDataset
from ee_asr.data.tokenizer import Tokenizer
from ee_asr.models.registry import build_model
from ee_asr.train.loop import make_split_batches


def loading_setup(config, data_dir, bpemodel, steps, online_data_dir=None):
    """(config, {source: dataset}, plan): the model's config completed from the data, the dump
    (and its on-the-fly twin) and the first `steps` batches of epoch 0 as training plans them."""
    tokenizer = Tokenizer(bpemodel)
    sources = {"dump": FeatureDataset(data_dir, tokenizer)}
    if online_data_dir:
        sources["online"] = FeatureDataset(online_data_dir, tokenizer)
        if sources["online"].lengths != sources["dump"].lengths:
            raise UserError(f"{online_data_dir}/utt2num_frames differs from {data_dir}'s: "
                            f"give an on-the-fly dump of the same utterances")
    data = sources["dump"]
    first = next(iter(data.lengths))
    config = {**config, "input_size": int(data.feats[first].shape[1]), "vocab_size": tokenizer.vocab_size,
              "normalize": None}
    plan = epoch_batches(make_split_batches(data, config), 0, config["seed"])[:steps]
    return config, sources, plan


def loading_passes(config, sources, plan, workers_list, repeats=1, device="cpu"):
    """Every (source, workers) pass on the same planned batches, the rounds interleaved; per pass
    the round with the shortest loop is kept."""
    best = {}
    for _ in range(repeats):
        for name, data in sources.items():
            for workers in workers_list:
                torch.manual_seed(0)
                model = build_model(config).to(device).train()
                res = {"source": name, **time_loading(model, data, plan, workers, config["prefetch_factor"], device)}
                logging.info("%s, %d workers: waited %.1f%% of %.1fs", name, workers,
                             100 * res["loader_wait_fraction"], res["loop_seconds"])
                if (name, workers) not in best or res["loop_seconds"] < best[name, workers]["loop_seconds"]:
                    best[name, workers] = res
    out = {"batch_bins": config["batch_bins"], "repeats": repeats, "passes": list(best.values())}
    for workers in workers_list:
        if ("online", workers) in best:
            out[f"online_over_dump_{workers}_workers"] = (best["online", workers]["loop_seconds"]
                                                          / best["dump", workers]["loop_seconds"])
    return out
